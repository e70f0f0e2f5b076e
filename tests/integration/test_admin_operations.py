"""Operations an admin runs on the local stack: the sync log newest first (limit, filters, continuation),
sync health's warnings and aliases, reconciliation of one workspace now, campaign events over HTTPS, one
401 body for every refused key, and the 100-contact limit of an export call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.domain.write_messages import WriteItem
from shared.storage.ledger import LedgerEntry

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
MARIA = SEED_IDS["contact:maria"]


def _admin(stack: Any, method: str, path: str, body: Any = None) -> Any:
    return stack.call(method, f"manage/workspaces/{stack.workspace_id}/{path}", body, headers={})


def _entry(stack: Any, key: str, minutes: int, *, kind: str = "contact", status: str = "created", **more: Any) -> Any:
    operation = "associate" if kind == "association" else "create"
    return LedgerEntry(
        workspace_id=stack.workspace_id,
        kind=kind,
        operation=operation,  # type: ignore[arg-type]
        key=key,
        status=status,  # type: ignore[arg-type]
        at=BASE + timedelta(minutes=minutes),
        **more,
    )


def _seed_log(stack: Any) -> list[str]:
    """30 outcomes a minute apart, recorded oldest first in two calls; the keys newest first."""
    entries = [
        _entry(
            stack,
            f"r{i:02d}",
            i,
            kind="company" if i % 5 == 0 else "contact",
            status="failed" if i % 3 == 0 else "created",
        )
        for i in range(30)
    ]
    stack.services.ledger.record(entries[:17])
    stack.services.ledger.record(entries[17:])
    return [e.key for e in reversed(entries)]


def test_limit_returns_the_newest_rows(stack: Any) -> None:
    newest_first = _seed_log(stack)
    page = _admin(stack, "GET", "sync-log?limit=5")
    assert page.status_code == 200
    assert [e["key"] for e in page.json["entries"]] == newest_first[:5]
    assert page.json["next"]
    everything = _admin(stack, "GET", "sync-log").json
    assert [e["key"] for e in everything["entries"]] == newest_first and everything["next"] is None


def test_continuation_pages_through_every_row_once(stack: Any) -> None:
    newest_first = _seed_log(stack)
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        query = "sync-log?limit=7" + (f"&continuation={token}" if token else "")
        page = _admin(stack, "GET", query).json
        seen += [e["key"] for e in page["entries"]]
        token = page["next"]
        if token is None:
            break
    assert seen == newest_first
    # A record written again moves to the top once; its older outcome is not listed any more.
    stack.services.ledger.record([_entry(stack, "r03", 120, status="created")])
    keys = [e["key"] for e in _admin(stack, "GET", "sync-log?limit=1000").json["entries"]]
    assert keys[0] == "r03" and keys.count("r03") == 1 and len(keys) == 30
    assert _admin(stack, "GET", "sync-log?continuation=not-a-token").status_code == 400


def test_filters_by_status_kind_and_time(stack: Any) -> None:
    newest_first = _seed_log(stack)
    minute = {key: int(key[1:]) for key in newest_first}

    failed = [e["key"] for e in _admin(stack, "GET", "sync-log?status=failed&limit=3").json["entries"]]
    assert failed == [k for k in newest_first if minute[k] % 3 == 0][:3]
    companies = _admin(stack, "GET", "sync-log?kind=company").json["entries"]
    assert [e["key"] for e in companies] == [k for k in newest_first if minute[k] % 5 == 0]
    assert {e["kind"] for e in companies} == {"company"}

    since, until = (BASE + timedelta(minutes=10)).isoformat(), "2024-03-01T09:14:00"  # naive = UTC
    window = _admin(stack, "GET", f"sync-log?since={since.replace('+', '%2B')}&until={until}").json["entries"]
    assert [e["key"] for e in window] == ["r14", "r13", "r12", "r11", "r10"]
    both = _admin(stack, "GET", f"sync-log?status=failed&kind=company&until={until}").json["entries"]
    assert [e["key"] for e in both] == ["r00"]

    for bad in ("limit=0", "limit=1001", "since=yesterday", f"since={until}&until=2024-03-01T09:00:00", "kind=x"):
        response = _admin(stack, "GET", f"sync-log?{bad}")
        assert response.status_code == 400, bad
        assert response.json["message"].startswith(bad.split("=")[0] if "until" not in bad else "until"), bad


def test_sync_health_shows_warnings_and_aliases_as_the_log_does(stack: Any) -> None:
    alias = str(uuid.uuid4())
    stack.services.ledger.record(
        [
            _entry(stack, "amb", 1, status="ambiguous", aliases=[alias], warnings=["jobtitle: cut to 100 characters"]),
            _entry(stack, "warned", 2, warnings=["telephone1: not a phone number", "owner: no such user"]),
            _entry(stack, "plain", 3),
        ]
    )
    health = _admin(stack, "GET", "sync-health").json
    assert health["counts"] == {"contact": {"ambiguous": 1, "created": 2}}
    assert health["warnings"] == {"contact": 2}
    [attention] = health["attention"]
    assert attention["aliases"] == [alias] and attention["warnings"] == ["jobtitle: cut to 100 characters"]
    [logged] = _admin(stack, "GET", "sync-log?status=ambiguous").json["entries"]
    assert attention == logged


def _stuck(stack: Any, hours_ago: float) -> WriteItem:
    fields = {"lastName": "Stuck", "email": "s@x.example"}
    item = WriteItem(external_id="stuck", crm_id=str(uuid.uuid4()), fields=fields)
    retry = {"operation": "create", "kind": "contact", "item": item.model_dump(mode="json"), "export_values": {}}
    stack.services.ledger.record(
        [
            LedgerEntry(
                workspace_id=stack.workspace_id,
                kind="contact",
                operation="create",
                key="stuck",
                status="retrying",
                retry=retry,
                at=datetime.now(UTC) - timedelta(hours=hours_ago),
            )
        ]
    )
    return item


def test_reconcile_route_runs_one_workspace_now(stack: Any) -> None:
    item = _stuck(stack, hours_ago=0.1)
    fresh = _admin(stack, "POST", "reconcile")
    assert fresh.status_code == 200
    assert fresh.json["changes"]["tables"]["contact"] == {
        "mode": "change_tracking", "changed": 0, "merged": 0, "deleted": 0
    }
    assert fresh.json["workspace_id"] == stack.workspace_id and fresh.json["status"] == "completed"
    assert (fresh.json["requeued"], fresh.json["failed"]) == (0, 0)
    now = _admin(stack, "POST", "reconcile", {"stale_after_seconds": 0})
    assert (now.json["requeued"], now.json["failed"]) == (1, 0)
    assert now.json["dataverse_requests"] <= now.json["request_budget"] == 300
    stack.drain()
    assert stack.sandbox.store.get("contact", item.crm_id)["lastname"] == "Stuck"
    assert _admin(stack, "POST", "reconcile", {"stale_after_seconds": -1}).status_code == 400
    assert _admin(stack, "POST", "reconcile", {"nope": 1}).status_code == 400
    missing = stack.call("POST", f"manage/workspaces/{uuid.uuid4().hex}/reconcile", headers={})
    assert missing.status_code == 404


def test_reconcile_route_takes_records_stale_for_an_hour_by_default(stack: Any) -> None:
    _stuck(stack, hours_ago=2)
    [logged] = _admin(stack, "GET", "sync-log?status=retrying").json["entries"]
    assert logged["key"] == "stuck" and logged["retryable"] is True  # the index notes the retry payload
    assert _admin(stack, "POST", "reconcile").json["requeued"] == 1
    [requeued] = _admin(stack, "GET", "sync-log").json["entries"]
    assert requeued["key"] == "stuck" and requeued["status"] == "accepted"


def _campaign_event(event: str, event_id: str, at: str) -> dict[str, Any]:
    return {"contact_id": MARIA, "campaign": "Spring push", "event": event, "event_id": event_id, "occurred_at": at}


def test_campaign_events_over_https_are_queued_and_applied(stack: Any) -> None:
    events = [
        {**_campaign_event("sequence", "web-seq", "2024-04-01T09:00:00Z"), "step_count": 2},
        _campaign_event("open", "web-open", "2024-04-02T09:00:00Z"),
        {**_campaign_event("click", "web-click", "2024-04-02T09:05:00Z"), "workspace_id": stack.workspace_id},
    ]
    accepted = stack.call("POST", "campaign-events", {"events": events})
    assert accepted.status_code == 202 and accepted.json == {"accepted": 3}
    assert stack.queue.pending(stack.settings.campaign_queue) == 3
    report = stack.drain()
    assert report.failed == 0
    row = stack.sandbox.store.get("contact", MARIA)
    assert row["gd_campaign_opens"] == "1" and row["gd_campaign_clicks"] == "1"
    assert row["gd_campaign_sequence"] == "Spring push — 2 steps"
    campaign = stack.services.ledger.entries(stack.workspace_id, kind="campaign")[0]
    assert campaign.status == "updated" and campaign.crm_id == MARIA

    # The same events again: idempotent (the queue drops the duplicates, counts do not move).
    assert stack.call("POST", "campaign-events", {"events": events}).json == {"accepted": 3}
    stack.drain()
    assert stack.sandbox.store.get("contact", MARIA)["gd_campaign_opens"] == "1"


_AT = "2024-04-02T09:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{**_campaign_event("open", "x", _AT), "workspace_id": "another"}]}, "events[0].workspace_id"),
        ({"events": [_campaign_event("opened", "x", _AT)]}, "events[0].event"),
        ({"events": [_campaign_event("open", "", _AT)]}, "events[0].event_id"),
        ({"events": [_campaign_event("open", f"e{i}", _AT) for i in range(501)]}, "events"),
        ({"event": []}, "events"),
    ],
)
def test_campaign_events_refused_whole_and_nothing_queued(stack: Any, body: dict[str, Any], field: str) -> None:
    response = stack.call("POST", "campaign-events", body)
    assert response.status_code == 400
    assert field in response.json["message"] or any(d["field"].startswith(field) for d in response.json["details"])
    assert stack.queue.pending(stack.settings.campaign_queue) == 0


def test_campaign_events_need_the_workspace_key(stack: Any) -> None:
    body = {"events": [_campaign_event("open", "x", "2024-04-02T09:00:00Z")]}
    assert stack.call("POST", "campaign-events", body, headers={"Content-Type": "application/json"}).status_code == 401
    assert stack.queue.pending(stack.settings.campaign_queue) == 0


def test_every_refused_key_gets_the_same_401_body(stack: Any) -> None:
    store = stack.services.store
    old_key = stack.api_key
    current = store.rotate_key(stack.workspace_id, grace_seconds=0).api_key  # the old key is now expired
    unknown = f"gdk_{uuid.uuid4().hex[:8]}_{'A' * 43}"
    json_type = {"Content-Type": "application/json"}
    refused = {
        "missing": {},
        "malformed": {"X-API-Key": "not-a-key"},
        "unknown": {"X-API-Key": unknown},
        "expired": {"X-API-Key": old_key},
        "two keys": {"X-API-Key": current, "X-Other": unknown},
        "wrong header": {"Authorization": f"Bearer {current}"},
    }
    bodies = {}
    for reason, headers in refused.items():
        for method, path, body in (("GET", "health", None), ("POST", "contacts", {"contacts": []})):
            response = stack.call(method, path, body, headers={**json_type, **headers})
            assert response.status_code == 401, (reason, path)
            bodies[(reason, path)] = response.get_body()
    assert len(set(bodies.values())) == 1, bodies
    assert stack.call("GET", "health", headers={"X-API-Key": current}).status_code == 200


def test_an_export_call_takes_at_most_100_contacts(stack: Any) -> None:
    contacts = [{"externalId": f"c{i}", "email": f"c{i}@limit.example", "lastName": f"L{i}"} for i in range(101)]
    too_many = stack.call("POST", "contacts", {"contacts": contacts})
    assert too_many.status_code == 400 and "contacts" in too_many.json["message"]
    assert stack.queue.pending() == 0
    assert stack.call("POST", "contacts", {"contacts": contacts[:100]}).status_code == 200
    assert stack.call("POST", "contacts/sync", {"contacts": contacts}).status_code == 200  # sync takes up to 1000


def test_sync_health_reads_payloads_only_for_rows_written_before_they_noted_retryable(stack: Any) -> None:
    """Rows now note `retryable` beside the retry payload, so sync health never downloads payloads (created
    rows keep theirs for reconciliation); a failed row written before that is still shown as retryable."""
    item = WriteItem(external_id="legacy", crm_id=str(uuid.uuid4()), fields={"lastName": "Legacy"})
    retry = {"operation": "create", "kind": "contact", "item": item.model_dump(mode="json"), "export_values": {}}
    legacy = LedgerEntry(workspace_id=stack.workspace_id, kind="contact", operation="create", key="legacy",
                         status="failed", retry=retry, message="Service Unavailable")
    stack.services.ledger.record([_entry(stack, "fresh", 1, status="created")])
    row = legacy.to_entity()
    del row["retryable"]
    stack.services.tables.table("ledger").upsert_entity(row)
    [attention] = _admin(stack, "GET", "sync-health").json["attention"]
    assert attention["key"] == "legacy" and attention["retryable"] is True
