"""Tasks and activities through the registered functions, against the Dataverse sandbox over HTTPS."""

from __future__ import annotations

import uuid
from typing import Any

from devstack.dataverse_sandbox.schema import ENTITIES
from devstack.dataverse_sandbox.seed import SEED_IDS

ALICE = SEED_IDS["user:alice"]
BRUNO = SEED_IDS["user:bruno"]
DISABLED = SEED_IDS["user:disabled"]
MARIA = SEED_IDS["contact:maria"]
ACME = SEED_IDS["account:acme"]


def _set_users_mapping(stack: Any, document: dict[str, Any]) -> None:
    stack.services.store.put_section(stack.workspace_id, "users", document, "*")


def _complete_in_dynamics(stack: Any, task_id: str, actual_end: str) -> None:
    """A salesperson closes the task in Dynamics (straight in the sandbox's store)."""
    store = stack.sandbox.store
    entity = ENTITIES["task"]
    with store.lock:
        row = store.find(entity, task_id)
        store.update(
            entity, row, {"statecode": 1, "statuscode": 5, "actualend": actual_end}, user_id=SEED_IDS["user:bruno"]
        )


def test_create_task_regarding_contact_with_owner_type_and_due_date(stack: Any) -> None:
    body = {
        "subject": "Follow up with María",
        "description": "Discuss pricing",
        "type": "call",
        "ownerId": BRUNO,
        "dueDate": "2024-01-15T10:00:00Z",
        "contactId": MARIA,
        "companyId": ACME,
    }
    response = stack.call("POST", "tasks", body)
    assert response.status_code == 201
    task = response.json
    assert task == {
        "id": task["id"],
        "subject": "Follow up with María",
        "description": "Discuss pricing",
        "type": "call",
        "ownerId": BRUNO,
        "dueDate": "2024-01-15T10:00:00Z",
        "contactId": MARIA,
        "companyId": None,
        "completed": False,
        "completedAt": None,
    }
    row = stack.sandbox.store.get("task", task["id"])
    assert row["_regardingobjectid_value"] == MARIA
    assert row["_ownerid_value"] == BRUNO
    assert row["description"] == "[Genesy type: call]\nDiscuss pricing"
    assert row["statecode"] == 0
    assert stack.call("GET", f"tasks/{task['id']}").json == task


def test_task_regarding_company_and_default_owner_for_unknown_or_disabled_user(stack: Any) -> None:
    _set_users_mapping(stack, {"default_owner_id": ALICE})
    unknown = stack.call("POST", "tasks", {"subject": "Intro", "ownerId": "user-123", "companyId": ACME}).json
    disabled = stack.call("POST", "tasks", {"subject": "Intro 2", "ownerId": DISABLED, "companyId": ACME}).json
    assert unknown["ownerId"] == ALICE and disabled["ownerId"] == ALICE
    assert unknown["companyId"] == ACME and unknown["contactId"] is None
    assert stack.sandbox.store.get("task", unknown["id"])["_regardingobjectid_value"] == ACME


def test_task_for_lead_workspace_is_regarding_the_lead(stack: Any) -> None:
    store = stack.services.store
    store.update_workspace(stack.workspace_id, {"contact_entity": "lead"}, "*")
    lead = SEED_IDS["lead:1"]
    task = stack.call("POST", "tasks", {"subject": "Call Lena", "contactId": lead}).json
    assert task["contactId"] == lead
    row = stack.sandbox.store.get("task", task["id"])
    assert row["_regardingobjectid_value"] == lead


