"""A reconciliation run keeps going when one step fails in Dynamics: the failure is in the report."""

from __future__ import annotations

import pytest

from shared.dataverse.errors import TransientError
from shared.services.reconcile_run import _Steps


def test_a_step_that_fails_in_dynamics_is_reported_and_the_run_goes_on() -> None:
    steps = _Steps("ws-1")

    def down() -> dict[str, int]:
        raise TransientError("Service Unavailable", status=503, code="0x80040216")

    assert steps.run("verification", down, {"checked": 0}) == {"checked": 0}
    assert steps.run("campaign_values", lambda: {"written": 2}, {"written": 0}) == {"written": 2}
    assert steps.errors == {"verification": "0x80040216: Service Unavailable"}


def test_other_exceptions_are_not_swallowed() -> None:
    steps = _Steps("ws-1")

    def bug() -> int:
        raise KeyError("not a Dynamics failure")

    with pytest.raises(KeyError):  # a programming error reaches the caller (reconcile_all logs it per workspace)
        steps.run("verification", bug, 0)
    assert steps.errors == {}
