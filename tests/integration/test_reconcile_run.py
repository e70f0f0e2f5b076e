"""A reconciliation run on the local stack (Azurite, the Dataverse sandbox over HTTPS, the registered functions):
ledger verification re-queues a record lost from Dynamics once, campaign values wait for their contact, transient
failures come back with backoff, the request budget holds, the lease keeps overlapping runs apart, and the report
shows in sync health."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.entities import new_record_id
from shared.domain.write_messages import WriteItem
from shared.services.reconcile_run import run_reconciliation
from shared.storage.ledger import LedgerEntry


def _reconcile(stack: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = stack.call("POST", f"manage/workspaces/{stack.workspace_id}/reconcile", body or {}, headers={})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]



def _ledger_row(stack: Any, external_id: str, *, status: str = "created", at: datetime | None = None,
                **more: Any) -> LedgerEntry:
    """A ledger row as the worker writes it (with the payload it keeps to write the record again)."""
    crm_id = new_record_id(stack.workspace_id, "contact", external_id)
    item = WriteItem(external_id=external_id, crm_id=crm_id,
                     fields={"firstName": "Lost", "lastName": external_id, "email": f"{external_id}@lost.example"})
    entry = LedgerEntry(
        workspace_id=stack.workspace_id, kind="contact", operation="create", key=external_id,
        status=status, crm_id=crm_id, external_id=external_id,  # type: ignore[arg-type]
        retry={"operation": "create", "kind": "contact", "item": item.model_dump(mode="json"), "export_values": {}},
        at=at or datetime.now(UTC), **more,
    )
    stack.services.ledger.record([entry])
    return entry


def test_a_record_the_ledger_says_created_but_dynamics_lacks_is_queued_again_once_and_lands(stack: Any) -> None:
    _reconcile(stack)  # change tracking's links are established: from now on a deletion would be seen
    lost = _ledger_row(stack, "lost-1")  # written to the ledger, but the write never reached Dynamics
    assert stack.sandbox.store.get("contact", str(lost.crm_id)) is None

    run = _reconcile(stack)
    verification = run["verification"]
    assert (verification["missing"], verification["requeued"], verification["left_failed"]) == (1, 1, 0)
    assert stack.services.ledger.get(stack.workspace_id, "contact", "create", "lost-1").status == "accepted"
    stack.drain()
    landed = stack.sandbox.store.get("contact", str(lost.crm_id))
    assert landed is not None and landed["lastname"] == "lost-1"
    assert stack.services.ledger.get(stack.workspace_id, "contact", "create", "lost-1").status == "created"
    assert len([r for r in stack.rows("contact") if r.get("lastname") == "lost-1"]) == 1


def test_a_record_lost_twice_is_left_failed_for_a_human(stack: Any) -> None:
    _reconcile(stack)
    entry = _ledger_row(stack, "lost-2")
    assert _reconcile(stack)["verification"]["requeued"] == 1
    # The re-queued write is lost again (its message never runs here); the ledger says created once more.
    again = _ledger_row(stack, "lost-2")
    assert again.crm_id == entry.crm_id
    run = _reconcile(stack, {"stale_after_seconds": 3600})
    assert run["verification"]["missing"] == 1 and run["verification"]["left_failed"] == 1
    row = stack.services.ledger.get(stack.workspace_id, "contact", "create", "lost-2")
    assert row.status == "failed" and row.code == "missing_in_dynamics"
    assert "went missing again" in row.message and "to fix" in row.message


def test_a_record_deleted_by_a_user_is_not_written_again(stack: Any) -> None:
    created = stack.call("POST", "contacts", {"contacts": [
        {"externalId": "del-v", "email": "deleted.user@example.com", "firstName": "Del", "lastName": "User"}
    ]}).json["results"]
    crm_id = created[0]["crmId"]
    stack.drain()
    _reconcile(stack)
    with stack.dynamics() as api:
        assert api.delete(f"contacts({crm_id})").status_code == 204
    run = _reconcile(stack)
    assert run["changes"]["tables"]["contact"]["deleted"] == 1
    assert run["verification"]["requeued"] == 0
    stack.drain()
    assert stack.sandbox.store.get("contact", crm_id) is None
    # A later export of the same person is matched or created as usual (here: created again, once).
    again = stack.call("POST", "contacts", {"contacts": [
        {"externalId": "del-v2", "email": "deleted.user@example.com", "firstName": "Del", "lastName": "User"}
    ]}).json["results"]
    assert again[0]["crmId"] != crm_id
    stack.drain()
    assert len([r for r in stack.rows("contact") if r.get("emailaddress1") == "deleted.user@example.com"]) == 1


def test_where_change_tracking_is_off_merges_come_from_modifiedon_and_a_missing_record_is_not_recreated(
    stack: Any,
) -> None:
    stack.sandbox.config.change_tracking_disabled = {"contact"}
    try:
        first = _reconcile(stack)["changes"]["tables"]["contact"]
        assert first["mode"] == "modifiedon" and "not visible" in first["deletions"]
        _ledger_row(stack, "lost-3")
        run = _reconcile(stack)
        assert run["changes"]["tables"]["contact"]["mode"] == "modifiedon"
        assert run["verification"]["requeued"] == 0 and run["verification"]["left_failed"] == 1
        row = stack.services.ledger.get(stack.workspace_id, "contact", "create", "lost-3")
        assert row.status == "failed" and "change tracking is off" in row.message
    finally:
        stack.sandbox.config.change_tracking_disabled = set()


def test_campaign_values_wait_for_their_contact_and_the_next_run_writes_them(stack: Any) -> None:
    contact = new_record_id(stack.workspace_id, "contact", "late-contact")
    events = [{"contact_id": contact, "campaign": "Autumn", "event": "open", "event_id": "late-o1",
               "occurred_at": "2026-11-01T10:00:00Z"}]
    assert stack.call("POST", "campaign-events", {"events": events}).status_code == 202
    stack.drain()
    [waiting] = stack.services.ledger.entries(stack.workspace_id, kind="campaign")
    assert waiting.status == "failed" and "kept and written later" in (waiting.message or "")
    with stack.dynamics() as api:  # the contact now exists in Dynamics (created there, not by this export)
        assert api.post("contacts", json={"contactid": contact, "lastname": "Late"}).status_code == 204

    run = _reconcile(stack)
    assert run["campaign_values"] == {"waiting": 1, "written": 1}
    row = stack.sandbox.store.get("contact", contact)
    assert row["gd_campaign_opens"] == "1"
    [entry] = stack.services.ledger.entries(stack.workspace_id, kind="campaign")
    assert entry.status == "updated" and "reconciliation" in (entry.message or "")
    assert _reconcile(stack)["campaign_values"] == {"waiting": 0, "written": 0}


def test_transient_failures_are_retried_with_backoff_and_permanent_ones_left(stack: Any) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    _ledger_row(stack, "flaky", status="failed", code="Throttled", message="Number of requests exceeded", at=old)
    _ledger_row(stack, "broken", status="failed", code="0x80048d19",
                message="Invalid property 'nope' — to fix: remove the column from the export mapping", at=old)
    first = _reconcile(stack)["transient_retries"]
    assert first == {"requeued": 1, "permanent": 1, "waiting": 0, "gave_up": 0}
    flaky = stack.services.ledger.get(stack.workspace_id, "contact", "create", "flaky")
    assert flaky.status == "accepted"
    stack.drain()
    assert stack.services.ledger.get(stack.workspace_id, "contact", "create", "flaky").status == "created"
    # Failing again at once: the next retry waits (15 min, then 30, …), up to RECONCILE_RETRY_LIMIT times.
    _ledger_row(stack, "flaky", status="failed", code="Throttled", message="Number of requests exceeded", at=old)
    assert _reconcile(stack)["transient_retries"]["waiting"] == 1
    mark = stack.services.reconcile_state.mark(stack.workspace_id, "contact", flaky.row_key)
    assert mark.retries == 1


def test_a_run_stays_within_its_request_budget_and_reports_what_it_skipped(stack: Any) -> None:
    _reconcile(stack)
    for n in range(90):  # three reads' worth of ids to verify
        stack.call("POST", "contacts", {"contacts": [
            {"externalId": f"bud-{n}", "email": f"bud{n}@budget.example", "lastName": f"Budget {n}"}]})
    stack.drain()
    share = 4 / 6000  # a budget of 4 requests: 2 change-tracking rounds, 2 of the 3 verification reads
    stack.settings = stack.settings.model_copy(update={"reconcile_budget_share": share,
                                                       "reconcile_verify_sample": 200})
    run = _reconcile(stack)
    assert run["request_budget"] == 4
    assert run["dataverse_requests"] <= 4
    assert run["verification"]["checked"] == 80 and run["verification"]["unchecked"] == 10
    assert "verification" in run["skipped"]
    health = stack.call("GET", f"manage/workspaces/{stack.workspace_id}/sync-health", headers={}).json
    assert health["last_reconciliation"]["started"] == run["started"]
    assert health["last_reconciliation"]["dataverse_requests"] == run["dataverse_requests"]


def test_a_run_that_finds_the_lease_held_does_nothing(stack: Any) -> None:
    state = stack.services.reconcile_state
    lease = state.acquire(stack.workspace_id, 60)
    assert lease is not None
    skipped = _reconcile(stack)
    assert skipped["status"] == "skipped" and "lease" in skipped["reason"]
    state.release(lease)
    assert _reconcile(stack)["status"] == "completed"


def test_concurrent_runs_apply_once(stack: Any) -> None:
    _reconcile(stack)
    _ledger_row(stack, "lost-c")
    barrier = threading.Barrier(4)
    reports: list[dict[str, Any]] = []

    def run() -> None:
        barrier.wait()
        reports.append(run_reconciliation(stack.services, stack.workspace_id))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    completed = [r for r in reports if r["status"] == "completed"]
    assert len(reports) == 4 and completed
    assert sum(r["verification"]["requeued"] for r in completed) == 1  # queued once, whoever ran
    stack.drain()
    assert len([r for r in stack.rows("contact") if r.get("lastname") == "lost-c"]) == 1


def test_the_lease_is_exclusive_until_it_expires(stack: Any) -> None:
    state = stack.services.reconcile_state
    now = datetime.now(UTC)
    results: list[Any] = []
    barrier = threading.Barrier(6)

    def take() -> None:
        barrier.wait()
        results.append(state.acquire("lease-ws", 30, now=now))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [r for r in results if r is not None]
    assert len(held) == 1
    assert state.acquire("lease-ws", 30, now=now + timedelta(seconds=10)) is None
    taken_over = state.acquire("lease-ws", 30, now=now + timedelta(seconds=31))
    assert taken_over is not None
    state.release(held[0])  # the expired holder cannot free the lease the new holder took
    assert state.acquire("lease-ws", 30, now=now + timedelta(seconds=32)) is None
    state.release(taken_over)
    assert state.acquire("lease-ws", 30, now=now + timedelta(seconds=33)) is not None
