"""Writes that use Dataverse's budget, on the real local stack: bulk messages where the table takes them,
the `$batch` fallback when one fails, the order that matters under parallel writes, Retry-After kept,
and several workspaces sharing one environment."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from devstack.demo_data import bulk_companies, bulk_contacts
from shared.dataverse.budget import Budget
from shared.dataverse.errors import RecordConflict, ValidationFailed
from shared.dataverse.throttling import sharing_writers

pytestmark = pytest.mark.integration


def _client(stack: Any) -> Any:
    return stack.services.dataverse(stack.sandbox.url)


def _routes(stack: Any, route: str) -> list[Any]:
    """Requests of `POST <set>/<Action>` (a failed one is logged under the action's full name)."""
    method_set, action = route.rsplit("/", 1)
    names = {route, f"{method_set}/Microsoft.Dynamics.CRM.{action}"}
    return [r for r in list(stack.sandbox.request_log) if r.route in names]


def _span(records: list[Any]) -> tuple[float, float]:
    """(first start, last end) of some sandbox requests, from the sandbox's own log."""
    assert records
    return min(r.ts - r.duration for r in records), max(r.ts for r in records)


def _export(stack: Any, companies: list[dict[str, Any]], contacts: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Companies, then contacts, then their associations, all accepted before anything is written."""
    company_ids = {
        r["externalId"]: r["crmId"] for r in stack.call("POST", "companies", {"companies": companies}).json["results"]
    }
    by_name = {c["name"]: c["externalId"] for c in companies}
    accepted = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    pairs = [
        {"contactCRMId": r["crmId"], "companyCRMId": company_ids[by_name[c["company"]]]}
        for r, c in zip(accepted, contacts, strict=True)
    ]
    assert stack.call("POST", "associations", {"associations": pairs}).status_code == 200
    return pairs


def test_an_export_writes_with_bulk_messages_and_lands_in_order_under_forced_parallelism(stack: Any) -> None:
    client = _client(stack)
    client.min_write_chunk = 1  # 40 records in up to 8 parallel requests of 5
    stack.sandbox.config.dop_hint = 16
    stack.sandbox.config.latency_ms = 30
    companies = bulk_companies(40, prefix="tp-co")
    contacts = bulk_contacts(40, companies, prefix="tp-ct")
    pairs = _export(stack, companies, contacts)
    updates = [{"crmId": p["contactCRMId"], "title": "Updated after create"} for p in pairs]
    assert stack.call("PUT", "contacts", {"contacts": updates}).status_code == 200

    report = stack.drain()
    assert (report.failed, report.dead_lettered) == (0, 0)

    # The bulk path was used for every write, in parallel chunks.
    accounts_bulk = _routes(stack, "POST accounts/UpsertMultiple")
    contacts_bulk = _routes(stack, "POST contacts/UpsertMultiple")
    links_and_updates = _routes(stack, "POST contacts/UpdateMultiple")
    assert len(accounts_bulk) >= 2 and len(contacts_bulk) >= 2 and len(links_and_updates) >= 4
    assert stack.sandbox.counters["max_concurrency_seen"] >= 2
    # Companies land before the contacts, contacts before their associations and updates (the sandbox's
    # own log: every request of one step ended before the first of the next began).
    assert _span(accounts_bulk)[1] <= _span(contacts_bulk)[0]
    assert _span(contacts_bulk)[1] <= _span(links_and_updates)[0]

    rows = {r["contactid"]: r for r in stack.rows("contact")}
    for pair in pairs:
        row = rows[pair["contactCRMId"]]
        assert row["_parentcustomerid_value"] == pair["companyCRMId"]
        assert row["jobtitle"] == "Updated after create"
    ledger = stack.services.ledger
    statuses = {(e.kind, e.operation, e.status) for e in ledger.entries(stack.workspace_id)}
    assert statuses == {
        ("company", "create", "created"),
        ("contact", "create", "created"),
        ("association", "associate", "updated"),
        ("contact", "update", "updated"),
    }
    # One row per record: nothing was written twice.
    names = [r.get("name") for r in stack.rows("account")]
    emails = [r.get("emailaddress1") for r in stack.rows("contact")]
    assert all(names.count(c["name"]) == 1 for c in companies)
    assert all(emails.count(c["email"]) == 1 for c in contacts)


def test_a_failed_bulk_message_falls_back_to_batch_and_fails_only_the_bad_record(stack: Any) -> None:
    # The sandbox's strict mode stands in for a plug-in or a stricter environment: one record is refused.
    stack.sandbox.config.enforce_application_required = True
    contacts = [{"externalId": f"ok-{i}", "email": f"ok{i}@fallback.example", "lastName": f"Ok{i}"} for i in range(9)]
    contacts.insert(4, {"externalId": "bad", "email": "bad@fallback.example"})
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    report = stack.drain()
    assert (report.failed, report.dead_lettered) == (0, 0)

    failed_bulk = [r for r in _routes(stack, "POST contacts/UpsertMultiple") if r.status == 400]
    assert len(failed_bulk) == 1  # rolled back as a whole...
    fallback = [r for r in list(stack.sandbox.request_log) if r.path.endswith("$batch") and r.ts > failed_bulk[0].ts]
    assert fallback and sum(r.batch_parts for r in fallback) == 10  # ...and resent record by record
    written = [r for r in stack.rows("contact") if str(r.get("emailaddress1") or "").endswith("@fallback.example")]
    assert sorted(r["emailaddress1"] for r in written) == sorted(f"ok{i}@fallback.example" for i in range(9))
    ledger = stack.services.ledger
    bad = ledger.get(stack.workspace_id, "contact", "create", "bad")
    assert bad is not None and bad.status == "failed" and bad.code == "0x80040200" and "lastname" in (bad.message or "")
    assert {ledger.get(stack.workspace_id, "contact", "create", f"ok-{i}").status for i in range(9)} == {"created"}


def test_retries_and_fallbacks_rewrite_the_same_ids(stack: Any) -> None:
    """Our ids are fixed before writing: a chunk already partly written (a bulk request that applied but
    whose answer was lost, then redelivered) is upserted again by id — no 412, no second record."""
    client = _client(stack)
    ids = [str(uuid.uuid4()) for _ in range(6)]
    stack.sandbox.store.insert("contact", {"contactid": ids[2], "lastname": "Already"})
    items = [(i, {"lastname": f"Same{n}"}, "upsert") for n, i in enumerate(ids)]
    first = client.write_many("contacts", items, budget=Budget(30))
    again = client.write_many("contacts", items, budget=Budget(30))
    assert [r.created for r in first] == [True, True, False, True, True, True]
    assert [r.created for r in again] == [False] * 6
    assert _routes(stack, "POST contacts/UpsertMultiple")
    assert sorted(r["contactid"] for r in stack.rows("contact") if r["contactid"] in ids) == sorted(ids)
    # Why not CreateMultiple: with an id that exists it refuses the whole request (a rerun would fail).
    with pytest.raises(RecordConflict):
        client.bulk("contacts", "contact", "CreateMultiple", [{"contactid": ids[0], "lastname": "Twice"}])
    # A bad record in a retried chunk: the others still rewrite their own ids, the bad one fails alone.
    items[3] = (ids[3], {"lastname": "x" * 60}, "upsert")
    mixed = client.write_many("contacts", items, budget=Budget(30))
    assert [r.ok for r in mixed] == [True, True, True, False, True, True]
    assert isinstance(mixed[3].error, ValidationFailed) and mixed[3].error.column == "lastname"
    assert len([r for r in stack.rows("contact") if r["contactid"] in ids]) == 6


def test_throttled_parallel_writes_never_come_back_inside_retry_after(stack: Any) -> None:
    client = _client(stack)
    stack.sandbox.config.throttle_burst = 1
    stack.sandbox.config.throttle_retry_after_s = 1
    items = [(str(uuid.uuid4()), {"lastname": f"Held{i}"}, "upsert") for i in range(40)]
    results = client.write_many("contacts", items, chunk_size=5, budget=Budget(30))
    assert all(r.ok for r in results)
    assert stack.sandbox.counters["throttled"] == 1
    # The first request of a fresh client goes alone (the AIMD probe), so when it is throttled nothing
    # else is on the wire, and every thread waits out the Retry-After before the next one.
    assert stack.sandbox.retried_early() == []
    assert all(e.next_request_at is not None for e in stack.sandbox.throttle_events)
    assert client.concurrency_cap >= 2  # and it grew again after the 429


def test_workspaces_on_one_environment_share_its_turns(stack: Any) -> None:
    """Two workspaces export at once to the same Dynamics environment: both are written, through one
    shared limiter, and each got its own turns."""
    from shared.domain.mappings import WorkspaceCreate

    services = stack.services
    other, other_key = services.store.create_workspace(
        WorkspaceCreate(name="Second workspace", environment_url=stack.sandbox.url), "tests"
    )
    stack.sandbox.config.latency_ms = 20
    keys = {stack.workspace_id: stack.api_key, other.id: other_key}
    barrier = threading.Barrier(2)

    def export(workspace_id: str) -> None:
        headers = {"X-API-Key": keys[workspace_id], "Content-Type": "application/json"}
        people = [
            {"externalId": f"{workspace_id[:8]}-{i}", "email": f"p{i}@{workspace_id[:8]}.example", "lastName": f"P{i}"}
            for i in range(30)
        ]
        barrier.wait()
        assert stack.call("POST", "contacts", {"contacts": people}, headers=headers).status_code == 200

    threads = [threading.Thread(target=export, args=(w,)) for w in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.host.start_pump()
    try:
        assert stack.host.wait_idle(timeout=60)
    finally:
        report = stack.host.stop_pump()
    assert (report.failed, report.dead_lettered) == (0, 0)
    for workspace_id in keys:
        domain = f"@{workspace_id[:8]}.example"
        assert len([r for r in stack.rows("contact") if str(r.get("emailaddress1") or "").endswith(domain)]) == 30
    grants = _client(stack).limiter.grants
    assert grants[stack.workspace_id] > 0 and grants[other.id] > 0


def test_one_records_writes_keep_their_order_in_one_parallel_call(stack: Any) -> None:
    """A create and a later update of the same record in one call never race: the update goes in a
    later wave, after every request of the first has finished, however many chunks run in parallel."""
    client = _client(stack)
    stack.sandbox.config.dop_hint = 8
    stack.sandbox.config.latency_ms = 20
    ids = [str(uuid.uuid4()) for _ in range(16)]
    items: list[Any] = [(i, {"lastname": "First"}, "upsert") for i in ids]
    items += [(i, {"lastname": "Second"}, "update_only") for i in reversed(ids)]
    results = client.write_many("contacts", items, chunk_size=1, budget=Budget(60))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert {stack.sandbox.store.get("contact", i)["lastname"] for i in ids} == {"Second"}
    creates, updates = _routes(stack, "POST contacts/UpsertMultiple"), _routes(stack, "POST contacts/UpdateMultiple")
    assert (len(creates), len(updates)) == (16, 16)
    assert _span(creates)[1] <= _span(updates)[0]
    assert stack.sandbox.counters["max_concurrency_seen"] >= 2


def test_a_sessions_batch_runs_commuting_messages_together_and_keeps_the_order_that_matters(stack: Any) -> None:
    stack.sandbox.config.latency_ms = 20
    calls = [
        [
            {
                "externalId": f"bt{c}-{i}",
                "email": f"bt{c}-{i}@batch.example",
                "firstName": "Bea",
                "lastName": f"Bt{c}x{i}",
            }
            for i in range(10)
        ]
        for c in range(6)
    ]
    ids = [[r["crmId"] for r in stack.call("POST", "contacts", {"contacts": c}).json["results"]] for c in calls]
    # The first call's people again under other Genesy ids (another list's copies), and then an update of
    # the second call's contacts: both must come after what they depend on, though all share one batch.
    copies = [{**c, "externalId": f"copy-{c['externalId']}", "title": "From the copy"} for c in calls[0]]
    copy_ids = [r["crmId"] for r in stack.call("POST", "contacts", {"contacts": copies}).json["results"]]
    updates = [{"crmId": i, "title": "Updated later"} for i in ids[1]]
    assert stack.call("PUT", "contacts", {"contacts": updates}).status_code == 200
    assert stack.queue.pending(stack.settings.writes_queue) == 8

    report = stack.drain()
    assert (report.processed, report.failed, report.dead_lettered) == (8, 0, 0)

    rows = [r for r in stack.rows("contact") if (r.get("emailaddress1") or "").endswith("@batch.example")]
    emails = [r["emailaddress1"] for r in rows]
    assert len(emails) == 60 and len(set(emails)) == 60  # the copies found the records made just before them
    by_id = {r["contactid"]: r for r in rows}
    assert all(by_id[i]["jobtitle"] == "From the copy" for i in ids[0])
    assert all(by_id[i]["jobtitle"] == "Updated later" for i in ids[1])
    resolved = stack.services.aliases.resolve(stack.workspace_id, "contact", copy_ids)
    assert [resolved.get(c.lower(), c.lower()) for c in copy_ids] == [i.lower() for i in ids[0]]
    # One bulk request per call's records: six creates, then the copies and the update.
    # The copies (now updates of the first call's records) waited only for the first call; the update of
    # the second call's contacts waited for every create before it, so its request is the last.
    writes = [r.route for r in stack.sandbox.request_log if r.route.startswith("POST contacts/")]
    assert writes.count("POST contacts/UpsertMultiple") == 6, writes
    assert writes.count("POST contacts/UpdateMultiple") == 2 and writes[-1] == "POST contacts/UpdateMultiple", writes


def test_writers_sharing_the_environment_send_fewer_larger_requests(stack: Any) -> None:
    client = _client(stack)
    client.min_write_chunk = 1
    specs = [(str(uuid.uuid4()), {"lastname": f"Share{i}"}, "upsert") for i in range(40)]
    sent = lambda: len(_routes(stack, "POST contacts/UpsertMultiple"))  # noqa: E731
    before = sent()
    client.write_many("contacts", specs[:20], budget=Budget(30))
    alone = sent() - before
    with sharing_writers(4):  # four messages of a batch in flight: each takes a quarter of the concurrency
        client.write_many("contacts", specs[20:], budget=Budget(30))
    shared = sent() - before - alone
    assert (alone, shared) == (4, 1)  # the environment's ceiling is 4 (the sandbox's x-ms-dop-hint)
