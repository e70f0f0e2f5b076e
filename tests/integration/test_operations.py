"""Operating the sync through the admin API: health, log, retry, dead-letter replay, preview, validation,
and the reconciliation timer."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.messaging.queue import OutgoingMessage
from shared.services.operations import reconcile


def _admin(stack: Any, method: str, path: str, body: Any = None) -> Any:
    return stack.call(method, f"manage/workspaces/{stack.workspace_id}/{path}", body, headers={})


def test_health_log_and_retry_bring_a_failed_update_back(stack: Any) -> None:
    missing = str(uuid.uuid4())
    client = stack.services.dataverse(stack.sandbox.url)
    client.upsert("contacts", missing, {"lastname": "Soon Gone"})
    stack.call("PUT", "contacts", {"contacts": [{"crmId": missing, "title": "Later"}]})
    client.delete("contacts", missing)  # deleted in Dynamics before the update is written
    stack.call("POST", "contacts", {"contacts": [{"externalId": "ok", "email": "ok@ops.example", "lastName": "Ok"}]})
    stack.drain()

    health = _admin(stack, "GET", "sync-health").json
    assert health["counts"]["contact"] == {"failed": 1, "created": 1}
    [attention] = health["attention"]
    assert attention["key"] == missing and attention["code"] == "0x80040217" and attention["retryable"] is True

    failed = _admin(stack, "GET", "sync-log?status=failed").json["entries"]
    assert [e["key"] for e in failed] == [missing]
    assert _admin(stack, "GET", "sync-log?status=bogus").status_code == 400

    # The record appears in Dynamics (created by someone else); retrying now succeeds.
    client.upsert("contacts", missing, {"lastname": "Created Elsewhere"})
    outcome = _admin(stack, "POST", "sync-log/retry", {"kind": "contact"})
    assert outcome.status_code == 202 and outcome.json == {"requeued": 1, "not_retryable": 0}
    stack.drain()
    assert stack.sandbox.store.get("contact", missing)["jobtitle"] == "Later"
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "update", missing)
    assert entry is not None and entry.status == "updated"


def test_dead_letters_are_replayed_by_the_admin_api(stack: Any) -> None:
    stack.queue.max_delivery_count = 1
    poison = OutgoingMessage(body={"operation": "create"}, session_id=stack.workspace_id, message_id="poison")
    stack.queue.send(stack.settings.writes_queue, [poison])
    assert stack.drain().dead_lettered == 1
    replay = stack.call("POST", f"manage/queues/{stack.settings.writes_queue}/replay-dead-letters", headers={})
    assert replay.json == {"queue": stack.settings.writes_queue, "replayed": 1}
    assert stack.queue.pending(stack.settings.writes_queue) == 1
    assert stack.call("POST", "manage/queues/nope/replay-dead-letters", headers={}).status_code == 404


def test_preview_shows_the_match_and_body_and_writes_nothing(stack: Any) -> None:
    before = len(stack.rows("contact"))
    records = [
        {"externalId": "p1", "email": "maria.garcia@ACME.com", "firstName": "María", "title": "CMO"},
        {"externalId": "p2", "email": "new@preview.example", "lastName": "New", "title": "x" * 150},
    ]
    response = _admin(stack, "POST", "preview", {"kind": "contact", "records": records})
    assert response.status_code == 200
    first, second = response.json["records"]
    assert first["matched"] is True and first["writesTo"] == SEED_IDS["contact:maria"]
    assert first["action"] == "update" and first["body"]["jobtitle"] == "CMO"
    assert second["action"] == "create" and second["body"]["lastname"] == "New"
    assert any("jobtitle" in w for w in second["warnings"])
    assert len(stack.rows("contact")) == before
    assert stack.queue.pending() == 0
    bad = _admin(stack, "POST", "preview", {"kind": "lead-ish", "records": records})
    assert bad.status_code == 400 and "kind" in bad.json["message"]


def test_validation_against_live_metadata_names_each_problem(stack: Any) -> None:
    assert _admin(stack, "POST", "validate").json == {
        "valid": True, "problems": [], "change_tracking": {"contact": True, "account": True}
    }
    store = stack.services.store
    current = store.get_section(stack.workspace_id, "export")
    store.put_section(
        stack.workspace_id,
        "export",
        {
            "contact": {
                "fields": [{"source": "x", "column": "gd_nope"}],
                "fixed": [{"column": "leadsourcecode", "value": "Billboard"}],
            }
        },
        current.etag,
        "tests",
    )
    result = _admin(stack, "POST", "validate").json
    assert result["valid"] is False
    fields = {p["path"]: p["message"] for p in result["problems"]}
    assert "contact.fields[0].column" in fields and "gd_nope" in fields["contact.fields[0].column"]
    assert "Billboard" in fields["contact.fixed[0].value"]
    assert all(p["severity"] in ("error", "warning") and p["fix"] for p in result["problems"])


def test_reconciliation_requeues_records_left_retrying(stack: Any) -> None:
    from shared.domain.write_messages import WriteItem
    from shared.storage.ledger import LedgerEntry

    item = WriteItem(
        external_id="stuck", crm_id=str(uuid.uuid4()), fields={"lastName": "Stuck", "email": "s@x.example"}
    )
    stack.services.ledger.record(
        [
            LedgerEntry(
                workspace_id=stack.workspace_id,
                kind="contact",
                operation="create",
                key="stuck",
                status="retrying",
                retry={
                    "operation": "create",
                    "kind": "contact",
                    "item": item.model_dump(mode="json"),
                    "export_values": {},
                },
            )
        ]
    )
    assert reconcile(stack.services, stale_after=timedelta(hours=1))[stack.workspace_id]["requeued"] == 0
    report = reconcile(stack.services, stale_after=timedelta(0))
    assert report[stack.workspace_id]["requeued"] == 1
    stack.drain()
    assert stack.sandbox.store.get("contact", item.crm_id)["lastname"] == "Stuck"
    stack.host.run_timer("reconciliation")  # the registered timer runs the same job
