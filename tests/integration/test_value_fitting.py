"""Values Dynamics would refuse for their shape never lose the record: text is cut to its column, a value
with no safe conversion skips its column, required-by-form columns may be missing, hostile values do not
fail the call — on the real local stack (Azurite, HTTPS Dataverse sandbox, local functions host)."""

from __future__ import annotations

from typing import Any


def _set_section(stack: Any, section: str, document: dict[str, Any]) -> None:
    store = stack.services.store
    current = store.get_section(stack.workspace_id, section)
    store.put_section(stack.workspace_id, section, document, current.etag, "tests")


def _by_email(stack: Any, email: str) -> list[dict[str, Any]]:
    return [r for r in stack.rows("contact") if (r.get("emailaddress1") or "").lower() == email]


def _entry(stack: Any, kind: str, external_id: str) -> Any:
    entry = stack.services.ledger.get(stack.workspace_id, kind, "create", external_id)
    assert entry is not None, f"no ledger entry for {kind} {external_id}"
    return entry


def test_text_longer_than_its_column_is_cut_and_the_record_written(stack: Any) -> None:
    contacts = [
        {
            "externalId": "long",
            "email": "long.title@fit.example",
            "firstName": "F" * 300,
            "lastName": "Long",
            "title": "Head of " + "t" * 113,  # 121 characters; jobtitle holds 100
        },
        {"externalId": "short", "email": "short@fit.example", "lastName": "Short", "title": "CTO"},
    ]
    response = stack.call("POST", "contacts", {"contacts": contacts})
    assert response.status_code == 200
    report = stack.drain()
    assert report.dead_lettered == 0
    [row] = _by_email(stack, "long.title@fit.example")
    assert row["jobtitle"] == ("Head of " + "t" * 113)[:100]
    assert row["firstname"] == "F" * 50
    assert row["lastname"] == "Long"
    entry = _entry(stack, "contact", "long")
    assert entry.status == "created" and entry.crm_id == row["contactid"]
    assert "jobtitle: cut to 100 characters (was 121)" in entry.warnings
    assert "firstname: cut to 50 characters (was 300)" in entry.warnings
    assert _by_email(stack, "short@fit.example")[0]["jobtitle"] == "CTO"
    assert _entry(stack, "contact", "short").warnings == []


def test_a_number_no_column_can_hold_skips_its_column_not_the_company(stack: Any) -> None:
    companies = [{"externalId": "big", "name": "Enormous Corp", "domain": "enormous.example", "numberOfEmployees": 5e9}]
    assert stack.call("POST", "companies", {"companies": companies}).status_code == 200
    stack.drain()
    [row] = [r for r in stack.rows("account") if r.get("name") == "Enormous Corp"]
    assert row.get("numberofemployees") is None
    entry = _entry(stack, "company", "big")
    assert entry.status == "created"
    assert any(w.startswith("numberofemployees:") for w in entry.warnings)


def test_a_contact_with_only_an_email_and_a_company_with_only_a_domain_are_written(stack: Any) -> None:
    # Dataverse's Web API enforces SystemRequired columns only; lastname and name are ApplicationRequired.
    assert stack.call("POST", "contacts", {"contacts": [{"externalId": "e", "email": "only@mail.example"}]})
    assert stack.call("POST", "companies", {"companies": [{"externalId": "d", "domain": "only-domain.example"}]})
    report = stack.drain()
    assert report.dead_lettered == 0
    [contact] = _by_email(stack, "only@mail.example")
    assert not contact.get("lastname")
    [account] = [r for r in stack.rows("account") if (r.get("websiteurl") or "") == "only-domain.example"]
    assert not account.get("name")
    contact_entry, company_entry = _entry(stack, "contact", "e"), _entry(stack, "company", "d")
    assert contact_entry.status == "created" and contact_entry.crm_id == contact["contactid"]
    assert company_entry.status == "created" and company_entry.crm_id == account["accountid"]
    # Still worth knowing: the mapping engine says what a form would have asked for.
    assert "lastname: required by Dynamics and no value is mapped" in contact_entry.warnings
    assert "name: required by Dynamics and no value is mapped" in company_entry.warnings


def test_hostile_identity_values_do_not_fail_the_call(stack: Any) -> None:
    # (Lone surrogates are covered by the unit tests of the normalisers and the planner.)
    contacts: list[dict[str, Any]] = [
        {"externalId": f"ok-{i}", "email": f"ok{i}@hostile.example", "lastName": f"Ok{i}"} for i in range(95)
    ]
    contacts += [
        {"externalId": "huge-email", "email": "b" * 70000 + "@x.com", "lastName": "Huge"},
        {"externalId": "huge-company", "firstName": "A", "lastName": "Big", "company": "Acme " * 14000},
        {"externalId": "bracket", "linkedinUrl": "[a]", "lastName": "Bracket", "email": "bracket@hostile.example"},
        {"externalId": "ipv6", "linkedinUrl": "http://[oops/in/x", "lastName": "Six"},
        {"externalId": "huge-url", "linkedinUrl": "https://www.linkedin.com/in/" + "x" * 70000, "lastName": "Url"},
    ]
    response = stack.call("POST", "contacts", {"contacts": contacts})
    assert response.status_code == 200, response.get_body()[:300]
    assert len({r["crmId"] for r in response.json["results"]}) == len(contacts)
    companies = [
        {"externalId": "bad-domain", "domain": "acme[1].com", "name": "Bracket Domain"},
        {"externalId": "huge-name", "name": "N" * 70000},
        {"externalId": "fine", "domain": "fine-company.example", "name": "Fine"},
    ]
    assert stack.call("POST", "companies", {"companies": companies}).status_code == 200
    stack.drain()
    emails = {(r.get("emailaddress1") or "") for r in stack.rows("contact")}
    assert {f"ok{i}@hostile.example" for i in range(95)} <= emails
    for external_id in ("huge-email", "huge-company", "bracket", "ipv6", "huge-url"):
        assert _entry(stack, "contact", external_id).status == "created"
    for external_id in ("bad-domain", "huge-name", "fine"):
        assert _entry(stack, "company", external_id).status == "created"
