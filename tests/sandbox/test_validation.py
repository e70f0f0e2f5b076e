"""Write validation: the error codes and messages Dataverse returns for bad payloads."""

from __future__ import annotations

import httpx
import pytest

from devstack.dataverse_sandbox import SEED_IDS, Sandbox
from tests.sandbox.conftest import error_of


def test_unknown_column_is_400_0x80060888(api: httpx.Client) -> None:
    resp = api.post("contacts", json={"lastname": "X", "linkedin": "https://x"})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "0x80060888"
    assert "'linkedin'" in err["message"] and "Microsoft.Dynamics.CRM.contact" in err["message"]


def test_unknown_navigation_property_in_bind_is_400(api: httpx.Client) -> None:
    resp = api.post("contacts", json={"lastname": "X", "parentcustomerid@odata.bind": "/accounts(x)"})
    assert resp.status_code == 400
    assert error_of(resp)["code"] == "0x80060888"


def test_string_too_long_names_column_and_length(api: httpx.Client) -> None:
    resp = api.post("contacts", json={"lastname": "X", "firstname": "f" * 51})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "0x80044331"
    assert "'firstname'" in err["message"] and "'50'" in err["message"]
    assert api.post("contacts", json={"lastname": "X", "firstname": "f" * 50}).status_code == 204


def test_required_column_missing_on_create_when_application_required_is_enforced(
    api: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.config.enforce_application_required = True
    resp = api.post("contacts", json={"firstname": "Only"})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "0x80040200" and "'lastname'" in err["message"]
    account = api.post("accounts", json={"websiteurl": "https://nameless.example"})
    assert account.status_code == 400 and "'name'" in error_of(account)["message"]


def test_by_default_only_system_required_columns_are_enforced_like_the_web_api(api: httpx.Client) -> None:
    assert api.post("contacts", json={"firstname": "Only"}).status_code == 204
    assert api.post("accounts", json={"websiteurl": "https://nameless.example"}).status_code == 204
    assert api.post("leads", json={"emailaddress1": "only@lead.example"}).status_code == 204
    # SystemRequired stays enforced: a task needs its subject.
    task = api.post("tasks", json={"description": "no subject"})
    assert task.status_code == 400 and error_of(task)["code"] == "0x80040200"
    assert "'subject'" in error_of(task)["message"]


def test_invalid_choice_value(api: httpx.Client) -> None:
    resp = api.post("contacts", json={"lastname": "X", "leadsourcecode": 99})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "0x8004431A" and "'leadsourcecode'" in err["message"]


@pytest.mark.parametrize(("column", "value"), [
    ("numberofemployees", "many"),
    ("numberofemployees", 1.5),
    ("name", 12),
    ("revenue", "lots"),
    ("industrycode", "Consulting"),
    ("websiteurl", True),
])
def test_wrong_type_is_400(api: httpx.Client, column: str, value: object) -> None:
    resp = api.post("accounts", json={"name": "Typed", column: value})
    assert resp.status_code == 400
    assert error_of(resp)["code"] == "0x80048d19"


def test_wrong_date_and_boolean_types(api: httpx.Client) -> None:
    assert api.post("contacts", json={"lastname": "X", "birthdate": "not a date"}).status_code == 400
    assert api.post("contacts", json={"lastname": "X", "donotemail": "yes"}).status_code == 400
    ok = api.post("contacts?$select=birthdate,donotemail", headers={"Prefer": "return=representation"},
                  json={"lastname": "X", "birthdate": "1990-05-17", "donotemail": True})
    assert ok.status_code == 201
    assert ok.json()["birthdate"] == "1990-05-17" and ok.json()["donotemail"] is True


def test_update_validates_too(api: httpx.Client) -> None:
    contact = SEED_IDS["contact:sean"]
    resp = api.patch(f"contacts({contact})", headers={"If-Match": "*"}, json={"jobtitle": "j" * 101})
    assert resp.status_code == 400 and error_of(resp)["code"] == "0x80044331"


def test_invalid_json_body(api: httpx.Client) -> None:
    resp = api.post("contacts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