def test_patch_completes_reopens_and_updates_fields(stack: Any) -> None:
    task = stack.call("POST", "tasks", {"subject": "Send proposal", "type": "email", "contactId": MARIA}).json
    done = stack.call("PATCH", f"tasks/{task['id']}", {"completed": True}).json
    assert done["completed"] is True and done["completedAt"] is not None
    row = stack.sandbox.store.get("task", task["id"])
    assert (row["statecode"], row["statuscode"]) == (1, 5)
    again = stack.call("PATCH", f"tasks/{task['id']}", {"completed": True}).json
    assert again["completedAt"] == done["completedAt"]  # completing twice keeps the first time

    reopened = stack.call("PATCH", f"tasks/{task['id']}", {"completed": False}).json
    assert reopened["completed"] is False and reopened["completedAt"] is None
    row = stack.sandbox.store.get("task", task["id"])
    assert (row["statecode"], row["statuscode"]) == (0, 2)

    edited = stack.call(
        "PATCH", f"tasks/{task['id']}", {"subject": "Send revised proposal", "dueDate": "2024-02-01T09:30:00Z"}
    ).json
    assert edited["subject"] == "Send revised proposal"
    assert edited["dueDate"] == "2024-02-01T09:30:00Z"
    assert edited["type"] == "email"  # the type survives a field update
    described = stack.call("PATCH", f"tasks/{task['id']}", {"description": "v2 attached"}).json
    assert (described["type"], described["description"]) == ("email", "v2 attached")


def test_completion_done_in_dynamics_reaches_genesy(stack: Any) -> None:
    first = stack.call("POST", "tasks", {"subject": "Call 1", "contactId": MARIA}).json
    second = stack.call("POST", "tasks", {"subject": "Call 2", "contactId": MARIA}).json
    _complete_in_dynamics(stack, first["id"], "2024-12-18T09:00:00Z")

    got = stack.call("GET", f"tasks/{first['id']}").json
    assert got["completed"] is True and got["completedAt"] == "2024-12-18T09:00:00Z"
    missing = str(uuid.uuid4())
    batch = stack.call("POST", "tasks/batch", {"ids": [second["id"], missing, first["id"], "not-a-guid"]})
    assert batch.status_code == 200
    assert [(t["id"], t["completed"], t["completedAt"]) for t in batch.json] == [
        (second["id"], False, None),
        (first["id"], True, "2024-12-18T09:00:00Z"),
    ]


def test_batch_patch_completes_many_in_one_batched_write(stack: Any) -> None:
    ids = [stack.call("POST", "tasks", {"subject": f"Task {n}", "contactId": MARIA}).json["id"] for n in range(3)]
    stack.sandbox.reset_counters()
    missing = str(uuid.uuid4())
    response = stack.call("PATCH", "tasks/batch", {"ids": [*ids, missing], "completed": True})
    assert response.status_code == 200
    assert [t["id"] for t in response.json] == ids
    assert all(t["completed"] and t["completedAt"] for t in response.json)
    assert all(stack.sandbox.store.get("task", i)["statecode"] == 1 for i in ids)
    batches = [r for r in stack.sandbox.request_log if r.path.endswith("$batch")]
    assert len(batches) == 1

    reopened = stack.call("PATCH", "tasks/batch", {"ids": ids[:1], "completed": False}).json
    assert [(t["id"], t["completed"]) for t in reopened] == [(ids[0], False)]


def test_unknown_task_ids_are_404_and_bad_bodies_400(stack: Any) -> None:
    missing = str(uuid.uuid4())
    for method, path, body in (
        ("GET", f"tasks/{missing}", None),
        ("GET", "tasks/task-xyz", None),
        ("PATCH", f"tasks/{missing}", {"completed": True}),
        ("PATCH", "tasks/task-xyz", {"completed": True}),
    ):
        response = stack.call(method, path, body)
        assert response.status_code == 404, (method, path)
        assert response.json["error"] == "Task not found"
        assert response.json["message"] == f"No task exists with ID: {path.split('/')[1]}"

    cases = [
        ({"description": "no subject"}, "subject"),
        ({"subject": ""}, "subject"),
        ({"subject": "x", "dueDate": "next tuesday"}, "dueDate"),
        ({"subject": "x", "contactId": "contact-456"}, "contactId"),
        ({"subject": "x", "companyId": "company-789"}, "companyId"),
    ]
    for request, field in cases:
        response = stack.call("POST", "tasks", request)
        assert response.status_code == 400, request
        assert field in response.json["message"], response.json
    assert stack.call("POST", "tasks/batch", {"ids": "nope"}).status_code == 400
    bad_patch = stack.call("PATCH", "tasks/batch", {"ids": ["a"], "completed": "maybe"})
    assert bad_patch.status_code == 400 and "completed" in bad_patch.json["message"]
    assert stack.rows("task") == []


