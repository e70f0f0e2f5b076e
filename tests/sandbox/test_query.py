"""`$filter`, `$select`, `$orderby`, `$top` and paging, including adversarial literals."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devstack.dataverse_sandbox import SEED_IDS, Sandbox
from tests.sandbox.conftest import error_of


def _names(api: httpx.Client, entity_set: str, filter_: str, column: str = "emailaddress1") -> list[Any]:
    resp = api.get(entity_set, params={"$filter": filter_, "$select": column, "$orderby": column})
    assert resp.status_code == 200, resp.text
    return [row[column] for row in resp.json()["value"]]


def test_apostrophe_is_doubled_in_literals(api: httpx.Client) -> None:
    assert _names(api, "contacts", "lastname eq 'O''Brien'") == ["sean.obrien@obrien.ie"]
    assert _names(api, "accounts", "name eq 'O''Brien & Sons'", "name") == ["O'Brien & Sons"]
    assert _names(api, "contacts", "lastname eq 'OBrien'") == []


def test_plus_sign_must_be_url_encoded(api: httpx.Client) -> None:
    assert _names(api, "contacts", "emailaddress1 eq 'a+b@x.com'") == ["a+b@x.com"]
    raw = api.get("contacts?$select=emailaddress1&$filter=emailaddress1%20eq%20'a+b@x.com'")
    assert raw.json()["value"] == []  # an unencoded '+' is a space


def test_non_ascii_literal(api: httpx.Client) -> None:
    assert _names(api, "contacts", "emailaddress1 eq 'ñandú@ejemplo.es'") == ["ñandú@ejemplo.es"]


@pytest.mark.parametrize("value", ["R&D / Sales? #1 (50%), ok", "a&b=c", "x#y", "50% off", "(a,b)", "q?"])
def test_reserved_characters_round_trip_exactly(api: httpx.Client, sandbox: Sandbox, value: str) -> None:
    sandbox.store.insert("account", {"name": value})
    sandbox.store.insert("account", {"name": value + " extra"})
    assert _names(api, "accounts", f"name eq '{value}'", "name") == [value]
    manual = api.get(f"accounts?$select=name&$filter={quote(f'name eq {chr(39)}{value}{chr(39)}', safe='')}")
    assert [r["name"] for r in manual.json()["value"]] == [value]


def test_string_comparison_is_case_and_accent_insensitive_by_default(api: httpx.Client, sandbox: Sandbox) -> None:
    assert _names(api, "contacts", "emailaddress1 eq 'SEAN.OBRIEN@OBRIEN.IE'") == ["sean.obrien@obrien.ie"]
    assert _names(api, "contacts", "firstname eq 'sean'", "firstname") == ["Seán"]
    sandbox.config.accent_insensitive = False
    assert _names(api, "contacts", "firstname eq 'sean'", "firstname") == []
    assert _names(api, "contacts", "firstname eq 'SEÁN'", "firstname") == ["Seán"]


def test_crm_in_function_with_json_array(api: httpx.Client) -> None:
    f = ('Microsoft.Dynamics.CRM.In(PropertyName=\'emailaddress1\','
         'PropertyValues=["a+b@x.com","ñandú@ejemplo.es","nobody@nowhere"])')
    assert _names(api, "contacts", f) == ["a+b@x.com", "ñandú@ejemplo.es"]


def test_crm_in_function_with_escaped_quotes_and_brackets_in_values(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.store.insert("account", {"name": 'Say "hi" [ltd]'})
    f = ("Microsoft.Dynamics.CRM.In(PropertyName='name',"
         'PropertyValues=["Say \\"hi\\" [ltd]","O\'Brien & Sons"]) and name ne \'[x]\'')
    assert _names(api, "accounts", f, "name") == ["O'Brien & Sons", 'Say "hi" [ltd]']


def test_crm_in_single_value_and_not_in(api: httpx.Client) -> None:
    one = "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[\"O'Brien\"])"
    assert _names(api, "contacts", one, "lastname") == ["O'Brien"]
    not_in = "Microsoft.Dynamics.CRM.NotIn(PropertyName='gd_domain',PropertyValues=['acme.com','obrien.ie'])"
    assert "acme.com" not in _names(api, "accounts", not_in, "gd_domain")


def test_odata_401_in_operator_is_rejected_like_dataverse(api: httpx.Client) -> None:
    resp = api.get("contacts", params={"$filter": "emailaddress1 in ('a+b@x.com')"})
    assert resp.status_code == 400


def test_lookup_value_and_lookup_paths(api: httpx.Client) -> None:
    acme = SEED_IDS["account:acme"]
    assert _names(api, "contacts", f"_parentcustomerid_value eq {acme}") == ["maria.garcia@acme.com"]
    assert _names(api, "contacts", "parentcustomerid_account/name eq 'Acme Corporation'") == [
        "maria.garcia@acme.com"]
    assert _names(api, "contacts", "parentcustomerid_account/gd_domain eq 'acme.com'") == [
        "maria.garcia@acme.com", "old.timer@acme.com"]
    assert _names(api, "contacts", "parentcustomerid_contact/lastname eq 'x'") == []


def test_null_comparisons_and_not(api: httpx.Client) -> None:
    no_company = _names(api, "contacts", "_parentcustomerid_value eq null")
    assert no_company == ["ñandú@ejemplo.es"]
    with_linkedin = _names(api, "contacts", "gd_linkedinurl ne null and not startswith(emailaddress1,'maria')")
    assert with_linkedin == ["jose.nunez@cafe-muenster.de", "sean.obrien@obrien.ie"]


def test_string_functions(api: httpx.Client) -> None:
    assert _names(api, "accounts", "contains(name,'acme')", "name") == ["Acme Corporation", "Acme Europe"]
    assert _names(api, "accounts", "endswith(websiteurl,'.ie')", "name") == ["O'Brien & Sons"]
    assert _names(api, "accounts", "tolower(name) eq 'contoso ltd'", "name") == ["Contoso Ltd"]


def test_datetime_and_numeric_comparisons(api: httpx.Client) -> None:
    recent = _names(api, "accounts", "modifiedon gt 2024-04-01T00:00:00Z", "name")
    assert recent == ["Acme Europe", "O'Brien & Sons"]
    assert _names(api, "contacts", "statecode eq 1") == ["old.timer@acme.com"]


def test_unknown_column_in_filter_select_orderby(api: httpx.Client) -> None:
    for params in ({"$filter": "nosuch eq 1"}, {"$select": "nosuch"}, {"$orderby": "nosuch"},
                   {"$select": "parentcustomerid"}):
        resp = api.get("contacts", params=params)
        assert resp.status_code == 400, params
        assert error_of(resp)["code"] == "0x80060888"


def test_malformed_filter_is_400(api: httpx.Client) -> None:
    assert api.get("contacts", params={"$filter": "lastname eq 'unterminated"}).status_code == 400


def test_orderby_multiple_keys(api: httpx.Client) -> None:
    rows = api.get("accounts", params={"$select": "gd_domain,modifiedon,name",
                                       "$orderby": "gd_domain asc,modifiedon desc"}).json()["value"]
    acme = [r["name"] for r in rows if r["gd_domain"] == "acme.com"]
    assert acme == ["Acme Europe", "Acme Corporation"]
    domains = [r["gd_domain"] for r in rows]
    assert domains == sorted(domains)


def test_top_and_skip(api: httpx.Client) -> None:
    assert len(api.get("contacts", params={"$top": "2"}).json()["value"]) == 2
    skip = api.get("contacts", params={"$skip": "2"})
    assert skip.status_code == 400 and "$skip" in error_of(skip)["message"]


def test_paging_with_maxpagesize_and_nextlink(api: httpx.Client, sandbox: Sandbox) -> None:
    for i in range(23):
        sandbox.store.insert("lead", {"lastname": f"Paged {i:02d}", "companyname": "Pager & Co"})
    seen: list[str] = []
    url: str | None = "leads?$select=lastname&$filter=companyname eq 'Pager %26 Co'&$orderby=lastname"
    pages = 0
    while url:
        resp = api.get(url, headers={"Prefer": "odata.maxpagesize=10"})
        assert resp.status_code == 200
        assert resp.headers["Preference-Applied"] == "odata.maxpagesize=10"
        body = resp.json()
        seen += [r["lastname"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
        if url:
            assert "$skiptoken=" in url and url.startswith(sandbox.url)
    assert pages == 3
    assert seen == [f"Paged {i:02d}" for i in range(23)]


def test_count(api: httpx.Client) -> None:
    body = api.get("accounts", params={"$count": "true", "$top": "1"}).json()
    assert body["@odata.count"] == 6 and len(body["value"]) == 1


def test_url_longer_than_limit_is_rejected(api: httpx.Client) -> None:
    long_filter = "name eq '" + "x" * 33000 + "'"
    resp = api.get("accounts", params={"$filter": long_filter})
    assert resp.status_code == 414


def test_expand_single_valued_navigation(api: httpx.Client) -> None:
    body = api.get(f"contacts({SEED_IDS['contact:maria']})",
                   params={"$select": "fullname", "$expand": "parentcustomerid_account($select=name)"}).json()
    assert body["parentcustomerid_account"]["name"] == "Acme Corporation"
