"""Create, retrieve, update/upsert and delete with Dataverse's status codes, headers and bodies."""

from __future__ import annotations

import re
import uuid

import httpx

from devstack.dataverse_sandbox import APP_USER_ID, SEED_IDS, Sandbox
from tests.sandbox.conftest import error_of

GUID = re.compile(r"\(([0-9a-f-]{36})\)$")
ACME = SEED_IDS["account:acme"]


def _created_id(resp: httpx.Response) -> str:
    match = GUID.search(resp.headers["OData-EntityId"])
    assert match, resp.headers
    return match.group(1)


def test_create_returns_204_and_entity_id_header(api: httpx.Client, sandbox: Sandbox) -> None:
    resp = api.post("contacts", json={"firstname": "Ada", "lastname": "Lovelace"})
    assert resp.status_code == 204
    assert resp.content == b""
    assert resp.headers["OData-Version"] == "4.0"
    assert resp.headers["OData-EntityId"].startswith(f"{sandbox.url}/api/data/v9.2/contacts(")
    row = sandbox.store.get("contact", _created_id(resp))
    assert row is not None
    assert row["fullname"] == "Ada Lovelace"
    assert row["_ownerid_value"] == APP_USER_ID
    assert row["createdon"] == row["modifiedon"]
    assert row["statecode"] == 0 and row["statuscode"] == 1