def test_task_for_a_contact_not_in_dynamics_is_404_naming_it(stack: Any) -> None:
    ghost = str(uuid.uuid4())
    response = stack.call("POST", "tasks", {"subject": "Call", "contactId": ghost})
    assert response.status_code == 404
    assert response.json["error"] == "Contact not found" and ghost in response.json["message"]


# ---------------------------------------------------------------------------------------------
# Activities


def _parties(stack: Any, activity_id: str) -> list[tuple[int, str]]:
    return sorted(
        (p["participationtypemask"], p["_partyid_value"])
        for p in stack.rows("activityparty")
        if p["_activityid_value"] == activity_id
    )


def test_outbound_email_is_a_completed_email_from_the_sender_to_the_contact(stack: Any) -> None:
    _set_users_mapping(
        stack, {"identities": [{"identity": "john@acme-sales.com", "systemuser_id": BRUNO}], "default_owner_id": ALICE}
    )
    body = {
        "type": "EMAIL",
        "subject": "[1/3] [FROM Acme Corp] John Smith",
        "body": "<div>Hi María</div>",
        "direction": "OUTBOUND",
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": MARIA,
        "companyId": ACME,
        "metadata": {"messageId": "email-msg-1", "senderEmail": "john@acme-sales.com", "sequenceIndex": 1},
    }
    response = stack.call("POST", "activities", body)
    assert response.status_code == 201
    activity = response.json
    assert {k: activity[k] for k in ("type", "subject", "direction", "occurredAt")} == {
        "type": "EMAIL",
        "subject": "[1/3] [FROM Acme Corp] John Smith",
        "direction": "OUTBOUND",
        "occurredAt": "2024-12-31T10:00:00Z",
    }
    email = stack.sandbox.store.get("email", activity["id"])
    assert email["directioncode"] is True
    assert email["description"] == "<div>Hi María</div>"
    assert (email["statecode"], email["statuscode"]) == (1, 2)
    assert email["_regardingobjectid_value"] == MARIA
    assert email["actualend"] == "2024-12-31T10:00:00Z"
    assert _parties(stack, activity["id"]) == [(1, BRUNO), (2, MARIA)]


def test_inbound_email_reverses_the_parties(stack: Any) -> None:
    body = {
        "type": "EMAIL",
        "subject": "[Acme Corporation] María García",
        "body": "Thanks!",
        "direction": "INBOUND",
        "ownerId": ALICE,
        "contactId": MARIA,
        "metadata": {"messageId": "email-reply-1"},
    }
    activity = stack.call("POST", "activities", body).json
    email = stack.sandbox.store.get("email", activity["id"])
    assert email["directioncode"] is False
    assert _parties(stack, activity["id"]) == [(1, MARIA), (2, ALICE)]


