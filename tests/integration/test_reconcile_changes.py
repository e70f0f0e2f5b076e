"""Merges and deletions done in Dynamics, found by reconciliation's change tracking, through the registered
functions against the Dataverse sandbox over HTTPS."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS

SURVIVOR = SEED_IDS["contact:jose"]
SUBORDINATE = SEED_IDS["contact:sean"]
NS = "Microsoft.Dynamics.CRM."



def _reconcile(stack: Any) -> dict[str, Any]:
    response = stack.call("POST", f"manage/workspaces/{stack.workspace_id}/reconcile", {}, headers={})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def test_first_round_only_establishes_the_links(stack: Any) -> None:
    run = _reconcile(stack)
    report = run["changes"]
    assert report["tables"] == {
        "contact": {"mode": "change_tracking", "changed": 0, "merged": 0, "deleted": 0},
        "account": {"mode": "change_tracking", "changed": 0, "merged": 0, "deleted": 0},
    }
    assert run["dataverse_requests"] >= 2
    assert stack.services.aliases.delta(stack.workspace_id, "contact")
    assert stack.services.aliases.delta(stack.workspace_id, "account")
    again = _reconcile(stack)["changes"]["tables"]["contact"]
    assert again == {"mode": "change_tracking", "changed": 0, "merged": 0, "deleted": 0}


def test_a_merged_contact_reaches_the_survivor_everywhere(stack: Any) -> None:
    _reconcile(stack)
    with stack.dynamics() as api:
        merged = api.post("Merge", json={
            "Target": {"@odata.type": NS + "contact", "contactid": SURVIVOR},
            "Subordinate": {"@odata.type": NS + "contact", "contactid": SUBORDINATE},
            "PerformParentingChecks": False,
        })
        assert merged.status_code == 204, merged.text
    report = _reconcile(stack)["changes"]["tables"]["contact"]
    assert report == {"mode": "change_tracking", "changed": 2, "merged": 1, "deleted": 0}
    assert stack.services.aliases.resolve(stack.workspace_id, "contact", [SUBORDINATE]) == {SUBORDINATE: SURVIVOR}

    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": SUBORDINATE, "title": "Merged title"}]}).json
    assert put["results"] == [{"crmId": SUBORDINATE, "success": True}]
    stack.drain()
    assert stack.sandbox.store.get("contact", SURVIVOR)["jobtitle"] == "Merged title"
    assert stack.sandbox.store.get("contact", SUBORDINATE).get("jobtitle") != "Merged title"

    task = stack.call("POST", "tasks", {"subject": "Call", "contactId": SUBORDINATE})
    assert task.status_code == 201, task.json
    assert stack.sandbox.store.get("task", task.json["id"])["_regardingobjectid_value"] == SURVIVOR

    activity = stack.call("POST", "activities", {"type": "LINKEDIN", "subject": "Note", "direction": "OUTBOUND",
                                                 "contactId": SUBORDINATE})
    assert activity.status_code == 201, activity.json
    assert stack.sandbox.store.get("task", activity.json["id"])["_regardingobjectid_value"] == SURVIVOR

    batch = stack.call("POST", "contacts/batch", {"ids": [SUBORDINATE]}).json["results"]
    assert len(batch) == 1
    assert batch[0]["title"] == "Merged title"
    assert batch[0]["lastName"] == "Núñez"


def test_a_merge_notes_the_ledger_rows_of_the_subordinate(stack: Any) -> None:
    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": SUBORDINATE, "title": "Before"}]}).json
    assert put["results"][0]["success"]
    stack.drain()
    _reconcile(stack)
    with stack.dynamics() as api:
        assert api.post("Merge", json={
            "Target": {"@odata.type": NS + "contact", "contactid": SURVIVOR},
            "Subordinate": {"@odata.type": NS + "contact", "contactid": SUBORDINATE},
            "PerformParentingChecks": False,
        }).status_code == 204
    _reconcile(stack)
    rows = stack.services.ledger.by_crm_id(stack.workspace_id, SUBORDINATE)
    assert rows
    for row in rows:
        assert row.status == "updated"
        assert SURVIVOR in row.aliases
        assert row.message == f"merged into {SURVIVOR} in Dynamics"


def test_a_deleted_contact_is_answered_truthfully(stack: Any) -> None:
    created = stack.call("POST", "contacts", {"contacts": [
        {"externalId": "del-1", "email": "soon.gone@example.com", "firstName": "Soon", "lastName": "Gone"}
    ]}).json["results"]
    crm_id = created[0]["crmId"]
    stack.drain()
    assert stack.sandbox.store.get("contact", crm_id) is not None
    _reconcile(stack)
    with stack.dynamics() as api:
        assert api.delete(f"contacts({crm_id})").status_code == 204
    report = _reconcile(stack)["changes"]["tables"]["contact"]
    assert report == {"mode": "change_tracking", "changed": 0, "merged": 0, "deleted": 1}

    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": crm_id, "title": "Too late"}]}).json["results"]
    assert len(put) == 1 and put[0]["success"] is False
    assert put[0]["error"].startswith("Contact deleted in Dynamics")

    task = stack.call("POST", "tasks", {"subject": "Call", "contactId": crm_id})
    assert task.status_code == 404
    assert "deleted in Dynamics" in str(task.json)
    activity = stack.call("POST", "activities", {"type": "LINKEDIN", "subject": "Note", "direction": "OUTBOUND",
                                                 "contactId": crm_id})
    assert activity.status_code == 404
    assert "deleted in Dynamics" in str(activity.json)

    health = stack.call("GET", f"manage/workspaces/{stack.workspace_id}/sync-health", headers={}).json
    assert health["counts"]["contact"].get("deleted_in_dynamics", 0) >= 1
    rows = stack.services.ledger.by_crm_id(stack.workspace_id, crm_id)
    assert rows and all(r.status == "deleted_in_dynamics" for r in rows)
    assert all("deleted in Dynamics" in (r.message or "") for r in rows)
