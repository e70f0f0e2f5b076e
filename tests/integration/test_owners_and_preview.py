"""Owners auto-matched by e-mail, the identities seen (admin API), and the export preview as a diff against
Dynamics, on the local stack."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS

ALICE = SEED_IDS["user:alice"]
BRUNO = SEED_IDS["user:bruno"]
CHLOE = SEED_IDS["user:chloe"]
MARIA = SEED_IDS["contact:maria"]
ALICE_EMAIL = "alice.martin@contoso.onmicrosoft.com"
DANA_EMAIL = "dana.gone@contoso.onmicrosoft.com"  # a disabled user


def _admin(stack: Any, method: str, path: str, body: Any = None) -> Any:
    return stack.call(method, f"manage/workspaces/{stack.workspace_id}/{path}", body, headers={})


def _set_users_mapping(stack: Any, document: dict[str, Any]) -> None:
    stack.services.store.put_section(stack.workspace_id, "users", document, "*")


def _owner(stack: Any, contact_id: str) -> str:
    return str(stack.sandbox.store.get("contact", contact_id)["_ownerid_value"])


def _columns(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["column"]: c for c in record["columns"]}


def test_an_owner_email_of_an_enabled_user_owns_the_contact_and_a_disabled_one_falls_back(stack: Any) -> None:
    _set_users_mapping(stack, {"default_owner_id": CHLOE})
    contacts = [
        {"externalId": "o1", "email": "one@owners.example", "lastName": "One", "ownerEmail": ALICE_EMAIL.upper()},
        {"externalId": "o2", "email": "two@owners.example", "lastName": "Two", "ownerEmail": DANA_EMAIL},
        {"externalId": "o3", "email": "three@owners.example", "lastName": "Three"},
    ]
    answer = stack.call("POST", "contacts", {"contacts": contacts})
    assert answer.status_code == 200
    ids = {r["externalId"]: r["crmId"] for r in answer.json["results"]}
    stack.drain()
    assert _owner(stack, ids["o1"]) == ALICE  # auto-matched by e-mail, case-insensitively
    assert _owner(stack, ids["o2"]) == CHLOE  # disabled: the default owner
    assert _owner(stack, ids["o3"]) == CHLOE
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "create", "o2")
    assert entry is not None and any("dana.gone" in w for w in entry.warnings)


def test_an_activity_sender_is_auto_matched_by_email(stack: Any) -> None:
    _set_users_mapping(stack, {"default_owner_id": CHLOE})
    body = {
        "type": "EMAIL",
        "direction": "OUTBOUND",
        "subject": "Hello",
        "contactId": MARIA,
        "metadata": {"messageId": "auto-sender-1", "senderEmail": ALICE_EMAIL},
    }
    response = stack.call("POST", "activities", body)
    assert response.status_code == 201
    assert stack.sandbox.store.get("email", response.json["id"])["_ownerid_value"] == ALICE


def test_the_identities_route_lists_what_was_seen_with_its_resolution(stack: Any) -> None:
    _set_users_mapping(
        stack,
        {"users": [{"genesy_user": "bruno@sales-team.example", "systemuser_id": BRUNO}], "default_owner_id": CHLOE},
    )
    contacts = [
        {"externalId": "i1", "lastName": "Mapped", "ownerEmail": "Bruno@Sales-Team.example"},
        {"externalId": "i2", "lastName": "Auto", "ownerEmail": ALICE_EMAIL},
        {"externalId": "i3", "lastName": "Gone", "ownerEmail": DANA_EMAIL},
        {"externalId": "i4", "lastName": "Direct", "ownerId": BRUNO},
    ]
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200  # already noted: no write
    activity = {
        "type": "LINKEDIN",
        "direction": "OUTBOUND",
        "subject": "Hi",
        "contactId": MARIA,
        "metadata": {"messageId": "identities-1", "senderName": "Somebody Else"},
    }
    assert stack.call("POST", "activities", activity).status_code == 201

    response = _admin(stack, "GET", "identities")
    assert response.status_code == 200
    assert response.json["workspace_id"] == stack.workspace_id
    seen = {i["identity"]: i for i in response.json["identities"]}
    assert seen["bruno@sales-team.example"]["resolution"] == "mapped"
    assert seen["bruno@sales-team.example"]["user"]["id"] == BRUNO
    assert seen["bruno@sales-team.example"]["seenIn"][0]["source"] == "contact.ownerEmail"
    auto = seen[ALICE_EMAIL]
    assert auto["resolution"] == "auto-matched" and auto["user"]["name"] == "Alice Martin" and auto["role"] == "owner"
    gone = seen[DANA_EMAIL]
    assert gone["resolution"] == "default" and gone["user"]["id"] == CHLOE
    assert seen[BRUNO]["resolution"] == "direct"
    sender = seen["somebody else"]
    assert sender["role"] == "sender" and sender["resolution"] == "default"
    assert [s["source"] for s in sender["seenIn"]] == ["activity.sender"]
    assert all(i["lastSeen"] for i in seen.values())

    # Mapping the sender changes its resolution at once (resolution is computed on each call).
    _set_users_mapping(stack, {"identities": [{"identity": "Somebody Else", "systemuser_id": ALICE}]})
    again = {i["identity"]: i for i in _admin(stack, "GET", "identities").json["identities"]}
    assert again["somebody else"]["resolution"] == "mapped" and again["somebody else"]["user"]["id"] == ALICE
    assert again[DANA_EMAIL]["resolution"] == "none" and again[DANA_EMAIL]["user"] is None
    assert stack.call("GET", "manage/workspaces/nope/identities", headers={}).status_code == 404


def test_a_preview_of_an_existing_contact_shows_its_current_values_and_the_decisions(stack: Any) -> None:
    client = stack.services.dataverse(stack.sandbox.url)
    client.upsert("contacts", MARIA, {"jobtitle": "CMO"})
    update = {"firstName": "Maria", "title": "CMO", "phone": "+34 600 000 000", "ownerEmail": ALICE_EMAIL}
    response = _admin(stack, "POST", "preview", {"kind": "contact", "crmIds": [MARIA], "records": [update]})
    assert response.status_code == 200, response.json
    [record] = response.json["records"]
    assert record["match"] == {"decision": "by id", "record": MARIA, "rule": None, "candidates": [], "note": None}
    assert record["action"] == "update"
    columns = _columns(record)
    assert columns["firstname"] == {
        "column": "firstname",
        "source": "field:firstName",
        "current": "María",
        "value": "Maria",
        "decision": "skip: if_empty",
        "reason": "if_empty: Dynamics already has a value",
    }
    assert columns["jobtitle"]["decision"] == "unchanged" and columns["jobtitle"]["current"] == "CMO"
    assert columns["telephone1"]["decision"] == "write" and columns["telephone1"]["current"] is None
    assert columns["emailaddress1"]["decision"] == "skip: no value"
    assert columns["emailaddress1"]["current"] == "maria.garcia@acme.com"
    # An update changes the owner only when Genesy chose one (ownerId): the current owner stays.
    assert columns["ownerid"]["decision"] == "skip: no value" and columns["ownerid"]["current"] == ALICE
    assert stack.sandbox.store.get("contact", MARIA)["telephone1"] is None  # nothing written
    assert stack.queue.pending() == 0

    # The same contact matched like an export: which record, by which rule; a column cut to its length.
    sample = {"externalId": "pv-1", "email": "MARIA.GARCIA@acme.com", "title": "T" * 150, "ownerId": BRUNO}
    [matched] = _admin(stack, "POST", "preview", {"kind": "contact", "records": [sample]}).json["records"]
    assert matched["match"]["decision"] == "matched" and matched["match"]["record"] == MARIA
    assert matched["match"]["rule"]["conditions"][0]["field"] == "email"
    assert "emailaddress1" in matched["match"]["rule"]["description"]
    title = _columns(matched)["jobtitle"]
    assert title["decision"] == "truncated" and len(title["value"]) == 100 and "cut to 100" in title["reason"]
    owner = _columns(matched)["ownerid"]
    assert owner["decision"] == "write" and owner["current"] == ALICE and owner["value"] == BRUNO
    assert matched["owner"]["resolution"] == "direct" and matched["owner"]["user"]["name"] == "Bruno Díaz"


def test_a_preview_of_a_new_record_shows_the_match_decision_new(stack: Any) -> None:
    _set_users_mapping(stack, {"default_owner_id": CHLOE})
    sample = {"externalId": "pv-new", "email": "new@preview.example", "lastName": "New", "ownerEmail": ALICE_EMAIL}
    response = _admin(stack, "POST", "preview", {"kind": "contact", "records": [sample]})
    [record] = response.json["records"]
    assert record["match"]["decision"] == "new" and record["match"]["record"] == record["crmId"]
    assert record["action"] == "create" and record["matched"] is False
    columns = _columns(record)
    assert columns["lastname"]["decision"] == "write" and columns["lastname"]["current"] is None
    assert columns["ownerid"]["value"] == ALICE and columns["ownerid"]["source"] == "owner:auto-matched"
    assert record["owner"] == {
        "source": "auto-matched",
        "resolution": "auto-matched",
        "user": {"id": ALICE, "name": "Alice Martin", "email": ALICE_EMAIL},
        "via": ALICE_EMAIL,
        "note": None,
    }
    assert stack.services.identities.seen(stack.workspace_id) == []  # a preview notes no identity


def test_preview_requests_are_checked(stack: Any) -> None:
    assert _admin(stack, "POST", "preview", {"kind": "contact"}).status_code == 400
    bad_id = _admin(stack, "POST", "preview", {"kind": "contact", "crmIds": ["nope"]})
    assert bad_id.status_code == 400 and "crmIds" in bad_id.json["message"]
    mismatch = _admin(stack, "POST", "preview", {"kind": "contact", "crmIds": [MARIA], "records": [{}, {}]})
    assert mismatch.status_code == 400
    missing = "0f0f0f0f-0000-4000-8000-000000000001"
    [record] = _admin(stack, "POST", "preview", {"kind": "contact", "crmIds": [missing]}).json["records"]
    assert record["match"]["decision"] == "not found" and record["error"]["code"] == "0x80040217"


def test_an_identity_costs_one_table_write_per_process(stack: Any, monkeypatch: Any) -> None:
    store = stack.services.identities
    writes: list[dict[str, set[str]]] = []
    write = store._write

    def counted(workspace_id: str, fresh: dict[str, set[str]]) -> None:
        writes.append(dict(fresh))
        write(workspace_id, fresh)

    monkeypatch.setattr(store, "_write", counted)
    contacts = [{"externalId": f"w{i}", "lastName": "W", "ownerEmail": ALICE_EMAIL} for i in range(3)]
    for _ in range(3):
        assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    assert writes == [{ALICE_EMAIL: {"contact.ownerEmail"}}]
    [seen] = store.seen(stack.workspace_id)
    assert seen.identity == ALICE_EMAIL and set(seen.sources) == {"contact.ownerEmail"}