def test_linkedin_activities_are_completed_tasks_with_a_prefix(stack: Any) -> None:
    sent = {
        "type": "LINKEDIN",
        "subject": "[1/3] [FROM Acme Corp] John Smith",
        "body": "Hi María, I noticed your company is expanding...",
        "direction": "OUTBOUND",
        "ownerId": ALICE,
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": MARIA,
        "metadata": {"messageId": "linkedin-msg-123", "sequenceIndex": 1, "sequenceMessageCount": 3},
    }
    activity = stack.call("POST", "activities", sent).json
    task = stack.sandbox.store.get("task", activity["id"])
    assert task["subject"] == "[LinkedIn message sent] [1/3] [FROM Acme Corp] John Smith"
    assert task["description"] == sent["body"]
    assert (task["statecode"], task["statuscode"]) == (1, 5)
    assert task["actualend"] == "2024-12-31T10:00:00Z"
    assert task["_regardingobjectid_value"] == MARIA and task["_ownerid_value"] == ALICE

    accepted = {
        "type": "LINKEDIN_CONNECTION",
        "direction": "INBOUND",
        "contactId": MARIA,
        "metadata": {"messageId": "conn-1"},
    }
    accepted_task = stack.sandbox.store.get("task", stack.call("POST", "activities", accepted).json["id"])
    assert accepted_task["subject"] == "[LinkedIn connection accepted]"
    inmail = {
        "type": "LINKEDIN_INMAIL",
        "subject": "Hello",
        "direction": "OUTBOUND",
        "companyId": ACME,
        "metadata": {"messageId": "inmail-1"},
    }
    inmail_task = stack.sandbox.store.get("task", stack.call("POST", "activities", inmail).json["id"])
    assert inmail_task["subject"] == "[LinkedIn InMail sent] Hello"
    assert inmail_task["_regardingobjectid_value"] == ACME


def test_a_repeated_message_returns_the_same_activity_and_logs_one_record(stack: Any) -> None:
    body = {
        "type": "LINKEDIN",
        "subject": "[2/3] [FROM Acme Corp] John Smith",
        "direction": "OUTBOUND",
        "contactId": MARIA,
        "metadata": {"messageId": "linkedin-msg-dup", "sequenceIndex": 2, "sequenceMessageCount": 3},
    }
    first = stack.call("POST", "activities", body)
    second = stack.call("POST", "activities", body)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json["id"] == second.json["id"]
    assert len(stack.rows("task")) == 1

    # Without a messageId the content identifies the message.
    no_id = {
        "type": "EMAIL",
        "subject": "Re: Intro",
        "body": "<div>Thanks</div>",
        "direction": "OUTBOUND",
        "occurredAt": "2024-12-31T11:00:00Z",
        "contactId": MARIA,
    }
    assert stack.call("POST", "activities", no_id).json["id"] == stack.call("POST", "activities", no_id).json["id"]
    assert len(stack.rows("email")) == 1


def test_a_lost_index_row_still_ends_in_one_record(stack: Any) -> None:
    """Two racing calls: the second create hits the same derived id (412) and answers with it."""
    from azure.data.tables import TableServiceClient

    body = {
        "type": "EMAIL",
        "subject": "Race",
        "direction": "OUTBOUND",
        "contactId": MARIA,
        "metadata": {"messageId": "race-1"},
    }
    first = stack.call("POST", "activities", body).json
    service = TableServiceClient.from_connection_string(stack.settings.tables_connection_string)
    table = service.get_table_client(f"{stack.settings.table_prefix}activities")
    for entity in list(table.list_entities()):
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    second = stack.call("POST", "activities", body)
    assert second.status_code == 200 and second.json["id"] == first["id"]
    assert len(stack.rows("email")) == 1


def test_unlinked_activity_is_logged_without_regarding(stack: Any) -> None:
    response = stack.call("POST", "activities", {"type": "LINKEDIN", "subject": "Note", "direction": "OUTBOUND"})
    assert response.status_code == 201
    task = stack.sandbox.store.get("task", response.json["id"])
    assert task["_regardingobjectid_value"] is None and task["statecode"] == 1
    assert stack.queue.pending(stack.settings.campaign_queue) == 0  # no contact, no campaign event


def test_bad_activity_bodies_are_400_naming_the_field(stack: Any) -> None:
    for body, field in (
        ({"subject": "no type"}, "type"),
        ({"type": ["EMAIL"]}, "type"),
        ({"type": "EMAIL", "direction": "SIDEWAYS"}, "direction"),
        ({"type": "EMAIL", "contactId": "contact_8f3k2j"}, "contactId"),
        ({"type": "EMAIL", "occurredAt": "yesterday"}, "occurredAt"),
    ):
        response = stack.call("POST", "activities", body)
        assert response.status_code == 400, body
        assert field in response.json["message"], response.json
    assert stack.rows("email") == [] and stack.rows("task") == []
