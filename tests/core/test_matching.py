from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.mappings import CompanyMatching, ContactMatching, MatchCondition, MatchRule, Normaliser
from shared.domain.matching import (
    CandidateQuery,
    Match,
    MatchTarget,
    group_identities,
    match_records,
    match_with_fallback,
    plan_candidate_queries,
    plan_fallback_queries,
)
from shared.domain.odata import encode_query

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


# ---------------------------------------------------------------------------------------------
# LinkedIn: exact forms first, a slug contains() only for the records nothing matched.


def _linkedin_filter(queries: list[CandidateQuery]) -> str:
    return next(q.filter for q in queries if "gd_linkedinurl" in q.filter)


def test_linkedin_exact_forms_cover_scheme_www_slash_and_encoding() -> None:
    records = [{"externalId": "j", "linkedinUrl": "https://es.linkedin.com/in/Jose-Garcia/?originalSubdomain=es"}]
    linkedin = _linkedin_filter(plan_candidate_queries(CONTACTS, records))
    for form in (
        "https://www.linkedin.com/in/jose-garcia",
        "https://www.linkedin.com/in/jose-garcia/",
        "http://www.linkedin.com/in/jose-garcia",
        "http://www.linkedin.com/in/jose-garcia/",
        "https://linkedin.com/in/jose-garcia",
        "https://linkedin.com/in/jose-garcia/",
        "www.linkedin.com/in/jose-garcia",
        "linkedin.com/in/jose-garcia",
        "https://es.linkedin.com/in/Jose-Garcia/?originalSubdomain=es",  # as Genesy sent it
    ):
        assert f'"{form}"' in linkedin
    assert "contains" not in linkedin and linkedin.count('"') == 2 * 9  # eight usual forms and the raw URL
    encoded = _linkedin_filter(
        plan_candidate_queries(CONTACTS, [{"externalId": "e", "linkedinUrl": "linkedin.com/in/josé"}])
    )
    assert '"https://www.linkedin.com/in/jos%C3%A9"' in encoded and '"https://www.linkedin.com/in/josé"' in encoded


def test_fallback_asks_contains_on_the_slug_only_for_records_nothing_matched() -> None:
    records = [
        {"externalId": "found", "email": "known@x.com", "linkedinUrl": "linkedin.com/in/known"},
        {"externalId": "missed", "linkedinUrl": "http://www.linkedin.com/in/JOSE-GARCIA"},
        {"externalId": "no-url", "email": "new@x.com"},
    ]
    matches = {"found": Match("found", "a", 0, {})}
    [query] = plan_fallback_queries(CONTACTS, records, matches)
    assert query.filter == "contains(gd_linkedinurl,'/in/jose-garcia')"
    assert query.purpose == "candidates" and query.entity_set == "contacts"
    assert plan_fallback_queries(CONTACTS, records[:1], matches) == []
    assert plan_fallback_queries(CONTACTS, [records[2]], {}) == []


def test_fallback_rows_are_kept_only_when_the_slug_is_exactly_the_records() -> None:
    records = [{"externalId": "j", "linkedinUrl": "linkedin.com/in/jose-garcia"}]
    stored = [
        _row("UK", gd_linkedinurl="https://uk.linkedin.com/in/Jose-Garcia/?trk=x"),
        _row("TWO", gd_linkedinurl="https://es.linkedin.com/in/jose-garcia-2?trk=y"),
        _row("POST", gd_linkedinurl="https://www.linkedin.com/posts/in/jose-garcia"),
    ]
    reads: list[list[CandidateQuery]] = []

    def run(queries: Sequence[CandidateQuery]) -> list[list[dict[str, Any]]]:
        reads.append(list(queries))
        # First read: the exact In() finds none of these forms; second: every row containing the fragment.
        return [stored if q.filter.startswith("contains(") else [] for q in queries]

    matches = match_with_fallback(CONTACTS, records, run)
    assert matches["j"].crm_id == "uk" and matches["j"].ambiguous_ids == []
    assert len(reads) == 2 and all("contains" not in q.filter for q in reads[0])


def test_no_second_read_when_every_record_with_a_linkedin_url_matched() -> None:
    records = [
        {"externalId": "j", "linkedinUrl": "linkedin.com/in/jose-garcia"},
        {"externalId": "n", "email": "n@x.com"},
    ]
    reads: list[int] = []

    def run(queries: Sequence[CandidateQuery]) -> list[list[dict[str, Any]]]:
        reads.append(len(queries))
        return [[_row("J", gd_linkedinurl="https://www.linkedin.com/in/jose-garcia")] for _ in queries]

    assert set(match_with_fallback(CONTACTS, records, run)) == {"j"}
    assert len(reads) == 1


def test_fallback_fragment_stops_before_a_like_bracket() -> None:
    [query] = plan_fallback_queries(CONTACTS, [{"externalId": "b", "linkedinUrl": "linkedin.com/in/ab[c]d"}], {})
    assert query.filter == "contains(gd_linkedinurl,'/in/ab')"
    # `/in/` alone would fetch every profile: only the percent-encoded form, free of `[`, is asked.
    [query] = plan_fallback_queries(CONTACTS, [{"externalId": "b", "linkedinUrl": "linkedin.com/in/[x]"}], {})
    assert query.filter == "contains(gd_linkedinurl,'/in/%5Bx%5D')"


