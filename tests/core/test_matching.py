from typing import Any

from mapping_store.models import CompanyMatching, ContactMatching, MatchCondition, MatchRule, Normaliser
from shared.dataverse.odata import encode_query
from shared.matching import MatchTarget, group_identities, match_records, plan_candidate_queries

CONTACTS = MatchTarget.for_contacts(ContactMatching())


def _row(id_: str, **values: Any) -> dict[str, Any]:
    return {"contactid": id_, "statecode": 0, "modifiedon": "2024-01-01T00:00:00Z", **values}


def _run(target: MatchTarget, records: list[dict[str, Any]], rows_by_set: dict[str, list[dict[str, Any]]]):
    queries = plan_candidate_queries(target, records)
    # Stand-in for Dataverse: every query returns all rows of its table; precision is match_records' job.
    results = [rows_by_set.get(q.entity_set, []) for q in queries]
    return queries, match_records(target, records, queries, results)


def test_email_rule_matches_case_insensitively_and_queries_with_in() -> None:
    records = [{"externalId": "l1", "email": "John.Doe@Acme.com"}, {"externalId": "l2", "email": "new@x.com"}]
    queries, matches = _run(CONTACTS, records, {"contacts": [_row("A", emailaddress1="john.doe@acme.com")]})
    assert "Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1'" in queries[0].filter
    assert '"john.doe@acme.com"' in queries[0].filter
    assert set(matches) == {"l1"}
    assert matches["l1"].crm_id == "a" and matches["l1"].rule_index == 0


def test_linkedin_rule_queries_exact_url_variants_and_normalises_both_sides() -> None:
    records = [{"externalId": "l1", "linkedinUrl": "https://www.linkedin.com/in/JaneRoe/"}]
    rows = [_row("B", gd_linkedinurl="linkedin.com/in/janeroe"), _row("C", gd_linkedinurl="linkedin.com/in/janeroe2")]
    queries, matches = _run(CONTACTS, records, {"contacts": rows})
    linkedin_query = next(q.filter for q in queries if "gd_linkedinurl" in q.filter)
    assert '"https://www.linkedin.com/in/janeroe/"' in linkedin_query and "contains" not in linkedin_query
    assert matches["l1"].crm_id == "b"
    assert matches["l1"].ambiguous_ids == []


def test_name_and_company_through_the_parent_account() -> None:
    records = [{"externalId": "l1", "firstName": "Seán", "lastName": "O'Brien", "company": "Acme Inc."}]
    rows = {
        "contacts": [
            _row("D", firstname="Sean", lastname="O'Brien", parentcustomerid_account={"name": "ACME"}),
            _row("E", firstname="Sean", lastname="O'Brien", parentcustomerid_account={"name": "Other Ltd"}),
            _row("F", firstname="Sean", lastname="O'Brien", parentcustomerid_account=None),
        ],
    }
    queries, matches = _run(CONTACTS, records, rows)
    contact_query = next(q for q in queries if q.entity_set == "contacts")
    assert contact_query.expand == "parentcustomerid_account($select=name)"
    assert contact_query.filter.startswith("Microsoft.Dynamics.CRM.In(PropertyName='lastname'")
    # A popular last name alone would bring back too many rows: the first name narrows the query.
    assert " and Microsoft.Dynamics.CRM.In(PropertyName='firstname'" in contact_query.filter
    assert '"O\'Brien"' in contact_query.filter
    assert {q.entity_set for q in queries} == {"contacts"}  # no separate query for account names
    assert matches["l1"].crm_id == "d"


def test_ambiguity_picks_most_recent_active_and_notes_the_rest() -> None:
    records = [{"externalId": "l1", "email": "dup@acme.com"}]
    rows = [
        _row("OLD", emailaddress1="dup@acme.com", modifiedon="2023-01-01T00:00:00Z"),
        _row("NEW", emailaddress1="DUP@acme.com", modifiedon="2024-06-01T00:00:00Z"),
        _row("INACTIVE", emailaddress1="dup@acme.com", modifiedon="2025-01-01T00:00:00Z", statecode=1),
    ]
    _, matches = _run(CONTACTS, records, {"contacts": rows})
    assert matches["l1"].crm_id == "new"
    assert matches["l1"].ambiguous_ids == ["inactive", "old"]


