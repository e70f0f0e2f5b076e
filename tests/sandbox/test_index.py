"""The In() column index narrows candidates only: results equal a full scan, and follow every change."""

from __future__ import annotations

import httpx

from devstack.dataverse_sandbox import SEED_IDS, Sandbox


def _emails(api: httpx.Client, filter_text: str) -> list[str]:
    response = api.get("contacts", params={"$filter": filter_text, "$select": "emailaddress1"})
    assert response.status_code == 200, response.text
    return sorted(row["emailaddress1"] for row in response.json()["value"])


def test_indexed_in_equals_a_scan_and_sees_changes(sandbox: Sandbox, api: httpx.Client) -> None:
    for i in range(40):
        sandbox.store.insert("contact", {"lastname": f"Row{i}", "emailaddress1": f"row{i}@index.example"})
    wanted = '["ROW3@index.example","row7@INDEX.example","missing@x.example"]'
    indexed = f"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues={wanted})"
    scanned = "emailaddress1 eq 'row3@index.example' or emailaddress1 eq 'row7@index.example'"
    assert _emails(api, indexed) == _emails(api, scanned) == ["row3@index.example", "row7@index.example"]
    # ANDed with more conditions, the rest of the filter still decides.
    assert _emails(api, f"{indexed} and lastname eq 'Row7'") == ["row7@index.example"]
    # A change after the index was built is seen.
    row = next(r for r in sandbox.store.rows("contact") if r.get("emailaddress1") == "row3@index.example")
    patch = api.patch(f"contacts({row['contactid']})", json={"emailaddress1": "moved@index.example"})
    assert patch.status_code == 204
    assert _emails(api, indexed) == ["row7@index.example"]
    moved = "Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[\"moved@index.example\"])"
    assert _emails(api, moved) == ["moved@index.example"]


_CONTACT = "Microsoft.Dynamics.CRM.contact"


def _in(column: str, *values: str) -> str:
    listed = ",".join(f'"{v}"' for v in values)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='{column}',PropertyValues=[{listed}])"


def test_eq_or_and_shapes_answer_like_a_scan(sandbox: Sandbox, api: httpx.Client) -> None:
    for i in range(30):
        sandbox.store.insert("contact", {"lastname": f"Shape{i % 3}", "emailaddress1": f"shape{i}@index.example"})
    assert _emails(api, "emailaddress1 eq 'SHAPE4@index.example'") == ["shape4@index.example"]
    assert _emails(api, "'shape5@index.example' eq emailaddress1") == ["shape5@index.example"]
    ored = f"{_in('emailaddress1', 'shape1@index.example')} or emailaddress1 eq 'shape2@index.example'"
    assert _emails(api, ored) == ["shape1@index.example", "shape2@index.example"]
    # One side not indexable: an `or` falls back to a scan, an `and` narrows by the indexable side.
    assert _emails(api, "emailaddress1 eq 'shape1@index.example' or startswith(lastname,'Shape2')") == sorted(
        f"shape{i}@index.example" for i in (1, *range(2, 30, 3)))
    anded = f"startswith(lastname,'Shape0') and {_in('emailaddress1', 'shape3@index.example', 'shape4@index.example')}"
    assert _emails(api, anded) == ["shape3@index.example"]


def test_index_follows_deletes_rollbacks_and_clear(sandbox: Sandbox, api: httpx.Client) -> None:
    keep = sandbox.store.insert("contact", {"lastname": "Keep", "emailaddress1": "keep@index.example"})
    gone = sandbox.store.insert("contact", {"lastname": "Gone", "emailaddress1": "gone@index.example"})
    both = _in("emailaddress1", "keep@index.example", "gone@index.example", "rolled@index.example")
    assert _emails(api, both) == ["gone@index.example", "keep@index.example"]
    assert api.delete(f"contacts({gone})").status_code == 204
    assert _emails(api, both) == ["keep@index.example"]
    # A bulk action that fails rolls back as a whole: the row it created leaves the index too.
    targets = [
        {"@odata.type": _CONTACT, "lastname": "Rolled", "emailaddress1": "rolled@index.example"},
        {"@odata.type": _CONTACT, "contactid": keep, "lastname": "Duplicate id"},
    ]
    assert api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}).status_code == 412
    assert _emails(api, both) == ["keep@index.example"]
    sandbox.reset()
    assert _emails(api, both) == []


def test_alternate_key_and_lookup_indexes_follow_changes(sandbox: Sandbox, api: httpx.Client) -> None:
    key = "contacts(gd_genesyexternalid='ext-1')"
    assert api.patch(key, json={"lastname": "Created by key"}).status_code == 204
    assert api.get(key).json()["lastname"] == "Created by key"
    row = next(r for r in sandbox.store.rows("contact") if r.get("gd_genesyexternalid") == "ext-1")
    assert api.patch(f"contacts({row['contactid']})", json={"gd_genesyexternalid": "ext-2"}).status_code == 204
    assert api.get(key).status_code == 404
    assert api.get("contacts(gd_genesyexternalid='EXT-2')").json()["contactid"] == row["contactid"]
    account = sandbox.store.insert("account", {"name": "Parent"})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({account})"}
    assert api.patch(f"contacts({row['contactid']})", json=bind).status_code == 204
    by_parent = api.get("contacts", params={"$filter": f"_parentcustomerid_value eq {account}",
                                            "$select": "lastname"}).json()["value"]
    assert [r["contactid"] for r in by_parent] == [row["contactid"]]


def test_child_rows_come_from_the_lookup_index_and_leave_with_their_parent(sandbox: Sandbox,
                                                                         api: httpx.Client) -> None:
    contact, sender = SEED_IDS["contact:maria"], SEED_IDS["user:alice"]
    ids = []
    for subject in ("One", "Two"):
        resp = api.post("emails", json={"subject": subject, "email_activity_parties": [
            {"partyid_systemuser@odata.bind": f"/systemusers({sender})", "participationtypemask": 1},
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 2},
        ]})
        assert resp.status_code == 204
        ids.append(resp.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))
    parties = api.get(f"emails({ids[0]})/email_activity_parties").json()["value"]
    assert sorted(p["participationtypemask"] for p in parties) == [1, 2]
    assert {p["_activityid_value"] for p in parties} == {ids[0]}
    assert api.delete(f"emails({ids[0]})").status_code == 204
    left = {p["_activityid_value"] for p in sandbox.store.rows("activityparty") if p["_activityid_value"] in ids}
    assert left == {ids[1]}
