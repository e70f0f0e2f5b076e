import logging

import pytest

from shared.platform.logs import logger, redact


def test_redact_masks_emails_keys_and_tokens() -> None:
    text = "user jane.doe+x@acme.co.uk key gdk_0123456789ab_SECRETsecret-_ Authorization: Bearer abc.def.ghi123456"
    out = redact(text)
    assert "jane.doe" not in out and "j***@acme.co.uk" in out
    assert "SECRETsecret" not in out and "gdk_0123456789ab_***" in out
    assert "abc.def.ghi123456" not in out
    assert redact("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig") == "***"
    assert redact("nothing to hide") == "nothing to hide"


def test_our_loggers_redact_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logger("test")
    with caplog.at_level(logging.INFO, logger="genesy_dynamics.test"):
        log.info("matched %s", "ana.lopez@example.com")
        try:
            raise ValueError("bad value ana.lopez@example.com")
        except ValueError:
            log.exception("failed for %s", "gdk_abcdefabcdef_topsecretvalue")
    text = caplog.text
    assert "ana.lopez@" not in text and "a***@example.com" in text
    assert "topsecretvalue" not in text
    assert "ValueError" in text  # the traceback is kept, redacted
