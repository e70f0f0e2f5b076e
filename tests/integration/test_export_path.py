"""The export path's promises: auth, validation, write policies, conversions, per-record failures,
ambiguity, and never a duplicate — on the real local stack."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.services.writes import process_write_message

GENESY_ROUTES = [
    ("GET", "health", None),
    ("GET", "users", None),
    ("POST", "contacts", {"contacts": [{"externalId": "x"}]}),
    ("POST", "contacts/sync", {"contacts": [{"externalId": "x"}]}),
    ("PUT", "contacts", {"contacts": [{"crmId": "x"}]}),
    ("POST", "contacts/batch", {"ids": ["x"]}),
    ("POST", "companies", {"companies": [{"externalId": "x"}]}),
    ("POST", "companies/sync", {"companies": [{"externalId": "x"}]}),
    ("PUT", "companies", {"companies": [{"crmId": "x"}]}),
    ("POST", "companies/batch", {"ids": ["x"]}),
    ("POST", "associations", {"associations": [{"contactCRMId": "a", "companyCRMId": "b"}]}),
]


def _set_section(stack: Any, section: str, document: dict[str, Any]) -> None:
    store = stack.services.store
    current = store.get_section(stack.workspace_id, section)
    store.put_section(stack.workspace_id, section, document, current.etag, "tests")


def _contact(stack: Any, email: str) -> dict[str, Any]:
    rows = [r for r in stack.rows("contact") if (r.get("emailaddress1") or "").lower() == email.lower()]
    assert len(rows) == 1, f"{len(rows)} contacts with {email}"
    return rows[0]


@pytest.mark.parametrize(("method", "path", "body"), GENESY_ROUTES)
def test_every_genesy_route_rejects_a_bad_or_missing_key(stack: Any, method: str, path: str, body: Any) -> None:
    wrong = stack.call(method, path, body, headers={"X-API-Key": "gdk_nope_nope"})
    missing = stack.call(method, path, body, headers={})
    other_header = stack.call(method, path, body, headers={"X-Other-Key": stack.api_key})
    for response in (wrong, missing, other_header):
        assert response.status_code == 401
        assert set(response.json) >= {"error", "message"}
        assert stack.api_key not in response.get_body().decode()
    assert stack.queue.pending() == 0
    assert stack.sandbox.counters.get("requests", 0) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        ({"people": [{"externalId": "1"}]}, "contacts"),
        ({"contacts": [{"externalId": "1"}, {"email": "a@b.c"}]}, "contacts[1].externalId"),
        ({"contacts": [{"externalId": "1", "email": {"x": 1}}]}, "contacts[0].email"),
        ({"contacts": [{"externalId": "   "}]}, "contacts[0].externalId"),
        ({"contacts": "nope"}, "contacts"),
        ([1, 2], "body"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field_and_nothing_is_enqueued(stack: Any, body: Any, field: str) -> None:
    raw = body if isinstance(body, bytes) else None
    if raw is not None:
        response = stack.host.http("POST", "/api/contacts", headers=stack.headers, body=raw)
        import json

        payload = json.loads(response.get_body())
    else:
        response = stack.call("POST", "contacts", body)
        payload = response.json
    assert response.status_code == 400
    assert payload["message"].startswith(field) or field in payload["message"]
    assert stack.queue.pending() == 0


def test_export_value_outside_its_options_is_400_and_nothing_is_enqueued(stack: Any) -> None:
    _set_section(
        stack,
        "export",
        {
            "contact": {
                "fields": [
                    {"source": "lastName", "column": "lastname"},
                    {"source": "email", "column": "emailaddress1"},
                ],
                "export_fields": [
                    {"name": "source", "column": "leadsourcecode", "options": ["Web", "Partner"], "default": "Web"}
                ],
            }
        },
    )
    body = {"contacts": [{"externalId": "e1", "lastName": "Lee"}], "exportValues": {"source": "Billboard"}}
    response = stack.call("POST", "contacts", body)
    assert response.status_code == 400
    assert response.json["details"][0]["field"] == "exportValues.source"
    assert "Billboard" in response.json["message"]
    assert stack.queue.pending() == 0

    ok = stack.call("POST", "contacts", {**body, "exportValues": {"source": "Partner"}})
    assert ok.status_code == 200
    stack.drain()
    created = next(r for r in stack.rows("contact") if r.get("lastname") == "Lee")
    assert created["leadsourcecode"] == 4  # the choice label became its value


def test_write_policies_keep_what_they_should(stack: Any) -> None:
    _set_section(
        stack,
        "export",
        {
            "contact": {
                "fields": [
                    {"source": "firstName", "column": "firstname"},
                    {"source": "lastName", "column": "lastname"},
                    {"source": "email", "column": "emailaddress1"},
                    {"source": "title", "column": "jobtitle", "policy": "if_empty"},
                    {"source": "phone", "column": "telephone1", "policy": "on_create"},
                    {"source": "description", "column": "description", "policy": "if_empty"},
                ],
                "fixed": [{"column": "leadsourcecode", "value": "Web", "policy": "on_create"}],
                "engagement": [{"column": "gd_campaign_status", "value": "Engaged by Genesy"}],
            }
        },
    )
    maria = SEED_IDS["contact:maria"]
    stack.services.dataverse(stack.sandbox.url).update(
        "contacts", maria, {"jobtitle": "Head of Sales", "telephone1": "+34 600 000 000"}
    )
    contacts = [
        {
            "externalId": "m",
            "email": "MARIA.GARCIA@acme.com",
            "firstName": "María",
            "lastName": "García",
            "title": "Intern",
            "phone": "+1 999",
            "description": "from Genesy",
            "campaigns": "Q4 Outbound",
        },
        {"externalId": "n", "email": "new.person@acme.com", "lastName": "Person", "title": "VP", "phone": "+1 555"},
    ]
    results = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    assert results[0]["crmId"] == maria
    stack.drain()
    updated = stack.sandbox.store.get("contact", maria)
    assert updated["jobtitle"] == "Head of Sales"  # if_empty kept the CRM value
    assert updated["telephone1"] == "+34 600 000 000"  # on_create left the existing record alone
    assert updated["description"] == "from Genesy"  # if_empty wrote into an empty column
    assert updated.get("leadsourcecode") in (None, 0)  # fixed on_create: not on update
    assert updated["gd_campaign_status"] == "Engaged by Genesy"  # took part in a campaign
    new = _contact(stack, "new.person@acme.com")
    assert new["jobtitle"] == "VP" and new["telephone1"] == "+1 555" and new["leadsourcecode"] == 8
    assert not new.get("gd_campaign_status")  # no campaign: engagement fields untouched
    entries = {e.key: e for e in stack.services.ledger.entries(stack.workspace_id)}
    assert entries["m"].status == "updated" and entries["n"].status == "created"


def test_a_record_dynamics_refuses_fails_only_its_record_with_dataverses_reason(stack: Any) -> None:
    # An environment that enforces the last name (the sandbox's strict mode stands in for a plug-in or a
    # stricter setting): Dataverse refuses that one record, the others land.
    stack.sandbox.config.enforce_application_required = True
    contacts = [
        {"externalId": "ok-1", "email": "ok1@x.example", "lastName": "One"},
        {"externalId": "bad", "email": "bad@x.example"},
        {"externalId": "ok-2", "email": "ok2@x.example", "lastName": "Two"},
    ]
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    report = stack.drain()
    assert report.dead_lettered == 0
    assert _contact(stack, "ok1@x.example")["lastname"] == "One"
    assert _contact(stack, "ok2@x.example")["lastname"] == "Two"
    assert not [r for r in stack.rows("contact") if r.get("emailaddress1") == "bad@x.example"]
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "create", "bad")
    assert entry is not None and entry.status == "failed"
    assert entry.code == "0x80040200"
    assert "lastname" in (entry.message or "")
    assert "lastname: required by Dynamics and no value is mapped" in entry.warnings


def test_ambiguous_company_matches_the_most_recent_active_record(stack: Any) -> None:
    results = stack.call("POST", "companies", {"companies": [{"externalId": "c", "domain": "www.acme.com"}]}).json
    assert results["results"][0]["crmId"] == SEED_IDS["account:acme-europe"]  # modified after Acme Corporation
    stack.drain()
    entry = stack.services.ledger.get(stack.workspace_id, "company", "create", "c")
    assert entry is not None and entry.status == "ambiguous"
    assert SEED_IDS["account:acme"] in entry.aliases
    assert len(stack.rows("account")) == 6


def test_repeated_calls_and_redelivered_messages_never_duplicate(stack: Any) -> None:
    contacts = [{"externalId": f"r{i}", "email": f"r{i}@dup.example", "lastName": f"R{i}"} for i in range(5)]
    first = stack.call("POST", "contacts", {"contacts": contacts}).json
    second = stack.call("POST", "contacts", {"contacts": contacts}).json
    assert first == second
    # Keep a copy of the message and process it again after it was handled: a redelivery.
    message = stack.queue.peek_next(stack.settings.writes_queue, stack.workspace_id)
    stack.drain()
    import json

    process_write_message(stack.services, json.loads(message.body), delivery_count=2)
    emails = [r.get("emailaddress1") for r in stack.rows("contact")]
    assert sorted(e for e in emails if e and e.endswith("@dup.example")) == [f"r{i}@dup.example" for i in range(5)]


def test_concurrent_exports_of_the_same_people_end_in_one_record_each(stack: Any) -> None:
    people = [{"email": f"p{i}@race.example", "lastName": f"P{i}"} for i in range(20)]
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def export(prefix: str) -> None:
        body = {"contacts": [{"externalId": f"{prefix}-{i}", **p} for i, p in enumerate(people)]}
        barrier.wait()
        answers.append(stack.call("POST", "contacts", body))

    threads = [threading.Thread(target=export, args=(p,)) for p in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    stack.drain()
    emails = [
        r.get("emailaddress1") for r in stack.rows("contact") if (r.get("emailaddress1") or "").endswith("race.example")
    ]
    assert len(emails) == len(set(emails)) == 20
    # Whichever id each export was given, later calls with it reach the one record.
    ids = {r["crmId"] for a in answers for r in a.json["results"]}
    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": i, "title": "Racer"} for i in sorted(ids)]}).json
    assert all(r["success"] for r in put["results"])
    stack.drain()
    assert {
        r.get("jobtitle") for r in stack.rows("contact") if (r.get("emailaddress1") or "").endswith("race.example")
    } == {"Racer"}


def test_duplicates_within_one_call_share_one_record(stack: Any) -> None:
    alice = SEED_IDS["user:alice"]
    contacts = [
        {"externalId": "d1", "email": "twin@x.example", "lastName": "Twin", "ownerId": alice, "title": "CEO"},
        {"externalId": "d2", "email": "TWIN@x.example", "lastName": "Twin", "linkedinUrl": "linkedin.com/in/twin"},
        {"externalId": "d3", "linkedinUrl": "https://www.linkedin.com/in/twin/", "lastName": "Twin", "title": ""},
    ]
    results = stack.call("POST", "contacts", {"contacts": contacts}).json["results"]
    assert len({r["crmId"] for r in results}) == 1
    stack.drain()
    [twin] = [r for r in stack.rows("contact") if r.get("lastname") == "Twin"]
    # The copies were merged: the owner chosen on one copy and its title are kept (an empty title
    # does not erase it), a later value updates an earlier one.
    assert twin["_ownerid_value"] == alice and twin["jobtitle"] == "CEO"
    assert twin["gd_linkedinurl"] == "https://www.linkedin.com/in/twin"  # written in its canonical form
    assert twin["emailaddress1"] == "twin@x.example"  # not replaced by its upper-case variant
    ledger = stack.services.ledger
    assert ledger.get(stack.workspace_id, "contact", "create", "d1").status == "created"
    follower = ledger.get(stack.workspace_id, "contact", "create", "d3")
    assert follower.status == "created" and "same Dynamics record as 'd1'" in (follower.message or "")


def test_names_with_quotes_and_accents_match_existing_contacts(stack: Any) -> None:
    _set_section(stack, "sync", {"contact": {"mode": "name_company"}})
    sync = stack.call(
        "POST",
        "contacts/sync",
        {
            "contacts": [
                {"externalId": "s", "firstName": "Sean", "lastName": "O'Brien", "company": "O'Brien and Sons"},
                {"externalId": "j", "firstName": "JOSÉ", "lastName": "Núñez", "company": "Cafe Munster"},
                {"externalId": "x", "firstName": "Sean", "lastName": "O'Brien", "company": "Contoso"},
            ]
        },
    ).json["results"]
    found = {r["externalId"]: r["crmId"] for r in sync}
    # Apostrophes, "&" vs "and", accents, case and legal suffixes (GmbH) are all ignored; a different
    # company is not a match.
    assert found == {"s": SEED_IDS["contact:sean"], "j": SEED_IDS["contact:jose"]}


def test_unavailable_dynamics_during_matching_still_answers_and_the_worker_aliases(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.sandbox.config.error_rate_5xx = 1.0
    contacts = [{"externalId": "late", "email": "maria.garcia@acme.com", "lastName": "García"}]
    response = stack.call("POST", "contacts", {"contacts": contacts})
    assert response.status_code == 200
    handed_out = response.json["results"][0]["crmId"]
    assert handed_out != SEED_IDS["contact:maria"]
    stack.sandbox.config.error_rate_5xx = 0.0
    stack.drain()
    assert len([r for r in stack.rows("contact") if r.get("emailaddress1") == "maria.garcia@acme.com"]) == 1
    entry = stack.services.ledger.get(stack.workspace_id, "contact", "create", "late")
    assert entry is not None and entry.crm_id == SEED_IDS["contact:maria"] and handed_out in entry.aliases
    stack.call("PUT", "contacts", {"contacts": [{"crmId": handed_out, "title": "Found later"}]})
    stack.drain()
    assert stack.sandbox.store.get("contact", SEED_IDS["contact:maria"])["jobtitle"] == "Found later"


def test_campaign_events_before_the_contact_is_written_make_it_engaged_with_its_campaign_values(stack: Any) -> None:
    from shared.domain.campaign import CampaignEvent
    from shared.services.campaign import send_campaign_events

    _set_section(
        stack,
        "export",
        {
            "contact": {
                "fields": [
                    {"source": "lastName", "column": "lastname"},
                    {"source": "email", "column": "emailaddress1"},
                ],
                "engagement": [{"column": "description", "value": "Engaged by Genesy"}],
            }
        },
    )
    contacts = [{"externalId": "early", "email": "early@x.example", "lastName": "Early"}]
    crm_id = stack.call("POST", "contacts", {"contacts": contacts}).json["results"][0]["crmId"]
    events = [
        CampaignEvent(
            workspace_id=stack.workspace_id,
            contact_id=crm_id,
            campaign="Q4 Outbound",
            event=kind,
            step=step,
            step_count=3,
            occurred_at=f"2024-10-0{day}T10:00:00Z",
            event_id=f"ev-{day}",
        )
        for day, (kind, step) in enumerate([("step", 1), ("open", 1), ("step", 2)], start=1)
    ]
    send_campaign_events(stack.services, events)
    stack.host.drain(stack.settings.campaign_queue)  # campaign events land first: the contact is not there yet
    stack.host.drain(stack.settings.writes_queue)
    row = _contact(stack, "early@x.example")
    assert row["description"] == "Engaged by Genesy"
    assert row["gd_campaign_status"] == "Step 2 of 3"
    assert "1 open" in row["gd_campaign_open_analysis"]


def test_associations_report_missing_records_and_replacements_in_the_ledger(stack: Any) -> None:
    import uuid

    ghost_contact, ghost_company = str(uuid.uuid4()), str(uuid.uuid4())
    sean, maria = SEED_IDS["contact:sean"], SEED_IDS["contact:maria"]
    pairs = [
        {"contactCRMId": ghost_contact, "companyCRMId": SEED_IDS["account:contoso"]},
        {"contactCRMId": sean, "companyCRMId": ghost_company},
        {"contactCRMId": maria, "companyCRMId": SEED_IDS["account:contoso"]},
        {"contactCRMId": maria, "companyCRMId": SEED_IDS["account:fabrikam"]},
        {"contactCRMId": "not-a-guid", "companyCRMId": SEED_IDS["account:fabrikam"]},
    ]
    body = stack.call("POST", "associations", {"associations": pairs}).json
    # Told at once, per pair: ids that are not in Dynamics (and not ours on their way) are errors, and
    # Maria ends under Fabrikam, so her two pairs create one link.
    assert body["success"] is True and body["created"] == 1
    assert body["errors"] == [
        {"contactCRMId": ghost_contact, "companyCRMId": SEED_IDS["account:contoso"], "error": "Contact not found"},
        {"contactCRMId": sean, "companyCRMId": ghost_company, "error": "Company not found"},
        {"contactCRMId": "not-a-guid", "companyCRMId": SEED_IDS["account:fabrikam"], "error": "Contact not found"},
    ]
    stack.drain()
    ledger = stack.services.ledger
    ghost = ledger.get(stack.workspace_id, "association", "associate", f"{ghost_contact}>{SEED_IDS['account:contoso']}")
    assert ghost is None  # nothing was queued for it
    assert stack.sandbox.store.get("contact", sean)["_parentcustomerid_value"] == SEED_IDS["account:obrien"]
    assert stack.sandbox.store.get("contact", maria)["_parentcustomerid_value"] == SEED_IDS["account:fabrikam"]
    replaced = ledger.get(stack.workspace_id, "association", "associate", f"{maria}>{SEED_IDS['account:contoso']}")
    assert replaced is not None and replaced.status == "skipped" and "replaced" in (replaced.message or "")


def test_a_lead_workspace_writes_leads_with_their_parent_account(stack: Any) -> None:
    from shared.domain.mappings import WorkspaceCreate

    workspace, key = stack.services.store.create_workspace(
        WorkspaceCreate(name="Leads", environment_url=stack.sandbox.url, contact_entity="lead"), "tests"
    )
    headers = {"X-API-Key": key}
    existing = {"externalId": "lena", "email": "LENA@northwind.example", "lastName": "Lead", "title": "Buyer"}
    new = {"externalId": "nora", "email": "nora@northwind.example", "lastName": "New", "company": "Northwind Traders"}
    sync = stack.call("POST", "contacts/sync", {"contacts": [existing, new]}, headers=headers).json["results"]
    assert [r["crmId"] for r in sync] == [SEED_IDS["lead:1"]]
    ids = {
        r["externalId"]: r["crmId"]
        for r in stack.call("POST", "contacts", {"contacts": [existing, new]}, headers=headers).json["results"]
    }
    pairs = [{"contactCRMId": ids["nora"], "companyCRMId": SEED_IDS["account:contoso"]}]
    stack.call("POST", "associations", {"associations": pairs}, headers=headers)
    stack.drain()
    leads = {r["leadid"]: r for r in stack.rows("lead")}
    assert leads[SEED_IDS["lead:1"]]["jobtitle"] == "Buyer"
    nora = leads[ids["nora"]]
    assert nora["companyname"] == "Northwind Traders"
    assert nora["_parentaccountid_value"] == SEED_IDS["account:contoso"]
    assert not [r for r in stack.rows("contact") if r.get("emailaddress1") == "nora@northwind.example"]
    assert stack.services.ledger.get(workspace.id, "contact", "create", "nora").status == "created"


def test_extra_fields_and_employee_count_alias_reach_their_columns(stack: Any) -> None:
    _set_section(
        stack,
        "export",
        {
            "contact": {
                "fields": [
                    {"source": "lastName", "column": "lastname"},
                    {"source": "email", "column": "emailaddress1"},
                    {"source": "seniorityLevel", "column": "jobtitle"},
                ]
            },
            "company": {
                "fields": [
                    {"source": "name", "column": "name"},
                    {"source": "numberOfEmployees", "column": "numberofemployees"},
                    {"source": "technologiesUsed", "column": "description"},
                ]
            },
        },
    )
    contact = {"externalId": "x1", "email": "extra@x.example", "lastName": "Extra", "seniorityLevel": "Director"}
    company = {"externalId": "k1", "name": "Initech", "employeeCount": "250", "technologiesUsed": "COBOL; TPS"}
    stack.call("POST", "contacts", {"contacts": [contact]})
    stack.call("POST", "companies", {"companies": [company]})
    stack.drain()
    assert _contact(stack, "extra@x.example")["jobtitle"] == "Director"
    initech = next(r for r in stack.rows("account") if r.get("name") == "Initech")
    assert initech["numberofemployees"] == 250 and initech["description"] == "COBOL; TPS"


def test_a_mapping_naming_a_missing_column_is_reported_as_such_not_as_an_outage(stack: Any) -> None:
    _set_section(stack, "sync", {"contact_sync_back": {"leadScore": "gd_score_missing"}})
    response = stack.call("POST", "contacts/sync", {"contacts": [{"externalId": "1", "email": "a@b.example"}]})
    assert response.status_code == 502
    assert response.json["error"] == "dynamics_rejected_query"
    assert "gd_score_missing" in response.json["message"] and "validate" in response.json["message"]
    stack.sandbox.config.error_rate_5xx = 1.0
    _set_section(stack, "sync", {})
    outage = stack.call("POST", "contacts/sync", {"contacts": [{"externalId": "1", "email": "a@b.example"}]})
    assert outage.status_code == 503 and outage.json["error"] == "dynamics_unavailable"


@pytest.mark.parametrize(
    ("section", "kind", "records", "expected"),
    [
        (  # LinkedIn OR name+company: the URL form differs, e-mail is not a rule here.
            {"contact": {"mode": "linkedin_or_name_company"}},
            "contacts",
            [
                {"externalId": "j", "linkedinUrl": "https://www.linkedin.com/in/JoseNunez", "email": "x@y.example"},
                {"externalId": "m", "email": "maria.garcia@acme.com"},
            ],
            {"j": "contact:jose"},
        ),
        (  # Domain only: a name alone does not match.
            {"company": {"mode": "domain"}},
            "companies",
            [{"externalId": "c", "domain": "http://contoso.com/"}, {"externalId": "n", "name": "Fabrikam, Inc."}],
            {"c": "account:contoso"},
        ),
        (  # Any domain extension.
            {"company": {"mode": "domain", "any_domain_extension": True}},
            "companies",
            [{"externalId": "es", "domain": "www.fabrikam.es"}],
            {"es": "account:fabrikam"},
        ),
        (  # Custom: name AND domain, both must hold.
            {
                "company": {
                    "mode": "custom",
                    "rules": [
                        {
                            "all_of": [
                                {"field": "name", "column": "name", "normaliser": "name"},
                                {"field": "domain", "column": "websiteurl", "normaliser": "domain"},
                            ]
                        }
                    ],
                }
            },
            "companies",
            [
                {"externalId": "both", "name": "FABRIKAM", "domain": "fabrikam.com"},
                {"externalId": "name-only", "name": "Contoso Ltd", "domain": "elsewhere.example"},
            ],
            {"both": "account:fabrikam"},
        ),
    ],
)
def test_identifier_modes_against_dynamics(
    stack: Any, section: dict[str, Any], kind: str, records: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    _set_section(stack, "sync", section)
    results = stack.call("POST", f"{kind}/sync", {kind: records}).json["results"]
    assert {r["externalId"]: r["crmId"] for r in results} == {k: SEED_IDS[v] for k, v in expected.items()}


def test_an_ambiguous_company_match_does_not_move_contacts_between_its_candidates(stack: Any) -> None:
    acme, acme_europe, maria = SEED_IDS["account:acme"], SEED_IDS["account:acme-europe"], SEED_IDS["contact:maria"]
    chosen = stack.call("POST", "companies", {"companies": [{"externalId": "acme", "domain": "acme.com"}]})
    assert chosen.json["results"][0]["crmId"] == acme_europe  # the most recently modified of the two
    newcomer = stack.call(
        "POST", "contacts", {"contacts": [{"externalId": "n", "email": "new@acme.com", "lastName": "New"}]}
    ).json["results"][0]["crmId"]
    pairs = [{"contactCRMId": c, "companyCRMId": acme_europe} for c in (maria, newcomer)]
    stack.call("POST", "associations", {"associations": pairs})
    stack.drain()
    assert stack.sandbox.store.get("contact", maria)["_parentcustomerid_value"] == acme  # kept
    assert stack.sandbox.store.get("contact", newcomer)["_parentcustomerid_value"] == acme_europe
    kept = stack.services.ledger.get(stack.workspace_id, "association", "associate", f"{maria}>{acme_europe}")
    assert kept is not None and kept.status == "skipped" and "passed over" in (kept.message or "")
