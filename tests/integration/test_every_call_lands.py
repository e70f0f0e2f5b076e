"""Ordinary Genesy sequences land exactly once, or in the ledger with a reason (issue: every call lands).

All on the local stack: Azurite, the HTTPS Dataverse sandbox, the app's registered functions.
"""

from __future__ import annotations

import uuid
from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.domain.entities import issued_kind, new_record_id

ALICE = SEED_IDS["user:alice"]
BRUNO = SEED_IDS["user:bruno"]
MARIA = SEED_IDS["contact:maria"]
ACME = SEED_IDS["account:acme"]


def _export_contact(stack: Any, external_id: str, **fields: Any) -> str:
    body = {"contacts": [{"externalId": external_id, "lastName": "Pending", **fields}]}
    response = stack.call("POST", "contacts", body)
    assert response.status_code == 200, response.json
    return str(response.json["results"][0]["crmId"])


def _export_company(stack: Any, external_id: str, **fields: Any) -> str:
    response = stack.call("POST", "companies", {"companies": [{"externalId": external_id, **fields}]})
    assert response.status_code == 200, response.json
    return str(response.json["results"][0]["crmId"])


# --- 1. an id we handed out is usable at once -------------------------------------------------------


def test_issued_ids_carry_their_kind_and_workspace() -> None:
    contact = new_record_id("ws-1", "contact", "ext-1")
    assert issued_kind("ws-1", contact) == "contact"
    assert issued_kind("ws-1", contact.upper()) == "contact"
    assert issued_kind("ws-2", contact) is None  # another workspace's id is not ours
    assert issued_kind("ws-1", new_record_id("ws-1", "company", "ext-1")) == "company"
    assert issued_kind("ws-1", str(uuid.uuid4())) is None
    assert issued_kind("ws-1", "not-a-guid") is None
    assert new_record_id("ws-1", "contact", "ext-1") == contact  # stable
    assert uuid.UUID(contact).version == 5


def test_task_and_activity_right_after_the_export_land_after_their_contact(stack: Any) -> None:
    contact_id = _export_contact(stack, "fresh-1", email="fresh1@lands.example", firstName="Fresh")
    assert stack.rows("contact") and not [r for r in stack.rows("contact") if r["contactid"] == contact_id]

    task = stack.call("POST", "tasks", {"subject": "Call Fresh", "type": "call", "contactId": contact_id})
    assert task.status_code == 201, task.json
    task_id = task.json["id"]
    assert task.json["contactId"] == contact_id and task.json["completed"] is False
    # Readable at once, before it is written.
    assert stack.call("GET", f"tasks/{task_id}").json == task.json
    assert stack.call("POST", "tasks/batch", {"ids": [task_id, str(uuid.uuid4())]}).json == [task.json]
    # A change made while it is queued is kept and applied in order.
    patched = stack.call("PATCH", f"tasks/{task_id}", {"completed": True})
    assert patched.status_code == 200 and patched.json["completed"] is True

    activity = stack.call(
        "POST",
        "activities",
        {
            "type": "EMAIL",
            "direction": "OUTBOUND",
            "subject": "Hello",
            "contactId": contact_id,
            "occurredAt": "2024-03-01T10:00:00Z",
            "metadata": {"messageId": "m-fresh-1", "campaignName": "Spring"},
        },
    )
    assert activity.status_code == 201, activity.json
    activity_id = activity.json["id"]
    assert stack.call("GET", f"activities/{activity_id}").json["id"] == activity_id

    report = stack.drain()
    assert report.failed == 0 and report.dead_lettered == 0
    task_row = stack.sandbox.store.get("task", task_id)
    assert task_row["_regardingobjectid_value"] == contact_id and task_row["statecode"] == 1
    email_row = stack.sandbox.store.get("email", activity_id)
    assert email_row["_regardingobjectid_value"] == contact_id
    # Once written, reads come from Dynamics.
    assert stack.call("GET", f"tasks/{task_id}").json["completed"] is True
    entry = stack.services.ledger.get(stack.workspace_id, "task", "create", task_id)
    assert entry is not None and entry.status == "created"


