"""The In() column index narrows candidates only: results equal a full scan, and follow every change."""

from __future__ import annotations

import httpx

from devstack.dataverse_sandbox import Sandbox


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
