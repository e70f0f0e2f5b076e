"""Logging that never carries secrets or personal data: e-mail addresses, API keys and bearer tokens
are masked before a record reaches any handler."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_redaction", "logger", "redact"]

_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+'-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_API_KEY = re.compile(r"\bgdk_([0-9A-Za-z]{4,32})_[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """`jane.doe@acme.com` → `j***@acme.com`; `gdk_<id>_<secret>` → `gdk_<id>_***`; tokens → `***`."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _API_KEY.sub(lambda m: f"gdk_{m.group(1)}_***", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return _JWT.sub("***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so handlers don't print the raw exception text.
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = f"{cleaned}\n{redact(text)}"
            record.exc_info = None
            record.exc_text = None
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_filter = RedactingFilter()


def logger(name: str) -> logging.Logger:
    """A `genesy_dynamics.<name>` logger whose records are redacted at the source."""
    log = logging.getLogger(f"genesy_dynamics.{name}")
    if _filter not in log.filters:
        log.addFilter(_filter)
    return log


def install_redaction() -> None:
    """Also redact what third-party libraries log through the root handlers (azure-core, httpx)."""
    for handler in logging.getLogger().handlers:
        if _filter not in handler.filters:
            handler.addFilter(_filter)