def test_association_and_update_right_after_the_export_are_accepted(stack: Any) -> None:
    company_id = _export_company(stack, "co-fresh", name="Fresh Co", domain="freshco.example")
    contact_id = _export_contact(stack, "fresh-2", email="fresh2@lands.example")
    linked = stack.call(
        "POST", "associations", {"associations": [{"contactCRMId": contact_id, "companyCRMId": company_id}]}
    )
    assert linked.json == {"success": True, "created": 1}
    updated = stack.call("PUT", "contacts", {"contacts": [{"crmId": contact_id, "title": "CTO"}]})
    assert updated.json == {"results": [{"crmId": contact_id, "success": True}]}
    assert stack.drain().failed == 0
    row = stack.sandbox.store.get("contact", contact_id)
    assert row["_parentcustomerid_value"] == company_id and row["jobtitle"] == "CTO"


def test_a_task_about_an_unknown_id_is_still_genesys_404(stack: Any) -> None:
    stranger = str(uuid.uuid4())
    response = stack.call("POST", "tasks", {"subject": "Nobody", "contactId": stranger})
    assert response.status_code == 404 and response.json["error"] == "Contact not found"
    activity = stack.call("POST", "activities", {"type": "EMAIL", "contactId": stranger, "subject": "x"})
    assert activity.status_code == 404
    # Another workspace's issued id is unknown here.
    foreign = new_record_id("another-workspace", "contact", "x")
    assert stack.call("POST", "tasks", {"subject": "Nobody", "contactId": foreign}).status_code == 404
    assert stack.call("GET", f"tasks/{new_record_id(stack.workspace_id, 'task', 'never')}").status_code == 404
    assert stack.call("GET", f"activities/{uuid.uuid4()}").status_code == 404


def test_a_task_for_a_contact_whose_create_failed_ends_in_the_ledger_with_the_reason(stack: Any) -> None:
    # The contact's create is refused for good: this environment enforces a required last name.
    stack.sandbox.config.enforce_application_required = True
    contact_id = _export_contact(stack, "doomed", email="doomed@lands.example", lastName=None)
    task = stack.call("POST", "tasks", {"subject": "After doom", "contactId": contact_id})
    assert task.status_code == 201
    assert stack.drain().dead_lettered == 0
    ledger = stack.services.ledger
    contact_entry = ledger.get(stack.workspace_id, "contact", "create", "doomed")
    assert contact_entry is not None and contact_entry.status == "failed"
    task_entry = ledger.get(stack.workspace_id, "task", "create", task.json["id"])
    assert task_entry is not None and task_entry.status == "failed"
    assert "not in Dynamics" in (task_entry.message or "") and task_entry.retry is not None


# --- 4. permanent errors fail at once; transient ones are retried ----------------------------------


def test_a_mapping_naming_a_missing_column_fails_the_records_at_once_with_the_fix(stack: Any) -> None:
    stack.services.store.put_section(
        stack.workspace_id,
        "sync",
        {"contact": {"mode": "custom", "rules": [{"all_of": [{"field": "email", "column": "gd_missing_email"}]}]}},
        "*",
    )
    response = stack.call("POST", "contacts", {"contacts": [{"externalId": "perm-1", "email": "p1@perm.example"}]})
    assert response.status_code == 200
    report = stack.drain()
    assert report.dead_lettered == 0
    assert report.failed == 0  # not abandoned for a redelivery: there is nothing a retry could change
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "create", "perm-1")
    assert entry is not None and entry.status == "failed" and entry.attempts == 1
    assert "gd_missing_email" in (entry.message or "") and "to fix" in (entry.message or "")
    assert entry.retry is not None  # retryable from the admin API once the mapping is fixed


# --- 6. answers that tell the truth ---------------------------------------------------------------


def test_put_on_an_id_that_never_existed_says_so(stack: Any) -> None:
    stranger = str(uuid.uuid4())
    response = stack.call(
        "PUT", "contacts", {"contacts": [{"crmId": stranger, "title": "X"}, {"crmId": MARIA, "title": "CEO"}]}
    )
    assert response.status_code == 200
    results = {r["crmId"]: r for r in response.json["results"]}
    assert results[stranger]["success"] is False and "not found" in results[stranger]["error"]
    assert results[MARIA] == {"crmId": MARIA, "success": True}
    stack.drain()
    assert stack.sandbox.store.get("contact", MARIA)["jobtitle"] == "CEO"
    assert not [r for r in stack.rows("contact") if r["contactid"] == stranger]