def test_company_linkedin_pages_get_the_fallback_too() -> None:
    rules = (MatchRule(all_of=[MatchCondition(field="linkedinUrl", column="gd_linkedinurl", normaliser="linkedin")]),)
    target = MatchTarget("accounts", "accountid", rules, company_entity=True)
    records = [{"externalId": "c", "linkedinUrl": "https://www.linkedin.com/company/Acme/"}]
    assert '"https://www.linkedin.com/company/acme"' in plan_candidate_queries(target, records)[0].filter
    [query] = plan_fallback_queries(target, records, {})
    assert query.filter == "contains(gd_linkedinurl,'/company/acme')"


# ---------------------------------------------------------------------------------------------
# Hostile input: one bad value never fails the call; every planned URL stays within Dataverse's limit.

SERVICE_ROOT = "https://org0123456789abcdef.crm4.dynamics.com/api/data/v9.2/"
URL_LIMIT = 32768


def _url_length(query: CandidateQuery) -> int:
    params = {"$filter": query.filter, "$select": ",".join(query.select)}
    if query.expand:
        params["$expand"] = query.expand
    return len(SERVICE_ROOT) + len(query.entity_set) + 1 + len(encode_query(params))


def test_a_value_too_long_for_any_query_leaves_the_other_records_alone() -> None:
    records = [
        {"externalId": "huge", "email": "b" * 70000 + "@x.com", "linkedinUrl": "linkedin.com/in/huge"},
        {"externalId": "ok", "email": "ok@x.com"},
        {"externalId": "co", "firstName": "A", "lastName": "B", "company": "Acme " * 14000},
    ]
    queries = plan_candidate_queries(CONTACTS, records)
    assert all(_url_length(q) < URL_LIMIT for q in queries)
    joined = " ".join(q.filter for q in queries)
    assert '"ok@x.com"' in joined and "linkedin.com/in/huge" in joined and "bbbb" not in joined
    rows = [_row("H", gd_linkedinurl="https://www.linkedin.com/in/huge"), _row("O", emailaddress1="ok@x.com")]
    matches = match_records(CONTACTS, records, queries, [rows for _ in queries])
    assert {k: m.crm_id for k, m in matches.items()} == {"huge": "h", "ok": "o"}  # matched on what else it has
    companies = MatchTarget.for_companies(CompanyMatching())
    assert plan_candidate_queries(companies, [{"externalId": "c", "name": "x" * 70000}]) == []


def test_lone_surrogates_and_brackets_are_not_used_for_matching_and_never_crash_encoding() -> None:
    records = [
        {"externalId": "s", "email": "a\ud800@x.com", "linkedinUrl": "[a]", "lastName": "\udfff", "firstName": "A"},
        {"externalId": "d", "email": "ok@x.com", "linkedinUrl": "http://[oops/in/x"},
    ]
    queries = plan_candidate_queries(CONTACTS, records)
    assert [q.filter for q in queries] == [
        "Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[\"ok@x.com\"])"
    ]
    companies = MatchTarget.for_companies(CompanyMatching())
    assert plan_candidate_queries(companies, [{"externalId": "c", "domain": "acme[1].com", "name": "\ud800"}]) == []
    # Whatever else builds a query from such text gets a valid UTF-8 URL.
    assert encode_query({"$filter": "name eq '\ud800'"}) == "$filter=name%20eq%20'%EF%BF%BD'"


_FIELD_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=60),
    st.sampled_from(["linkedin.com/in/x", "a@b.com", "acme.com", "[a]", "\ud800", "https://es.linkedin.com/in/Y?z"]),
    st.integers(min_value=1, max_value=70000).map(lambda n: "é" * n),
    st.integers(min_value=1, max_value=70000).map(lambda n: "b" * n + "@x.com"),
)
_RECORD = st.fixed_dictionaries(
    {},
    optional={
        name: _FIELD_TEXT
        for name in ("email", "linkedinUrl", "firstName", "lastName", "company", "phone", "domain", "name")
    },
)
_TARGETS = [
    CONTACTS,
    MatchTarget.for_contacts(ContactMatching(mode="name_company")),
    MatchTarget.for_companies(CompanyMatching()),
    MatchTarget.for_companies(CompanyMatching(any_domain_extension=True)),
    MatchTarget(
        "contacts",
        "contactid",
        (
            MatchRule(
                all_of=[
                    MatchCondition(field="phone", column="telephone1", normaliser=Normaliser.PHONE),
                    MatchCondition(field="firstName", column="firstname", normaliser=Normaliser.EXACT),
                ]
            ),
        ),
    ),
]


@settings(max_examples=150, deadline=None)
@given(records=st.lists(_RECORD, max_size=6), target=st.sampled_from(_TARGETS))
def test_planning_never_raises_and_every_query_url_fits(records: list[dict[str, Any]], target: MatchTarget) -> None:
    records = [{**r, "externalId": str(i)} for i, r in enumerate(records)]
    queries = plan_candidate_queries(target, records)
    fallback = plan_fallback_queries(target, records, {})
    for query in [*queries, *fallback]:
        assert _url_length(query) < URL_LIMIT
    match_records(target, records, [*queries, *fallback], [[] for _ in [*queries, *fallback]])
    group_identities(target, records)
