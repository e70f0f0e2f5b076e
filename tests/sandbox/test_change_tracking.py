"""Change tracking as Dataverse does it: `Prefer: odata.track-changes` → rows + `@odata.deltaLink`;
the delta link → rows created/changed since plus `$deletedEntity` entries for deleted rows."""

from __future__ import annotations

import re
from typing import Any

import httpx

from devstack.dataverse_sandbox import Sandbox
from tests.sandbox.conftest import error_of

TRACK = {"Prefer": "odata.track-changes"}
GUID = re.compile(r"\(([0-9a-f-]{36})\)$")


def _create(api: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    resp = api.post(entity_set, json=body)
    assert resp.status_code == 204, resp.text
    match = GUID.search(resp.headers["OData-EntityId"])
    assert match
    return match.group(1)


def test_initial_sync_then_delta_with_create_update_and_delete(api: httpx.Client, sandbox: Sandbox) -> None:
    keep = _create(api, "contacts", {"firstname": "Keep", "lastname": "Same"})
    change = _create(api, "contacts", {"firstname": "Old", "lastname": "Name"})
    gone = _create(api, "contacts", {"firstname": "Soon", "lastname": "Gone"})

    first = api.get("contacts", params={"$select": "firstname,lastname"}, headers=TRACK)
    assert first.status_code == 200, first.text
    assert first.headers["Preference-Applied"] == "odata.track-changes"
    body = first.json()
    root = f"{sandbox.url}/api/data/v9.2/"
    assert body["@odata.context"] == f"{root}$metadata#contacts(firstname,lastname)/$delta"
    ids = {r["contactid"] for r in body["value"]}
    assert {keep, change, gone} <= ids
    assert len(ids) == sandbox.store.count("contact")
    delta_link = body["@odata.deltaLink"]
    assert delta_link.startswith(f"{root}contacts?$select=firstname,lastname&$deltatoken=")

    # Nothing happened yet: an empty delta and a fresh link.
    empty = api.get(delta_link)
    assert empty.status_code == 200
    assert empty.json()["value"] == []

    created = _create(api, "contacts", {"firstname": "New", "lastname": "Person"})
    assert api.patch(f"contacts({change})", json={"firstname": "Changed"}).status_code == 204
    assert api.delete(f"contacts({gone})").status_code == 204
    before = sandbox.store.get("contact", change)
    assert before is not None

    delta = api.get(delta_link, headers=TRACK)
    assert delta.status_code == 200, delta.text
    assert delta.headers["Preference-Applied"] == "odata.track-changes"
    dbody = delta.json()
    by_id = {(r.get("contactid") or r.get("id")): r for r in dbody["value"]}
    assert set(by_id) == {created, change, gone}
    assert by_id[created]["firstname"] == "New" and by_id[created]["lastname"] == "Person"
    assert by_id[change]["firstname"] == "Changed"
    assert set(by_id[change]) == {"@odata.etag", "firstname", "lastname", "contactid"}
    assert by_id[gone] == {"@odata.context": f"{root}$metadata#contacts/$deletedEntity", "id": gone,
                           "reason": "deleted"}
    assert keep not in by_id

    # The new delta link only reports what happens after it.
    assert api.patch(f"contacts({keep})", json={"lastname": "Different"}).status_code == 204
    later = api.get(dbody["@odata.deltaLink"]).json()["value"]
    assert [r["contactid"] for r in later] == [keep]
    assert later[0]["lastname"] == "Different"


def test_update_maintains_modifiedon(api: httpx.Client, sandbox: Sandbox) -> None:
    rid = sandbox.store.insert("lead", {"lastname": "Old", "modifiedon": "2020-01-01T00:00:00Z"})
    link = api.get("leads", params={"$select": "lastname,modifiedon"}, headers=TRACK).json()["@odata.deltaLink"]
    assert api.patch(f"leads({rid})", json={"lastname": "New"}).status_code == 204
    rows = api.get(link).json()["value"]
    assert [r["leadid"] for r in rows] == [rid]
    assert rows[0]["modifiedon"] > "2020-01-01T00:00:00Z"


def test_table_with_tracking_off_is_400(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.change_tracking_disabled = {"account"}
    resp = api.get("accounts", params={"$select": "name"}, headers=TRACK)
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "0x80060888"
    assert "change tracking" in err["message"].lower()
    assert api.get("accounts", params={"$select": "name"}).status_code == 200  # plain queries still work
    assert api.get("contacts", params={"$select": "fullname"}, headers=TRACK).status_code == 200


def test_bad_and_expired_tokens_are_400(api: httpx.Client, sandbox: Sandbox) -> None:
    for token in ("garbage", "-5!01/01/2020 00:00:00", "99999999999!01/01/2030 00:00:00"):
        resp = api.get("contacts", params={"$select": "fullname", "$deltatoken": token})
        assert resp.status_code == 400, token
        assert error_of(resp)["code"] == "0x80040203"
    link = api.get("contacts", params={"$select": "fullname"}, headers=TRACK).json()["@odata.deltaLink"]
    sandbox.reset()  # the change log starts over: older tokens are expired
    resp = api.get(link)
    assert resp.status_code == 400
    assert "expired" in error_of(resp)["message"]


def test_query_options_other_than_select_are_refused(api: httpx.Client) -> None:
    resp = api.get("contacts", params={"$select": "fullname", "$filter": "firstname eq 'x'"}, headers=TRACK)
    assert resp.status_code == 400


def test_rolled_back_changes_are_not_reported(api: httpx.Client, sandbox: Sandbox) -> None:
    link = api.get("accounts", params={"$select": "name"}, headers=TRACK).json()["@odata.deltaLink"]
    resp = api.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "Fine"},
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "x" * 500},
    ]})
    assert resp.status_code == 400
    assert api.get(link).json()["value"] == []


def test_reset_turns_tracking_back_on(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.change_tracking_disabled.add("lead")
    assert api.get("leads", params={"$select": "fullname"}, headers=TRACK).status_code == 400
    sandbox.reset()
    assert sandbox.config.change_tracking_disabled == set()
    assert api.get("leads", params={"$select": "fullname"}, headers=TRACK).status_code == 200
