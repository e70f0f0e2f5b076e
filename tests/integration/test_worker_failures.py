"""Failure policy of the writes worker: transient failures are redelivered, poison ends in the DLQ
with its reason, and a record that finally fails is in the ledger — nothing is lost."""

from __future__ import annotations

from typing import Any

import pytest

from shared.messaging.queue import OutgoingMessage
from shared.platform.settings import load_settings
from shared.services.operations import retry_failed


@pytest.fixture
def short_budget(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WRITE_BUDGET_SECONDS", "0.5")
    monkeypatch.setenv("SERVICEBUS_MAX_DELIVERY_COUNT", "3")
    stack.settings = load_settings()
    stack.queue.max_delivery_count = 3
    return stack


def test_dynamics_down_past_the_budget_redelivers_then_lands_in_the_ledger_with_the_reason(short_budget: Any) -> None:
    stack = short_budget
    contacts = [{"externalId": "down", "email": "down@x.example", "lastName": "Down"}]
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    stack.sandbox.config.error_rate_5xx = 1.0
    report = stack.host.drain()
    # Two deliveries fail and are abandoned; the last one records the failure and completes, so the
    # dead-letter queue keeps meaning "not written and nowhere else" (a batch settles as a whole).
    assert (report.failed, report.processed, report.dead_lettered) == (2, 1, 0)
    assert not stack.queue.dead_letters.get(stack.settings.writes_queue)
    # Nothing is lost: the record is in the ledger with the reason, retryable from the admin API.
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "create", "down")
    assert entry is not None and entry.status == "failed" and entry.attempts == 3
    assert entry.code and entry.retry is not None
    assert "503" in (entry.message or "") or "unavailable" in (entry.message or "").lower()
    # The operator's retry brings it back once Dynamics is healthy again.
    stack.sandbox.config.error_rate_5xx = 0.0
    assert retry_failed(stack.services, stack.workspace_id)["requeued"] == 1
    assert stack.host.drain().failed == 0
    assert [r for r in stack.rows("contact") if r.get("emailaddress1") == "down@x.example"]
    assert stack.services.ledger.get(stack.workspace_id, "contact", "create", "down").status == "created"


def test_an_unreadable_message_is_retried_then_recorded_in_the_ledger_without_holding_up_its_batch(
    short_budget: Any,
) -> None:
    stack = short_budget
    poison = OutgoingMessage(body={"operation": "create", "oops": True}, session_id=stack.workspace_id, message_id="p1")
    stack.queue.send(stack.settings.writes_queue, [poison])
    contacts = [{"externalId": "after", "email": "after@x.example", "lastName": "After"}]
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    report = stack.host.drain()
    assert report.dead_lettered == 0 and report.failed == 4  # two deliveries of the two-message batch
    row = stack.services.ledger.get(stack.workspace_id, "message", "create", "p1")
    assert row is not None and row.status == "failed" and row.code == "UnreadableMessage"
    assert "workspace_id" in (row.message or "") and row.attempts == 3
    # The message behind it was written (on the batch's last delivery).
    assert [r for r in stack.rows("contact") if r.get("emailaddress1") == "after@x.example"]


def test_throttling_waits_inside_the_budget_and_writes_everything(stack: Any) -> None:
    contacts = [{"externalId": f"t{i}", "email": f"t{i}@throttle.example", "lastName": f"T{i}"} for i in range(10)]
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    stack.sandbox.config.throttle_burst = 2
    stack.sandbox.config.throttle_retry_after_s = 1
    report = stack.host.drain()
    assert report.failed == 0 and report.dead_lettered == 0
    assert stack.sandbox.counters["throttled"] >= 2
    written = [r for r in stack.rows("contact") if (r.get("emailaddress1") or "").endswith("@throttle.example")]
    assert len(written) == 10
    statuses = {e.status for e in stack.services.ledger.entries(stack.workspace_id, kind="contact")}
    assert statuses == {"created"}
