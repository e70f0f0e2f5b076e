"""CreateMultiple / UpdateMultiple / UpsertMultiple: all-or-nothing, as Dataverse runs them."""

from __future__ import annotations

import uuid

import httpx

from devstack.dataverse_sandbox import SEED_IDS, Sandbox
from tests.sandbox.conftest import error_of

T = "Microsoft.Dynamics.CRM.contact"


def test_create_multiple_returns_ids(api: httpx.Client, sandbox: Sandbox) -> None:
    chosen = str(uuid.uuid4())
    resp = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [
        {"@odata.type": T, "lastname": "Bulk1"},
        {"@odata.type": T, "lastname": "Bulk2", "contactid": chosen,
         "parentcustomerid_account@odata.bind": f"/accounts({SEED_IDS['account:acme']})"},
    ]})
    assert resp.status_code == 200
    body = resp.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    assert len(body["Ids"]) == 2 and body["Ids"][1] == chosen
    assert sandbox.store.get("contact", chosen)["_parentcustomerid_value"] == SEED_IDS["account:acme"]  # type: ignore[index]
    assert sandbox.counters["POST contacts/CreateMultiple"] == 1


def test_one_invalid_target_fails_the_whole_request(api: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("contact"))
    resp = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [
        {"@odata.type": T, "lastname": "Fine"},
        {"@odata.type": T, "lastname": "x" * 51},
        {"@odata.type": T, "lastname": "Also fine"},
    ]})
    assert resp.status_code == 400
    assert error_of(resp)["code"] == "0x80044331"
    assert len(sandbox.store.rows("contact")) == before


def test_targets_need_odata_type(api: httpx.Client) -> None:
    resp = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [{"lastname": "NoType"}]})
    assert resp.status_code == 400
    wrong = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple",
                     json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "x"}]})
    assert wrong.status_code == 400


def test_update_multiple_and_its_rollback(api: httpx.Client, sandbox: Sandbox) -> None:
    sean, jose = SEED_IDS["contact:sean"], SEED_IDS["contact:jose"]
    ok = api.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", json={"Targets": [
        {"@odata.type": T, "contactid": sean, "jobtitle": "CEO"},
        {"@odata.type": T, "contactid": jose, "jobtitle": "CTO"},
    ]})
    assert ok.status_code == 204
    assert sandbox.store.get("contact", jose)["jobtitle"] == "CTO"  # type: ignore[index]
    missing = api.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", json={"Targets": [
        {"@odata.type": T, "contactid": sean, "jobtitle": "Changed"},
        {"@odata.type": T, "contactid": str(uuid.uuid4()), "jobtitle": "Ghost"},
    ]})
    assert missing.status_code == 404 and error_of(missing)["code"] == "0x80040217"
    assert sandbox.store.get("contact", sean)["jobtitle"] == "CEO"  # type: ignore[index]


def test_upsert_multiple_creates_and_updates(api: httpx.Client, sandbox: Sandbox) -> None:
    fresh = str(uuid.uuid4())
    sean = SEED_IDS["contact:sean"]
    resp = api.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [
        {"@odata.type": T, "contactid": fresh, "lastname": "New"},
        {"@odata.type": T, "contactid": sean, "jobtitle": "Founder"},
        {"@odata.type": T, "@odata.id": "contacts(gd_genesyexternalid='ext-1')", "lastname": "ByKey"},
    ]})
    assert resp.status_code == 204
    assert sandbox.store.get("contact", fresh)["lastname"] == "New"  # type: ignore[index]
    assert sandbox.store.get("contact", sean)["jobtitle"] == "Founder"  # type: ignore[index]
    by_key = [r for r in sandbox.store.rows("contact") if r["gd_genesyexternalid"] == "ext-1"]
    assert [r["lastname"] for r in by_key] == ["ByKey"]


def test_upsert_multiple_results_on_request(api: httpx.Client) -> None:
    fresh = str(uuid.uuid4())
    resp = api.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", headers={"Prefer": "return=representation"},
                    json={"Targets": [{"@odata.type": T, "contactid": fresh, "lastname": "New"},
                                      {"@odata.type": T, "contactid": SEED_IDS["contact:sean"], "jobtitle": "x"}]})
    assert resp.status_code == 200
    assert [r["RecordCreated"] for r in resp.json()["Results"]] == [True, False]


def test_upsert_multiple_is_all_or_nothing(api: httpx.Client, sandbox: Sandbox) -> None:
    fresh = str(uuid.uuid4())
    resp = api.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [
        {"@odata.type": T, "contactid": fresh, "lastname": "WouldBeNew"},
        {"@odata.type": T, "contactid": SEED_IDS["contact:sean"], "leadsourcecode": 999},
    ]})
    assert resp.status_code == 400 and error_of(resp)["code"] == "0x8004431A"
    assert sandbox.store.get("contact", fresh) is None