def test_associations_report_unknown_ids_and_count_only_new_links(stack: Any) -> None:
    stranger = str(uuid.uuid4())
    body = {
        "associations": [
            {"contactCRMId": MARIA, "companyCRMId": ACME},
            {"contactCRMId": MARIA, "companyCRMId": ACME},  # a repeat in the call
            {"contactCRMId": stranger, "companyCRMId": ACME},
            {"contactCRMId": MARIA, "companyCRMId": stranger},
        ]
    }
    first = stack.call("POST", "associations", body).json
    maria_parent = stack.sandbox.store.get("contact", MARIA).get("_parentcustomerid_value")
    assert first["success"] is True
    assert first["created"] == (0 if maria_parent == ACME else 1)
    assert first["errors"] == [
        {"contactCRMId": stranger, "companyCRMId": ACME, "error": "Contact not found"},
        {"contactCRMId": MARIA, "companyCRMId": stranger, "error": "Company not found"},
    ]
    stack.drain()
    assert stack.sandbox.store.get("contact", MARIA)["_parentcustomerid_value"] == ACME
    again = stack.call("POST", "associations", {"associations": [{"contactCRMId": MARIA, "companyCRMId": ACME}]})
    assert again.json == {"success": True, "created": 0}  # already linked
    only_bad = stack.call("POST", "associations", {"associations": [{"contactCRMId": stranger, "companyCRMId": ACME}]})
    assert only_bad.json["success"] is False and only_bad.json["created"] == 0


# --- 8. copies of one person in one call ----------------------------------------------------------


def test_copies_keep_the_better_written_values_and_the_resolved_owner(stack: Any) -> None:
    stack.services.store.put_section(stack.workspace_id, "users", {"default_owner_id": ALICE}, "*")
    contacts = [
        {
            "externalId": "copy-a",
            "firstName": "José",
            "lastName": "García",
            "email": "jose.garcia@copies.example",
            "ownerId": BRUNO,
        },
        {
            "externalId": "copy-b",
            "firstName": "JOSE",
            "lastName": "GARCIA",
            "email": "JOSE.GARCIA@COPIES.EXAMPLE",
            "ownerId": "genesy-user-unmapped",
            "title": "Founder",
        },
    ]
    results = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    assert results[0]["crmId"] == results[1]["crmId"]
    assert stack.drain().failed == 0
    rows = [r for r in stack.rows("contact") if (r.get("emailaddress1") or "").lower() == "jose.garcia@copies.example"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["firstname"], row["lastname"], row["emailaddress1"]) == ("José", "García", "jose.garcia@copies.example")
    assert row["jobtitle"] == "Founder"  # a later copy still fills in what the first lacked
    assert row["_ownerid_value"] == BRUNO


# --- 9. no invented campaign ------------------------------------------------------------------------


def test_an_email_without_a_campaign_invents_none(stack: Any) -> None:
    before = {k: v for k, v in stack.sandbox.store.get("contact", MARIA).items() if k.startswith("gd_campaign_")}
    response = stack.call(
        "POST",
        "activities",
        {
            "type": "EMAIL",
            "direction": "OUTBOUND",
            "subject": "Hi",
            "contactId": MARIA,
            "metadata": {"messageId": "nc"},
        },
    )
    assert response.status_code == 201
    stack.drain()
    after = {k: v for k, v in stack.sandbox.store.get("contact", MARIA).items() if k.startswith("gd_campaign_")}
    assert after == before
    assert not any("Genesy sequence" in str(v) for v in after.values())


# --- 5. activity types beyond the documented four ---------------------------------------------------


def test_a_call_or_meeting_is_logged_not_refused(stack: Any) -> None:
    call = stack.call(
        "POST", "activities", {"type": "call", "direction": "outbound", "subject": "Intro call", "contactId": MARIA}
    )
    assert call.status_code == 201, call.json
    row = stack.sandbox.store.get("task", call.json["id"])
    assert row["subject"].startswith("[Call (outbound)] Intro call") and row["statecode"] == 1
    meeting = stack.call("POST", "activities", {"type": "MEETING", "subject": "Demo", "companyId": ACME})
    assert meeting.status_code == 201
    assert stack.sandbox.store.get("task", meeting.json["id"])["subject"] == "[Meeting] Demo"
