"""A full Genesy session on the local stack, driving the registered functions as the host would."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS


def _by_email(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r.get("emailaddress1") or "").lower(): r for r in rows}


def test_full_export_session(stack: Any) -> None:
    # Connection test.
    assert stack.call("GET", "health").status_code == 200
    users = stack.call("GET", "users").json
    alice = next(u for u in users if u["name"] == "Alice Martin")
    assert all(u["name"] != "Dana Gone" for u in users)  # disabled users are not offered

    # Companies: sync finds the existing Contoso; export creates Globex and matches Contoso.
    companies = [
        {"externalId": "co-1", "name": "Contoso", "domain": "https://www.contoso.com/about"},
        {"externalId": "co-2", "name": "Globex Corporation", "domain": "globex.io", "numberOfEmployees": 120},
    ]
    synced = stack.call("POST", "companies/sync", {"companies": companies}).json["results"]
    assert [r["externalId"] for r in synced] == ["co-1"]
    assert synced[0]["crmId"] == SEED_IDS["account:contoso"]
    exported = stack.call("POST", "companies", {"companies": companies}).json["results"]
    company_ids = {r["externalId"]: r["crmId"] for r in exported}
    assert company_ids["co-1"] == SEED_IDS["account:contoso"]

    # Contacts: one exists (by e-mail, different case), one is new, one has no e-mail.
    contacts = [
        {"externalId": "l-1", "email": "A+B@x.com", "firstName": "Alice", "lastName": "Plus", "title": "CFO"},
        {
            "externalId": "l-2",
            "email": "hank@globex.io",
            "firstName": "Hank",
            "lastName": "Scorpio",
            "company": "Globex Corporation",
            "title": "CEO",
            "ownerId": alice["id"],
            "linkedinUrl": "https://www.linkedin.com/in/hank-scorpio/",
        },
        {"externalId": "l-3", "firstName": "Nameless", "lastName": "Lead", "linkedinUrl": "linkedin.com/in/nl"},
    ]
    assert [r["externalId"] for r in stack.call("POST", "contacts/sync", {"contacts": contacts}).json["results"]] == [
        "l-1"
    ]
    exported_contacts = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    contact_ids = {r["externalId"]: r["crmId"] for r in exported_contacts}
    assert contact_ids["l-1"] == SEED_IDS["contact:alice-plus"]

    pairs = [
        {"contactCRMId": contact_ids["l-2"], "companyCRMId": company_ids["co-2"]},
        {"contactCRMId": contact_ids["l-1"], "companyCRMId": company_ids["co-1"]},
    ]
    assoc = stack.call("POST", "associations", {"associations": pairs}).json
    assert assoc["success"] is True

    report = stack.drain()
    assert report.dead_lettered == 0 and report.failed == 0

    accounts = {r["accountid"]: r for r in stack.rows("account")}
    globex = accounts[company_ids["co-2"]]
    assert globex["name"] == "Globex Corporation" and globex["numberofemployees"] == 120
    assert globex["websiteurl"] == "globex.io"
    people = _by_email(stack.rows("contact"))
    hank = people["hank@globex.io"]
    assert hank["contactid"] == contact_ids["l-2"]
    assert hank["jobtitle"] == "CEO" and hank["gd_linkedinurl"] == "https://www.linkedin.com/in/hank-scorpio"
    assert hank["_ownerid_value"] == alice["id"]
    assert hank["_parentcustomerid_value"] == company_ids["co-2"]
    assert people["a+b@x.com"]["jobtitle"] == "CFO"
    assert people["a+b@x.com"]["_parentcustomerid_value"] == SEED_IDS["account:contoso"]  # already: skipped
    nameless = next(r for r in stack.rows("contact") if r.get("lastname") == "Lead")
    assert nameless["contactid"] == contact_ids["l-3"]

    # An update of a known contact.
    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": contact_ids["l-2"], "title": "Chairman"}]}).json
    assert put == {"results": [{"crmId": contact_ids["l-2"], "success": True}]}
    stack.drain()
    assert _by_email(stack.rows("contact"))["hank@globex.io"]["jobtitle"] == "Chairman"

    # Read back by id.
    batch = stack.call("POST", "contacts/batch", {"ids": [contact_ids["l-2"], "unknown"]}).json["results"]
    assert batch == [
        {
            "id": contact_ids["l-2"],
            "firstName": "Hank",
            "lastName": "Scorpio",
            "email": "hank@globex.io",
            "title": "Chairman",
            "linkedinUrl": "https://www.linkedin.com/in/hank-scorpio",
        }
    ]

    # The same export again changes nothing and creates no duplicate.
    before = len(stack.rows("contact"))
    again = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    assert again == exported_contacts
    stack.drain()
    assert len(stack.rows("contact")) == before