def test_create_with_representation_returns_201_and_honours_select(api: httpx.Client) -> None:
    resp = api.post("contacts?$select=fullname,emailaddress1",
                    json={"firstname": "Grace", "lastname": "Hopper", "emailaddress1": "grace@navy.mil"},
                    headers={"Prefer": "return=representation"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["@odata.context"].endswith("$metadata#contacts(fullname,emailaddress1)/$entity")
    assert body["@odata.etag"].startswith('W/"')
    assert {k for k in body if not k.startswith("@")} == {"fullname", "emailaddress1", "contactid"}
    assert body["fullname"] == "Grace Hopper"


def test_client_supplied_primary_key_is_used_and_duplicates_are_412(api: httpx.Client) -> None:
    new_id = str(uuid.uuid4())
    resp = api.post("accounts", json={"accountid": new_id, "name": "Chosen Id Ltd"})
    assert resp.status_code == 204
    assert _created_id(resp) == new_id
    again = api.post("accounts", json={"accountid": new_id, "name": "Chosen Id Ltd"})
    assert again.status_code == 412
    assert error_of(again)["code"] == "0x80040237"


def test_retrieve_and_missing_record(api: httpx.Client) -> None:
    resp = api.get(f"accounts({ACME})", params={"$select": "name,gd_domain,_ownerid_value"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == "Acme Corporation"
    assert body["_ownerid_value"] == SEED_IDS["user:alice"]
    assert body["accountid"] == ACME
    missing = api.get(f"accounts({uuid.uuid4()})")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "0x80040217"


def test_patch_without_precondition_is_an_upsert(api: httpx.Client, sandbox: Sandbox) -> None:
    new_id = str(uuid.uuid4())
    created = api.patch(f"contacts({new_id})", json={"lastname": "Upserted"})
    assert created.status_code == 204
    assert sandbox.store.get("contact", new_id)["lastname"] == "Upserted"  # type: ignore[index]
    updated = api.patch(f"contacts({new_id})", json={"firstname": "Now"})
    assert updated.status_code == 204
    row = sandbox.store.get("contact", new_id)
    assert row is not None and row["fullname"] == "Now Upserted"


def test_if_match_star_updates_only(api: httpx.Client, sandbox: Sandbox) -> None:
    missing = api.patch(f"contacts({uuid.uuid4()})", json={"lastname": "X"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "0x80040217"
    count = len(sandbox.store.rows("contact"))
    ok = api.patch(f"accounts({ACME})", json={"telephone1": "+34 600 000 000"}, headers={"If-Match": "*"})
    assert ok.status_code == 204
    assert sandbox.store.get("account", ACME)["telephone1"] == "+34 600 000 000"  # type: ignore[index]
    assert len(sandbox.store.rows("contact")) == count


def test_if_none_match_star_creates_only(api: httpx.Client) -> None:
    clash = api.patch(f"accounts({ACME})", json={"name": "Dup"}, headers={"If-None-Match": "*"})
    assert clash.status_code == 412
    assert error_of(clash) == {"code": "0x80040237",
                               "message": "A record with matching key values already exists."}
    fresh = api.patch(f"accounts({uuid.uuid4()})", json={"name": "Fresh"}, headers={"If-None-Match": "*"})
    assert fresh.status_code == 204


def test_etag_precondition(api: httpx.Client) -> None:
    etag = api.get(f"accounts({ACME})", params={"$select": "name"}).json()["@odata.etag"]
    assert api.patch(f"accounts({ACME})", json={"name": "v2"}, headers={"If-Match": etag}).status_code == 204
    stale = api.patch(f"accounts({ACME})", json={"name": "v3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert api.get(f"accounts({ACME})").json()["@odata.etag"] != etag


def test_patch_with_representation_returns_200(api: httpx.Client) -> None:
    resp = api.patch(f"accounts({ACME})?$select=name", json={"name": "Acme Renamed"},
                     headers={"Prefer": "return=representation", "If-Match": "*"})
    assert resp.status_code == 200
    assert resp.json()["name"] == "Acme Renamed"


def test_delete(api: httpx.Client, sandbox: Sandbox) -> None:
    target = SEED_IDS["contact:jose"]
    assert api.delete(f"contacts({target})").status_code == 204
    assert sandbox.store.get("contact", target) is None
    again = api.delete(f"contacts({target})")
    assert again.status_code == 404 and error_of(again)["code"] == "0x80040217"


def test_lookup_bind_and_read_back(api: httpx.Client, sandbox: Sandbox) -> None:
    resp = api.post("contacts", json={
        "lastname": "Bound", "parentcustomerid_account@odata.bind": f"/accounts({ACME})",
        "ownerid@odata.bind": f"/systemusers({SEED_IDS['user:bruno']})",
    })
    assert resp.status_code == 204
    body = api.get(f"contacts({_created_id(resp)})",
                   params={"$select": "_parentcustomerid_value,_ownerid_value"},
                   headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert body["_parentcustomerid_value"] == ACME
    assert body["_ownerid_value"] == SEED_IDS["user:bruno"]
    assert body["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert body["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Acme Corporation"
    assert sandbox.store.get("contact", _created_id(resp))["parentcustomerid"] == ACME  # type: ignore[index]


def test_owner_can_be_a_team_and_bound_by_alternate_key(api: httpx.Client) -> None:
    team = api.post("accounts?$select=_ownerid_value", headers={"Prefer": "return=representation"},
                    json={"name": "Team Owned", "ownerid@odata.bind": f"/teams({SEED_IDS['team:sales']})"})
    assert team.json()["_ownerid_value"] == SEED_IDS["team:sales"]
    aad = str(uuid.uuid5(uuid.NAMESPACE_URL, "genesy-dynamics-sandbox:aad:user:chloe"))
    by_key = api.post("accounts?$select=_ownerid_value", headers={"Prefer": "return=representation"},
                      json={"name": "Key Owned",
                            "ownerid@odata.bind": f"/systemusers(azureactivedirectoryobjectid={aad})"})
    assert by_key.status_code == 201
    assert by_key.json()["_ownerid_value"] == SEED_IDS["user:chloe"]


def test_bind_to_missing_record_is_404(api: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("contact"))
    resp = api.post("contacts", json={"lastname": "Orphan",
                                      "parentcustomerid_account@odata.bind": f"/accounts({uuid.uuid4()})"})
    assert resp.status_code == 404
    assert error_of(resp)["code"] == "0x80040217"
    assert len(sandbox.store.rows("contact")) == before


def test_alternate_key_addressing(api: httpx.Client, sandbox: Sandbox) -> None:
    created = api.patch("contacts(gd_genesyexternalid='gen-O''Brien-1')", json={"lastname": "Keyed"})
    assert created.status_code == 204
    rows = [r for r in sandbox.store.rows("contact") if r["gd_genesyexternalid"] == "gen-O'Brien-1"]
    assert len(rows) == 1
    api.patch("contacts(gd_genesyexternalid='gen-O''Brien-1')", json={"firstname": "Still"})
    got = api.get("contacts(gd_genesyexternalid='gen-O''Brien-1')", params={"$select": "fullname"})
    assert got.json()["fullname"] == "Still Keyed"
    assert len([r for r in sandbox.store.rows("contact") if r["gd_genesyexternalid"] == "gen-O'Brien-1"]) == 1
    not_a_key = api.get("contacts(emailaddress1='a@x.com')")
    assert not_a_key.status_code == 400


def test_task_regarding_and_completion(api: httpx.Client, sandbox: Sandbox) -> None:
    contact = SEED_IDS["contact:sean"]
    resp = api.post("tasks", json={"subject": "Call Seán", "scheduledend": "2025-01-10T09:00:00Z",
                                   "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"})
    assert resp.status_code == 204
    task_id = _created_id(resp)
    task = sandbox.store.get("task", task_id)
    assert task is not None
    assert task["_regardingobjectid_value"] == contact and task["statecode"] == 0 and task["statuscode"] == 2
    done = api.patch(f"tasks({task_id})", headers={"If-Match": "*"},
                     json={"statecode": 1, "statuscode": 5, "actualend": "2025-01-10T10:00:00Z"})
    assert done.status_code == 204
    task = sandbox.store.get("task", task_id)
    assert task is not None and (task["statecode"], task["statuscode"]) == (1, 5)
    bad = api.patch(f"tasks({task_id})", headers={"If-Match": "*"}, json={"statecode": 0, "statuscode": 5})
    assert bad.status_code == 400


def test_email_deep_insert_of_activity_parties(api: httpx.Client, sandbox: Sandbox) -> None:
    contact = SEED_IDS["contact:maria"]
    sender = SEED_IDS["user:alice"]
    resp = api.post("emails", json={
        "subject": "Hola", "description": "<p>Hi</p>", "directioncode": True,
        "regardingobjectid_contact_email@odata.bind": f"/contacts({contact})",
        "email_activity_parties": [
            {"partyid_systemuser@odata.bind": f"/systemusers({sender})", "participationtypemask": 1},
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 2},
        ],
    })
    assert resp.status_code == 204
    email_id = _created_id(resp)
    parties = [p for p in sandbox.store.rows("activityparty") if p["_activityid_value"] == email_id]
    assert sorted((p["participationtypemask"], p["_partyid_value"]) for p in parties) == [(1, sender), (2, contact)]
    expanded = api.get(f"emails({email_id})", params={
        "$select": "subject,statecode",
        "$expand": "email_activity_parties($select=_partyid_value,participationtypemask)"})
    assert len(expanded.json()["email_activity_parties"]) == 2
    assert expanded.json()["statecode"] == 0


def test_failed_deep_insert_leaves_nothing_behind(api: httpx.Client, sandbox: Sandbox) -> None:
    before = (len(sandbox.store.rows("email")), len(sandbox.store.rows("activityparty")))
    resp = api.post("emails", json={"subject": "Bad", "email_activity_parties": [
        {"partyid_contact@odata.bind": f"/contacts({SEED_IDS['contact:maria']})", "participationtypemask": 2},
        {"partyid_contact@odata.bind": f"/contacts({uuid.uuid4()})", "participationtypemask": 2},
    ]})
    assert resp.status_code == 404
    assert (len(sandbox.store.rows("email")), len(sandbox.store.rows("activityparty"))) == before


def test_disassociate_lookup_with_ref(api: httpx.Client, sandbox: Sandbox) -> None:
    contact = SEED_IDS["contact:maria"]
    assert api.delete(f"contacts({contact})/parentcustomerid_account/$ref").status_code == 204
    assert sandbox.store.get("contact", contact)["_parentcustomerid_value"] is None  # type: ignore[index]


def test_store_insert_for_seeding(sandbox: Sandbox, api: httpx.Client) -> None:
    new_id = sandbox.store.insert("account", {"name": "Seeded", "gd_domain": "seeded.example",
                                              "modifiedon": "2020-01-01T00:00:00Z"})
    body = api.get(f"accounts({new_id})", params={"$select": "name,modifiedon"}).json()
    assert body["modifiedon"] == "2020-01-01T00:00:00Z"
