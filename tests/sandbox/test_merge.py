"""The `Merge` action for contact, lead and account: the subordinate is deactivated, marked merged and
points at the survivor; the target gets UpdateContent; change tracking reports both rows."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from devstack.dataverse_sandbox import Sandbox
from tests.sandbox.conftest import error_of

NS = "Microsoft.Dynamics.CRM."
OLD = "2020-01-01T00:00:00Z"
PK = {"contact": "contactid", "lead": "leadid", "account": "accountid"}
SETS = {"contact": "contacts", "lead": "leads", "account": "accounts"}


def _merge_body(entity: str, target: str, subordinate: str, **extra: Any) -> dict[str, Any]:
    return {"Target": {"@odata.type": NS + entity, PK[entity]: target},
            "Subordinate": {"@odata.type": NS + entity, PK[entity]: subordinate},
            "PerformParentingChecks": False, **extra}


def _pair(sandbox: Sandbox, entity: str) -> tuple[str, str]:
    name = {"account": {"name": "Acme Survivor"}}.get(entity, {"firstname": "Ann", "lastname": "Survivor"})
    other = {"account": {"name": "Acme Dup"}}.get(entity, {"firstname": "Ann", "lastname": "Dup"})
    return (sandbox.store.insert(entity, {**name, "modifiedon": OLD}),
            sandbox.store.insert(entity, {**other, "modifiedon": OLD}))


@pytest.mark.parametrize("entity", ["contact", "lead", "account"])
def test_merge_deactivates_subordinate_and_updates_target(api: httpx.Client, sandbox: Sandbox,
                                                          entity: str) -> None:
    target, sub = _pair(sandbox, entity)
    link = api.get(SETS[entity], params={"$select": "modifiedon"},
                   headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]
    content = {"@odata.type": NS + entity, "telephone1": "+34 600 000 000"}
    resp = api.post("Merge", json=_merge_body(entity, target, sub, UpdateContent=content))
    assert resp.status_code == 204, resp.text
    assert resp.content == b""

    t = sandbox.store.get(entity, target)
    s = sandbox.store.get(entity, sub)
    assert t is not None and s is not None
    assert t["telephone1"] == "+34 600 000 000"
    assert t["statecode"] == 0 and t["merged"] is False
    assert s["merged"] is True
    assert s["_masterid_value"] == target
    expected_state = (2, 7) if entity == "lead" else (1, 2)
    assert (s["statecode"], s["statuscode"]) == expected_state
    assert t["modifiedon"] > OLD and s["modifiedon"] > OLD

    got = api.get(f"{SETS[entity]}({sub})", params={"$select": "merged,_masterid_value,statecode"},
                  headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert got["merged"] is True
    assert got["_masterid_value"] == target
    assert got["_masterid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == entity

    changed = {r[PK[entity]] for r in api.get(link).json()["value"]}
    assert changed == {target, sub}


def test_merge_moves_children_to_the_target(api: httpx.Client, sandbox: Sandbox) -> None:
    target, sub = _pair(sandbox, "account")
    child = sandbox.store.insert("contact", {"lastname": "Child",
                                             "parentcustomerid_account@odata.bind": f"/accounts({sub})"})
    assert api.post("Merge", json=_merge_body("account", target, sub)).status_code == 204
    row = sandbox.store.get("contact", child)
    assert row is not None and row["_parentcustomerid_value"] == target


def test_merge_is_all_or_nothing_on_bad_update_content(api: httpx.Client, sandbox: Sandbox) -> None:
    target, sub = _pair(sandbox, "contact")
    resp = api.post("Merge", json=_merge_body("contact", target, sub, UpdateContent={"nosuchcolumn": 1}))
    assert resp.status_code == 400
    s = sandbox.store.get("contact", sub)
    assert s is not None and s["statecode"] == 0 and s["merged"] is False


def test_merge_errors(api: httpx.Client, sandbox: Sandbox) -> None:
    target, sub = _pair(sandbox, "contact")
    itself = api.post("Merge", json=_merge_body("contact", target, target))
    assert itself.status_code == 400
    assert "itself" in error_of(itself)["message"]

    missing = api.post("Merge", json=_merge_body("contact", target, str(uuid.uuid4())))
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "0x80040217"

    assert api.post("Merge", json=_merge_body("contact", target, sub)).status_code == 204
    again = api.post("Merge", json=_merge_body("contact", target, sub))  # the subordinate is inactive now
    assert again.status_code == 400
    assert "inactive" in error_of(again)["message"]

    task = api.post("Merge", json={"Target": {"@odata.type": NS + "task", "activityid": target},
                                   "Subordinate": {"@odata.type": NS + "task", "activityid": sub}})
    assert task.status_code == 400
    mixed = api.post("Merge", json={"Target": {"@odata.type": NS + "contact", "contactid": target},
                                    "Subordinate": {"@odata.type": NS + "lead", "leadid": sub}})
    assert mixed.status_code == 400
    assert api.get("Merge").status_code == 405


def test_parenting_checks(api: httpx.Client, sandbox: Sandbox) -> None:
    a1 = sandbox.store.insert("account", {"name": "One"})
    a2 = sandbox.store.insert("account", {"name": "Two"})
    c1 = sandbox.store.insert("contact", {"lastname": "A", "parentcustomerid_account@odata.bind": f"/accounts({a1})"})
    c2 = sandbox.store.insert("contact", {"lastname": "B", "parentcustomerid_account@odata.bind": f"/accounts({a2})"})
    body = _merge_body("contact", c1, c2)
    body["PerformParentingChecks"] = True
    assert api.post("Merge", json=body).status_code == 400
    body["PerformParentingChecks"] = False
    assert api.post("Merge", json=body).status_code == 204