def test_rule_priority_email_before_linkedin() -> None:
    records = [{"externalId": "l1", "email": "a@x.com", "linkedinUrl": "linkedin.com/in/a"}]
    rows = [_row("BYLINK", gd_linkedinurl="https://linkedin.com/in/a/"), _row("BYMAIL", emailaddress1="a@x.com")]
    _, matches = _run(CONTACTS, records, {"contacts": rows})
    assert matches["l1"].crm_id == "bymail"


def test_any_extension_domains_and_name_fallback_for_companies() -> None:
    target = MatchTarget.for_companies(CompanyMatching(any_domain_extension=True))
    records = [
        {"externalId": "c1", "domain": "acme.es"},
        {"externalId": "c2", "name": "Globex Corporation"},
        {"externalId": "c3", "domain": "initech.com"},
    ]
    rows = [
        {"accountid": "A1", "websiteurl": "https://www.acme.com/", "name": "Acme"},
        {"accountid": "G1", "websiteurl": None, "name": "GLOBEX"},
        {"accountid": "X1", "websiteurl": "https://notinitech.com", "name": "Not Initech"},
    ]
    queries, matches = _run(target, records, {"accounts": rows})
    assert any("contains(websiteurl,'acme.')" in q.filter for q in queries)
    assert matches["c1"].crm_id == "a1"
    assert matches["c2"].crm_id == "g1"
    assert "c3" not in matches


def test_custom_rules_and_records_missing_fields() -> None:
    rules = (
        MatchRule(
            all_of=[
                MatchCondition(field="phone", column="telephone1", normaliser=Normaliser.PHONE),
                MatchCondition(field="lastName", column="lastname", normaliser=Normaliser.NAME),
            ]
        ),
    )
    target = MatchTarget(entity_set="contacts", primary_id="contactid", rules=rules)
    records = [{"externalId": "p1", "phone": "+1 555 0100", "lastName": "Núñez"}, {"externalId": "p2", "phone": "1"}]
    rows = [_row("N", telephone1="+15550100", lastname="Nunez")]
    queries, matches = _run(target, records, {"contacts": rows})
    assert len(queries) == 1
    assert set(matches) == {"p1"}


def test_adversarial_literals_are_escaped_in_filters() -> None:
    records = [
        {"externalId": "1", "email": "o'brien@x.com"},
        {"externalId": "2", "linkedinUrl": "linkedin.com/in/a'b&c"},
    ]
    queries = plan_candidate_queries(CONTACTS, records)
    joined = " ".join(q.filter for q in queries)
    assert '"https://linkedin.com/in/a\'b&c"' in joined
    assert '"o\'brien@x.com"' in joined


def test_long_value_lists_are_chunked() -> None:
    records = [{"externalId": str(i), "email": f"person{i:05d}-{'x' * 40}@example.com"} for i in range(1000)]
    queries = plan_candidate_queries(CONTACTS, records)
    assert len(queries) > 1
    assert all(len(encode_query({"$filter": q.filter})) <= 24000 for q in queries)
    # Values that percent-encode to three times their length are chunked by their encoded size.
    wide = [
        {"externalId": str(i), "lastName": "漢字" * 20 + str(i), "firstName": "A", "company": "C"} for i in range(300)
    ]
    assert all(len(encode_query({"$filter": q.filter})) <= 24000 for q in plan_candidate_queries(CONTACTS, wide))


def test_group_identities_within_one_call() -> None:
    records = [
        {"externalId": "a", "email": "same@x.com"},
        {"externalId": "b", "email": "SAME@x.com", "linkedinUrl": "linkedin.com/in/s"},
        {"externalId": "c", "linkedinUrl": "https://www.linkedin.com/in/s/"},
        {"externalId": "d", "email": "other@x.com"},
    ]
    leaders = group_identities(CONTACTS, records)
    assert leaders == {"a": "a", "b": "a", "c": "a", "d": "d"}
