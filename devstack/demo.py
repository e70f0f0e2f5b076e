"""`make demo`: a realistic Genesy session against the whole local stack, then what landed in Dynamics.

Starts `LocalStack` (Azurite, the HTTPS Dataverse sandbox, its identity endpoint, the app on the local
host behind a real HTTP server), then plays what Genesy does through HTTP with the workspace key:
health and users, company and contact sync and export (existing records, an ambiguous company, a
contact with no e-mail, the same person twice in one batch), associations, an update with engagement,
tasks, activities, and campaign events (opens, clicks, replies) on the `campaign-updates` queue. Queues
are drained between steps as Service Bus would deliver them. It prints tables of the Dynamics rows and
the sync-health summary, checks its own results, and exits 0 only when everything it expected happened.

`run_session()` is the scripted session; the integration test runs it on a smaller dataset.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.dataverse_sandbox import SEED_IDS, Sandbox
from devstack.demo_data import DemoDataset, build_dataset
from devstack.local_host import DrainReport, FunctionHost
from devstack.stack import (
    DEMO_COMPANY_EXPORT_FIELD,
    DEMO_CONTACT_EXPORT_FIELD,
    DEMO_ENGAGEMENT_TEXT,
    DEMO_GENESY_OWNER_EMAIL,
    LocalStack,
)
from shared.platform.settings import Settings
from shared.services.root import Services

__all__ = ["Check", "SessionDriver", "SessionResult", "features_of", "main", "run_session"]

CAMPAIGN = "Q3 Outreach · Iberia & Ireland"
CONTACT_CHUNK = 15
_LEAD_SOURCE_WEB = 8
_INDUSTRY_BUSINESS_SERVICES = 6
_CREATED = (200, 201)  # Genesy documents both for a create


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class SessionDriver:
    """What the scripted session needs: an HTTP client on the app, a way to deliver queued messages,
    the sandbox to read Dynamics rows from, and the app's settings (queue names, ledger)."""

    api: httpx.Client
    drain: Callable[[], DrainReport]
    sandbox: Sandbox
    services: Services
    workspace_id: str
    features: frozenset[str]
    out: Callable[[str], None] = print
    admin_key: str | None = None  # the host's function key for the admin API (None: the host checks none)

    @property
    def settings(self) -> Settings:
        return self.services.settings


@dataclass
class SessionResult:
    checks: list[Check] = field(default_factory=list)
    company_ids: dict[str, str] = field(default_factory=dict)
    contact_ids: dict[str, str] = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)
    activity_ids: list[str] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)


def features_of(host: FunctionHost, settings: Settings) -> frozenset[str]:
    """Which optional parts of the session this build of the app serves (tasks, activities, campaign queue)."""
    routes = {(info.route or "").split("/")[0] for info in host.functions.values() if info.route}
    found: set[str] = {name for name in ("tasks", "activities", "webhooks") if name in routes}
    if settings.campaign_queue in host.listened_queues:
        found.add("campaign")
    return frozenset(found)


# ---------------------------------------------------------------------------------------------------------
# Rendering


def render_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)).replace("\n", " ⏎ ") for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = min(max(widths[i], len(value)), 48)

    def line(values: Sequence[str]) -> str:
        parts = [
            (v if len(v) <= widths[i] else v[: widths[i] - 1] + "…").ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = [f"\n{title}", line(list(headers)), "  ".join("─" * w for w in widths)]
    out.extend(line(row) for row in cells)
    if not cells:
        out.append("(none)")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------
# The session


class _Http:
    def __init__(self, driver: SessionDriver, result: SessionResult):
        self.driver = driver
        self.result = result

    def call(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = 200) -> Any:
        response = self.driver.api.request(method, path, json=body)
        payload: Any = None
        if response.content:
            try:
                payload = response.json()
            except ValueError:
                payload = response.text
        allowed = expect if isinstance(expect, tuple) else (expect,)
        if response.status_code not in allowed:
            self.result.check(
                f"{method} /{path} answers {expect}", False, f"got {response.status_code}: {str(payload)[:300]}"
            )
            raise _SessionAborted(f"{method} /{path} answered {response.status_code}: {str(payload)[:300]}")
        return payload


class _SessionAborted(Exception):
    pass


def _rows(sandbox: Sandbox, logical_name: str) -> list[dict[str, Any]]:
    return list(sandbox.store.rows(logical_name))


def _drain(driver: SessionDriver, result: SessionResult, step: str) -> None:
    started = time.monotonic()
    report = driver.drain()
    driver.out(f"   … delivered {report.processed} queued message(s) in {time.monotonic() - started:.1f}s")
    details = "; ".join(f"{f.queue}: {f.error[:200]}" for f in report.failures[:3])
    result.check(f"{step}: every queued message processed", report.failed == 0 and report.dead_lettered == 0, details)


def run_session(driver: SessionDriver, dataset: DemoDataset) -> SessionResult:
    """Play the Genesy session through HTTP, deliver the queues, check what landed, and build the report."""
    result = SessionResult()
    try:
        _play(driver, dataset, result)
    except _SessionAborted as exc:
        result.check("the session ran to the end", False, str(exc))
    return result


def _play(driver: SessionDriver, data: DemoDataset, result: SessionResult) -> None:
    http = _Http(driver, result)
    seed_contacts = {str(r["contactid"]) for r in _rows(driver.sandbox, "contact")}
    seed_accounts = {str(r["accountid"]) for r in _rows(driver.sandbox, "account")}
    alice = _connect(driver, data, result, http)
    _export_companies(driver, data, result, http)
    _preview_contact(driver, data, result)
    country_for = _export_contacts(driver, data, result, http)
    late = _associate(driver, data, result, http)
    _check_companies_landed(driver, data, result, seed_accounts)
    new_contact_ids = _check_contacts_landed(driver, data, result, seed_contacts, country_for, late_contact=bool(late))
    _update_with_engagement(driver, data, result, http, new_contact_ids)
    _play_optional_steps(driver, data, result, http, alice)
    _report(driver, data, result, seed_accounts, seed_contacts)
    _reconcile_after_merge(driver, result, http, sorted(new_contact_ids))


def _connect(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http) -> str:
    """Step 1, Genesy's connection test: health (with the key and a wrong one) and the owners it may pick.

    Gives the dataset's `ownerId` contacts the first user's id; returns that id (Alice Martin's)."""
    driver.out("1. Genesy connects: GET /health, GET /users")
    result.check("GET /health with the key", http.call("GET", "health").get("status") == "ok")
    unauth = driver.api.get("health", headers={"X-API-Key": "gdk_wrong_key"})
    result.check("GET /health with a wrong key answers 401", unauth.status_code == 401, str(unauth.status_code))
    users = http.call("GET", "users")
    names: dict[str, str] = {u["name"]: u["id"] for u in users}
    result.check(
        "GET /users lists the enabled Dynamics users only",
        {"Alice Martin", "Bruno Díaz", "Chloé O'Neil"} <= set(names) and "Dana Gone" not in names,
        ", ".join(sorted(names)),
    )
    alice = names.get("Alice Martin", "")
    for record in data.contacts:
        if record["externalId"] in data.owner_id_contacts:
            record["ownerId"] = alice
    return alice


def _export_companies(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http) -> None:
    """Step 2: sync the companies (only existing ones come back, each found by its rule), then export them."""
    driver.out(f"2. Companies: POST /companies/sync and POST /companies ({len(data.companies)} companies)")
    synced = http.call("POST", "companies/sync", {"companies": data.companies})["results"]
    synced_ids = {r["externalId"]: r["crmId"] for r in synced}
    for expected in data.existing_companies:
        allowed = {SEED_IDS[k] for k in expected.seed_keys}
        result.check(
            f"company sync finds {expected.external_id} by {expected.by}",
            synced_ids.get(expected.external_id) in allowed,
            str(synced_ids.get(expected.external_id)),
        )
    known = {m.external_id for m in data.existing_companies}
    result.check("company sync returns only existing companies", set(synced_ids) <= known, str(sorted(synced_ids)))
    exported = http.call("POST", "companies", {"companies": data.companies})["results"]
    result.company_ids = {r["externalId"]: r["crmId"] for r in exported}
    result.check(
        "POST /companies answers every company",
        [r["externalId"] for r in exported] == [c["externalId"] for c in data.companies],
    )
    for expected in data.existing_companies:
        result.check(
            f"existing company {expected.external_id} keeps its Dynamics id",
            result.company_ids.get(expected.external_id) == synced_ids.get(expected.external_id),
        )
    _drain(driver, result, "company export")


def _preview_contact(driver: SessionDriver, data: DemoDataset, result: SessionResult) -> None:
    """Before the export: the admin previews one contact that exists in Dynamics (`POST manage/…/preview`),
    column by column — the value in Dynamics now, the value the export would write, and the decision."""
    if not data.existing_contacts:
        return
    expected = data.existing_contacts[0]
    seed_id = SEED_IDS[expected.seed_keys[0]]
    driver.out(f"2b. The admin previews {expected.external_id}'s export: POST manage/workspaces/{{id}}/preview")
    headers = {"x-functions-key": driver.admin_key} if driver.admin_key else {}
    body = {
        "kind": "contact",
        "records": [data.contact(expected.external_id)],
        "exportValues": {DEMO_CONTACT_EXPORT_FIELD: "Ireland"},
    }
    response = driver.api.post(f"manage/workspaces/{driver.workspace_id}/preview", json=body, headers=headers)
    if response.status_code != 200:
        result.check("the admin preview answers 200", False, f"got {response.status_code}: {response.text[:300]}")
        return
    [preview] = response.json()["records"]
    match = preview["match"]
    driver.out(_preview_table(driver, expected.external_id, preview))
    seed_row = driver.sandbox.store.get("contact", seed_id) or {}
    shown = [
        c["column"]
        for c in preview["columns"]
        if c["column"] != "ownerid" and c["current"] not in (None, "") and c["current"] == seed_row.get(c["column"])
    ]
    result.check(
        f"the preview of {expected.external_id} shows the seeded contact's current values",
        match["record"] == seed_id and bool(shown),
        f"{match['decision']} {match['record']}; current values shown for {', '.join(shown) or 'no column'}",
    )


def _preview_table(driver: SessionDriver, external_id: str, preview: dict[str, Any]) -> str:
    """One previewed record as a table: each column now, what the export would write, and the decision."""
    match = preview["match"]
    rule = (match.get("rule") or {}).get("description")
    title = f"Preview of {external_id}: {match['decision']} {match['record']}" + (f" by {rule}" if rule else "")
    users = {str(u["systemuserid"]): str(u["fullname"]) for u in _rows(driver.sandbox, "systemuser")}

    def shown(column: str, value: Any) -> Any:
        return users.get(str(value), value) if column == "ownerid" else value

    rows = [
        [c["column"], shown(c["column"], c["current"]), shown(c["column"], c["value"]), c["decision"]]
        for c in preview["columns"]
    ]
    return render_table(title, ["Column", "In Dynamics now", "Export would write", "Decision"], rows)


def _export_contacts(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http) -> dict[str, str]:
    """Step 3: sync the contacts, then export them in chunks (≤100 per call; small here to show progress).

    Returns the country each contact's export chose (the chunks alternate their export value)."""
    driver.out(f"3. Contacts: POST /contacts/sync and POST /contacts ({len(data.contacts)} contacts)")
    synced = http.call("POST", "contacts/sync", {"contacts": data.contacts})["results"]
    synced_ids = {r["externalId"]: r["crmId"] for r in synced}
    for expected in data.existing_contacts:
        result.check(
            f"contact sync finds {expected.external_id} by {expected.by}",
            synced_ids.get(expected.external_id) == SEED_IDS[expected.seed_keys[0]],
            str(synced_ids.get(expected.external_id)),
        )
    country_for: dict[str, str] = {}
    choices: list[str | None] = ["Ireland", None, "France"]
    for index, start in enumerate(range(0, len(data.contacts), CONTACT_CHUNK)):
        chunk = data.contacts[start : start + CONTACT_CHUNK]
        chosen = choices[index % len(choices)]
        body: dict[str, Any] = {"contacts": chunk}
        if chosen is not None:
            body["exportValues"] = {DEMO_CONTACT_EXPORT_FIELD: chosen}
        answer = http.call("POST", "contacts", body)["results"]
        for item in answer:
            result.contact_ids[item["externalId"]] = item["crmId"]
            country_for[item["externalId"]] = chosen or "Spain"
        driver.out(f"   … exported {min(start + CONTACT_CHUNK, len(data.contacts))}/{len(data.contacts)} contacts")
    for expected in data.existing_contacts:
        result.check(
            f"existing contact {expected.external_id} keeps its Dynamics id",
            result.contact_ids.get(expected.external_id) == SEED_IDS[expected.seed_keys[0]],
        )
    first, second = data.duplicate_pair
    result.check(
        "the same person twice in one batch gets one Dynamics id",
        result.contact_ids.get(first) is not None and result.contact_ids.get(first) == result.contact_ids.get(second),
    )
    return country_for


def _associate(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http) -> dict[str, str]:
    """Step 4: link each contact to its company; with tasks served, also what Genesy does right after an export.

    Returns the ids of that early contact, task and activity (empty when tasks are not served)."""
    pairs = [
        {"contactCRMId": result.contact_ids[c], "companyCRMId": result.company_ids[k]}
        for c, k in data.company_of.items()
        if c in result.contact_ids and k in result.company_ids
    ]
    driver.out(f"4. POST /associations ({len(pairs)} contact → company links)")
    linked = http.call("POST", "associations", {"associations": pairs})
    result.check("POST /associations succeeds", linked.get("success") is True, str(linked)[:200])
    late = _right_after_export(driver, result, http) if "tasks" in driver.features else {}
    _drain(driver, result, "contact export and associations")
    if late:
        _check_right_after_export(driver, result, late)
    return late


def _check_companies_landed(
    driver: SessionDriver, data: DemoDataset, result: SessionResult, seed_accounts: set[str]
) -> None:
    """Every new company is in Dynamics, its export field set to its default."""
    accounts = {str(r["accountid"]): r for r in _rows(driver.sandbox, "account")}
    for external_id, crm_id in result.company_ids.items():
        row = accounts.get(crm_id)
        company = data.company(external_id)
        if crm_id in seed_accounts:
            continue
        result.check(f"company {external_id} was created", row is not None and row.get("name") == company["name"])
        if row is not None:
            result.check(
                f"company {external_id}: export field {DEMO_COMPANY_EXPORT_FIELD} took its default",
                row.get("industrycode") == _INDUSTRY_BUSINESS_SERVICES,
                str(row.get("industrycode")),
            )


def _check_contacts_landed(
    driver: SessionDriver,
    data: DemoDataset,
    result: SessionResult,
    seed_contacts: set[str],
    country_for: dict[str, str],
    *,
    late_contact: bool,
) -> set[str]:
    """Every new contact is in Dynamics once, with its owner, parent account and mapped values.

    `late_contact`: the contact written right after the export is in Dynamics too. Returns the new contacts' ids."""
    sandbox = driver.sandbox
    contacts = {str(r["contactid"]): r for r in _rows(sandbox, "contact")}
    new_contact_ids = set(result.contact_ids.values()) - seed_contacts
    created = [contacts[i] for i in new_contact_ids if i in contacts]
    result.check(
        "every new contact is in Dynamics exactly once",
        len(created) == len(new_contact_ids)
        and len(contacts) == len(seed_contacts) + len(new_contact_ids) + (1 if late_contact else 0),
        f"{len(created)} of {len(new_contact_ids)} new ids; {len(contacts)} rows",
    )
    owner_of = {str(u["systemuserid"]): str(u["fullname"]) for u in _rows(sandbox, "systemuser")}
    for external_id, crm_id in result.contact_ids.items():
        row = contacts.get(crm_id)
        if row is None or crm_id in seed_contacts:
            continue
        record = data.contact(external_id)
        if external_id == data.duplicate_pair[1]:
            continue  # merged into its twin: the first copy's owner stands
        _check_new_contact(data, result, external_id, record, row, owner_of, country_for[external_id])
    return new_contact_ids


def _check_new_contact(
    data: DemoDataset,
    result: SessionResult,
    external_id: str,
    record: dict[str, Any],
    row: dict[str, Any],
    owner_of: dict[str, str],
    country: str,
) -> None:
    """One created contact: its owner, its parent account, its fixed and chosen values, no invented e-mail."""
    expected_owner = _expected_owner(data, external_id)
    result.check(
        f"contact {external_id} owned by {expected_owner}",
        owner_of.get(str(row.get("_ownerid_value"))) == expected_owner,
        owner_of.get(str(row.get("_ownerid_value")), str(row.get("_ownerid_value"))),
    )
    company_id = result.company_ids.get(data.company_of.get(external_id, ""))
    if company_id:
        result.check(
            f"contact {external_id} has its company as parent account",
            row.get("_parentcustomerid_value") == company_id,
        )
    result.check(
        f"contact {external_id}: fixed lead source and chosen {DEMO_CONTACT_EXPORT_FIELD}",
        row.get("leadsourcecode") == _LEAD_SOURCE_WEB and row.get("address1_country") == country,
        f"{row.get('leadsourcecode')} / {row.get('address1_country')}",
    )
    if not record.get("email"):
        result.check(f"contact {external_id} with no e-mail was created", row.get("emailaddress1") is None)


def _expected_owner(data: DemoDataset, external_id: str) -> str:
    """Who should own a new contact: Genesy's `ownerId`, else the user mapping of `ownerEmail`, else the default."""
    if external_id in data.owner_id_contacts:
        return "Alice Martin"
    if external_id in data.owner_email_contacts:
        return "Bruno Díaz"
    return "Chloé O'Neil"


def _update_with_engagement(
    driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http, new_contact_ids: set[str]
) -> None:
    """Step 5: update the contacts that took part in the campaign (engagement set, one title changed)."""
    engaged = [e for e in data.engaged_contacts if e in result.contact_ids]
    updates = [
        {"crmId": result.contact_ids[e], "campaigns": CAMPAIGN, **({"title": "Chief Growth Officer"} if i == 0 else {})}
        for i, e in enumerate(engaged)
    ]
    driver.out(f"5. PUT /contacts: {len(updates)} contacts took part in “{CAMPAIGN}”")
    put = http.call("PUT", "contacts", {"contacts": updates})["results"]
    result.check("PUT /contacts accepted every update", all(r.get("success") for r in put), str(put)[:200])
    _drain(driver, result, "update with engagement")
    contacts = {str(r["contactid"]): r for r in _rows(driver.sandbox, "contact")}
    engaged_ids = {result.contact_ids[e] for e in engaged}
    for external_id in engaged:
        row = contacts.get(result.contact_ids[external_id], {})
        result.check(
            f"engaged contact {external_id} got the engagement field",
            row.get("description") == DEMO_ENGAGEMENT_TEXT,
            str(row.get("description")),
        )
    untouched = [i for i in new_contact_ids - engaged_ids if i in contacts]
    result.check(
        "contacts outside the campaign keep no engagement field",
        all(contacts[i].get("description") != DEMO_ENGAGEMENT_TEXT for i in untouched),
    )
    if engaged:
        result.check(
            "the update changed the job title",
            contacts.get(result.contact_ids[engaged[0]], {}).get("jobtitle") == "Chief Growth Officer",
        )
    batch = http.call("POST", "contacts/batch", {"ids": [result.contact_ids[e] for e in engaged[:3]] + ["unknown"]})
    result.check("POST /contacts/batch reads back the known ids", len(batch["results"]) == min(3, len(engaged)))


def _play_optional_steps(
    driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http, owner_id: str
) -> None:
    """Steps 6-8 (tasks, activities, campaign updates), each only when this build of the app serves it."""
    if "tasks" in driver.features:
        _tasks(driver, data, result, http, owner_id)
    else:
        driver.out("6. Tasks: not served by this build of the app — skipped")
    if "activities" in driver.features:
        _activities(driver, data, result, http, owner_id)
    else:
        driver.out("7. Activities: not served by this build of the app — skipped")
    if "campaign" in driver.features:
        _campaign_events(driver, data, result)
    else:
        driver.out("8. Campaign updates: no function listens on the campaign-updates queue in this build — skipped")
    if "campaign" in driver.features and "webhooks" in driver.features:
        _webhooks(driver, data, result)


_LONG_TITLE = (
    "Senior Vice-President of Worldwide Strategic Partnerships, Alliances, "
    "Channel Ecosystems and Business Development, Spain."
)
_LATE_SLUG = "ines-ortega-demo"


def _right_after_export(driver: SessionDriver, result: SessionResult, http: _Http) -> dict[str, str]:
    """What Genesy does next without waiting: a task and an activity for a contact just exported (not yet
    written), with a title longer than its column; then the same person again under another LinkedIn form."""
    driver.out("   Right after the export, before the worker runs: a contact with a 121-character title,")
    driver.out("   a task and an e-mail about it, and the same person again with another LinkedIn URL form")
    first = {
        "externalId": "late-ines-1",
        "firstName": "Inés",
        "lastName": "Ortega",
        "title": _LONG_TITLE,
        "linkedinUrl": f"https://es.linkedin.com/in/{_LATE_SLUG}/?originalSubdomain=es",
    }
    crm_id = http.call("POST", "contacts", {"contacts": [first]})["results"][0]["crmId"]
    task = http.call("POST", "tasks", {"subject": "Call Inés", "type": "call", "contactId": crm_id}, expect=_CREATED)
    result.check("POST /tasks for a contact not written yet is accepted (no 404)", task.get("contactId") == crm_id)
    fetched = driver.api.get(f"tasks/{task['id']}")
    result.check("GET /tasks/{id} answers for a task accepted before it is written", fetched.status_code == 200)
    email = {
        "type": "EMAIL",
        "direction": "OUTBOUND",
        "subject": "Welcome, Inés",
        "contactId": crm_id,
        "metadata": {"messageId": "demo-late-ines", "campaignName": CAMPAIGN},
    }
    activity = http.call("POST", "activities", email, expect=_CREATED)
    second = {
        "externalId": "late-ines-2",
        "firstName": "Ines",
        "lastName": "Ortega",
        "linkedinUrl": f"http://www.linkedin.com/in/{_LATE_SLUG.upper()}",
    }
    http.call("POST", "contacts", {"contacts": [second]})
    return {"contact": crm_id, "task": str(task["id"]), "activity": str(activity["id"])}


def _check_right_after_export(driver: SessionDriver, result: SessionResult, late: dict[str, str]) -> None:
    sandbox = driver.sandbox
    people = [r for r in _rows(sandbox, "contact") if _LATE_SLUG in str(r.get("gd_linkedinurl") or "").lower()]
    result.check(
        "two LinkedIn forms of one person are one Dynamics contact",
        len(people) == 1,
        f"{len(people)} rows: {[r.get('gd_linkedinurl') for r in people]}",
    )
    row = sandbox.store.get("contact", late["contact"]) if people else None
    result.check(
        "a 121-character title is cut to the column's 100 and the contact is written",
        row is not None and row.get("jobtitle") == _LONG_TITLE[:100],
        str(row.get("jobtitle") if row else None),
    )
    result.check(
        "the LinkedIn URL is stored in its canonical form",
        row is not None and row.get("gd_linkedinurl") == f"https://www.linkedin.com/in/{_LATE_SLUG}",
        str(row.get("gd_linkedinurl") if row else None),
    )
    task = sandbox.store.get("task", late["task"])
    result.check(
        "the early task landed after its contact",
        task is not None and task.get("_regardingobjectid_value") == late["contact"],
    )
    email = sandbox.store.get("email", late["activity"])
    result.check(
        "the early e-mail landed after its contact",
        email is not None and email.get("_regardingobjectid_value") == late["contact"],
    )


def _tasks(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http, owner_id: str) -> None:
    driver.out("6. Tasks: POST /tasks (3), PATCH /tasks/{id} (complete one), POST /tasks/batch")
    due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    targets = [e for e in data.engaged_contacts if e in result.contact_ids][:3]
    kinds = ["call", "email", "meeting"]
    for i, external_id in enumerate(targets):
        body = {
            "subject": f"Follow up with {data.contact(external_id).get('firstName')} ({kinds[i % 3]})",
            "description": "Step 3 of the sequence: discuss the pricing proposal",
            "type": kinds[i % 3],
            "ownerId": owner_id,
            "dueDate": (due + timedelta(days=i)).isoformat().replace("+00:00", "Z"),
            "contactId": result.contact_ids[external_id],
        }
        company = data.company_of.get(external_id)
        if company in result.company_ids:
            body["companyId"] = result.company_ids[company]
        task = http.call("POST", "tasks", body, expect=_CREATED)
        result.check(f"task for {external_id} has an id", bool(task.get("id")), str(task)[:200])
        result.check(f"task for {external_id} starts open", task.get("completed") is False)
        result.task_ids.append(str(task.get("id")))
    _drain(driver, result, "tasks")
    if not result.task_ids:
        return
    done = http.call("PATCH", f"tasks/{result.task_ids[0]}", {"completed": True})
    result.check("PATCH /tasks/{id} completes the task", done.get("completed") is True, str(done)[:200])
    fetched = http.call("GET", f"tasks/{result.task_ids[0]}")
    result.check(
        "GET /tasks/{id} shows it completed", fetched.get("completed") is True and bool(fetched.get("completedAt"))
    )
    listed = http.call("POST", "tasks/batch", {"ids": [*result.task_ids, str(uuid.uuid4())]})
    listed = listed if isinstance(listed, list) else listed.get("results", [])
    state = {t["id"]: t.get("completed") for t in listed}
    result.check(
        "POST /tasks/batch returns the tasks (unknown ids omitted) with their state",
        len(listed) == len(result.task_ids)
        and state.get(result.task_ids[0]) is True
        and all(state.get(t) is False for t in result.task_ids[1:]),
        str(state),
    )
    missing = driver.api.get(f"tasks/{uuid.uuid4()}")
    result.check("GET /tasks/{unknown} answers 404", missing.status_code == 404, str(missing.status_code))


def _activities(driver: SessionDriver, data: DemoDataset, result: SessionResult, http: _Http, owner_id: str) -> None:
    driver.out("7. Activities: POST /activities (e-mail, LinkedIn, a reply, and one sent twice)")
    targets = [e for e in data.engaged_contacts if e in result.contact_ids]
    if not targets:
        return
    who = targets[0]
    person = data.contact(who)
    crm_id = result.contact_ids[who]
    now = datetime.now(UTC).replace(microsecond=0)

    def stamp(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    activities = [
        {
            "type": "EMAIL",
            "direction": "OUTBOUND",
            "subject": "[1/3] [FROM Genesy Demo] Alice Martin",
            "body": f"<p>Hola {person.get('firstName')}, ¿hablamos el jueves?</p>",
            "ownerId": owner_id,
            "occurredAt": stamp(90),
            "contactId": crm_id,
            "metadata": {
                "messageId": "demo-email-1",
                "campaignName": CAMPAIGN,
                "sequenceIndex": 1,
                "sequenceMessageCount": 3,
            },
        },
        {
            "type": "LINKEDIN",
            "direction": "OUTBOUND",
            "subject": "[2/3] [FROM Genesy Demo] Alice Martin",
            "body": "Thanks for connecting — a quick question about your team's roadmap.",
            "ownerId": owner_id,
            "occurredAt": stamp(60),
            "contactId": crm_id,
            "metadata": {
                "messageId": "demo-li-1",
                "campaignName": CAMPAIGN,
                "sequenceIndex": 2,
                "sequenceMessageCount": 3,
            },
        },
        {
            "type": "EMAIL",
            "direction": "INBOUND",
            "subject": f"[{person.get('company')}] {person.get('firstName')} {person.get('lastName')}",
            "body": "<div>¡Gracias! Thursday works for me.</div>",
            "occurredAt": stamp(30),
            "contactId": crm_id,
            "metadata": {
                "messageId": "demo-email-reply-1",
                "campaignName": CAMPAIGN,
                "sequenceIndex": 1,
                "sequenceMessageCount": 3,
            },
        },
    ]
    ids: list[str] = []
    for activity in activities:
        answer = http.call("POST", "activities", activity, expect=_CREATED)
        result.check(f"activity {activity['type']} {activity['direction']} has an id", bool(answer.get("id")))
        ids.append(str(answer.get("id")))
    again = http.call("POST", "activities", activities[1], expect=_CREATED)
    result.check(
        "the same activity sent twice gets the same id", again.get("id") == ids[1], f"{again.get('id')} vs {ids[1]}"
    )
    result.check("three distinct activities", len(set(ids)) == 3)
    result.activity_ids = ids
    _drain(driver, result, "activities")


def _campaign_events(driver: SessionDriver, data: DemoDataset, result: SessionResult) -> None:
    from shared.domain.campaign import CampaignEvent
    from shared.messaging.queue import OutgoingMessage
    from shared.services.campaign import campaign_message

    engaged = [e for e in data.engaged_contacts if e in result.contact_ids]
    driver.out(f"8. Campaign updates: sequence, steps, opens, clicks, replies for {len(engaged)} contacts")
    script = _CampaignScript(
        driver.workspace_id, result.contact_ids, datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    )
    messages = [campaign_message(CampaignEvent.model_validate(body)) for body in script.play(engaged)]
    # A publisher retry of an open (same event id, new message id past duplicate detection) counts once.
    if engaged:
        duplicate = next(m for m in messages if m.body["event"] == "open")
        messages.append(OutgoingMessage(dict(duplicate.body), duplicate.session_id, str(uuid.uuid4())))
    driver.services.sender.send(driver.settings.campaign_queue, messages)
    driver.out(f"   … sent {len(messages)} messages to {driver.settings.campaign_queue}")
    _drain(driver, result, "campaign updates")
    _check_campaign_values(driver, result, engaged)


def _webhook_bodies(contact: str, crm_id: str, email: Any, at: datetime) -> list[dict[str, Any]]:
    """An EMAIL_SENT at step 3 of 3 naming the contact by CRM id, then a reply naming it by e-mail."""
    person = {"email": email} if email else {"crmId": crm_id}
    return [
        {
            "eventType": "EMAIL_SENT",
            "eventId": f"demo-webhook:{contact}:sent",
            "timestamp": at.isoformat(),
            "contact": {"crmId": crm_id},
            "campaign": {"id": 42, "name": CAMPAIGN},
            "step": 3,
            "totalSteps": 3,
        },
        {
            "eventType": "MESSAGE_REPLIED",
            "eventId": f"demo-webhook:{contact}:reply",
            "timestamp": (at + timedelta(hours=2)).isoformat(),
            "contact": person,
            "campaign": {"id": 42, "name": CAMPAIGN},
            "channel": "EMAIL",
        },
    ]


def _webhooks(driver: SessionDriver, data: DemoDataset, result: SessionResult) -> None:
    """8b. Genesy's webhooks: the admin issues a secret, Genesy delivers an EMAIL_SENT at step 3 of 3 (the
    contact named by its CRM id) and a MESSAGE_REPLIED (named by e-mail) for an engaged contact."""
    engaged = [e for e in data.engaged_contacts if e in result.contact_ids]
    if not engaged:
        return
    contact = engaged[1] if len(engaged) > 1 else engaged[0]
    crm_id = result.contact_ids[contact]
    email = data.contact(contact).get("email")
    driver.out(f"8b. Genesy webhooks: a secret, then EMAIL_SENT (step 3 of 3) and MESSAGE_REPLIED for {contact}")
    admin = {"x-functions-key": driver.admin_key} if driver.admin_key else {}
    issued = driver.api.post(f"manage/workspaces/{driver.workspace_id}/webhook-secret", headers=admin)
    if not result.check("the admin issues a webhook secret (201)", issued.status_code == 201, issued.text[:300]):
        return
    secret, path = issued.json()["secret"], issued.json()["url_path"].removeprefix("/api/")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    deliveries = _webhook_bodies(contact, crm_id, email, at)
    statuses = []
    for body in deliveries:
        response = driver.api.post(path, json=body, headers={"X-Webhook-Secret": secret})
        statuses.append(f"{response.status_code} {response.json().get('status') if response.content else ''}")
    result.check("both webhook deliveries are accepted and processed", statuses == ["202 processed"] * 2, str(statuses))
    _drain(driver, result, "webhooks")
    row = next((r for r in _rows(driver.sandbox, "contact") if str(r["contactid"]) == crm_id), {})
    status, reply = str(row.get("gd_campaign_status") or ""), str(row.get("gd_campaign_reply_analysis") or "")
    result.check(f"{contact}: the webhooks' reply shows in the engagement status", status == "Replied", status)
    result.check(f"{contact}: the webhooks' reply is analysed after step 3", "after step 3" in reply, reply)
    listed = driver.api.get(f"manage/workspaces/{driver.workspace_id}/webhook-deliveries", headers=admin)
    processed = [d for d in listed.json().get("deliveries", []) if d["status"] == "processed"]
    result.check("the admin lists both webhook deliveries as processed", len(processed) == 2, listed.text[:300])


@dataclass
class _CampaignScript:
    """The campaign events the demo publishes for its engaged contacts, as event bodies in publishing order."""

    workspace_id: str
    contact_ids: dict[str, str]
    start: datetime
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def play(self, engaged: Sequence[str]) -> list[dict[str, Any]]:
        """Every contact starts the sequence and reaches step 2 (with a late step 1); every other one opens
        and clicks; the first one replies."""
        for i, contact in enumerate(engaged):
            self.event(contact, "sequence", 0)
            self.event(contact, "step", 1, step=1)
            self.event(contact, "sent", 1, step=1, channel="EMAIL")
            self.event(contact, "step", 24, step=2)
            self.event(contact, "step", 2, step=1)  # late: must not roll the step back
            if i % 2 == 0:
                self.event(contact, "open", 3, url=None)
                self.event(contact, "open", 26)
                self.event(contact, "click", 27, url="https://genesy.example/pricing")
            if i == 0:
                self.event(contact, "reply", 30, channel="EMAIL")
        return self.bodies

    def event(self, contact: str, kind: str, hours: int, step: int | None = None, **detail: Any) -> None:
        body: dict[str, Any] = {
            "version": 1,
            "workspace_id": self.workspace_id,
            "contact_id": self.contact_ids[contact],
            "campaign": CAMPAIGN,
            "event": kind,
            "occurred_at": (self.start + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
            "event_id": f"demo:{contact}:{kind}:{hours}",
            "detail": detail,
        }
        if step is not None:
            body["step"] = step
        if kind == "sequence":
            body["step_count"] = 3
        self.bodies.append(body)


def _check_campaign_values(driver: SessionDriver, result: SessionResult, engaged: list[str]) -> None:
    """Opens counted once per event, the status never rolled back (or showing the reply), the reply analysed."""
    contacts = {str(r["contactid"]): r for r in _rows(driver.sandbox, "contact")}
    for i, contact in enumerate(engaged):
        row = contacts.get(result.contact_ids[contact], {})
        opens = "2" if i % 2 == 0 else "0"
        result.check(
            f"{contact}: campaign opens counted once per event",
            str(row.get("gd_campaign_opens")) == opens,
            str(row.get("gd_campaign_opens")),
        )
        status = str(row.get("gd_campaign_status") or "")
        if i == 0:
            result.check(f"{contact}: engagement status shows the reply", status == "Replied", status)
        else:
            result.check(f"{contact}: engagement status is step 2 of 3 (no roll-back)", status == "Step 2 of 3", status)
    if engaged:
        reply = str(contacts.get(result.contact_ids[engaged[0]], {}).get("gd_campaign_reply_analysis") or "")
        result.check("the reply is in the reply analysis", bool(reply), reply)


# ---------------------------------------------------------------------------------------------------------
# Report


def _report(
    driver: SessionDriver, data: DemoDataset, result: SessionResult, seed_accounts: set[str], seed_contacts: set[str]
) -> None:
    sandbox = driver.sandbox
    users = {str(u["systemuserid"]): str(u["fullname"]) for u in _rows(sandbox, "systemuser")}
    accounts = {str(r["accountid"]): r for r in _rows(sandbox, "account")}
    contacts = {str(r["contactid"]): r for r in _rows(sandbox, "contact")}
    result.report.append(_companies_table(data, result, accounts, users, seed_accounts))
    result.report.append(_contacts_table(data, result, accounts, contacts, users, seed_contacts))
    if "campaign" in driver.features:
        result.report.append(_campaign_table(data, result, contacts))
    if result.task_ids:
        result.report.append(_tasks_table(sandbox, result.task_ids, users))
    if result.activity_ids:
        _report_activities(sandbox, result)
    _report_health(driver, result)


_Rows = dict[str, dict[str, Any]]  # Dynamics rows by id


def _companies_table(
    data: DemoDataset, result: SessionResult, accounts: _Rows, users: dict[str, str], seed_accounts: set[str]
) -> str:
    """The exported companies as Dynamics holds them, each matched (and by what) or created."""
    by_company = {m.external_id: m for m in data.existing_companies}
    company_rows = []
    for external_id, crm_id in result.company_ids.items():
        row = accounts.get(crm_id, {})
        outcome = f"matched ({by_company[external_id].by})" if crm_id in seed_accounts else "created"
        company_rows.append(
            [
                data.company(external_id)["name"],
                row.get("name"),
                outcome,
                users.get(str(row.get("_ownerid_value"))),
                row.get("websiteurl"),
                row.get("industrycode"),
            ]
        )
    return render_table(
        "Companies in Dynamics",
        ["Genesy name", "Dynamics name", "Result", "Owner", "Website", "Industry"],
        company_rows,
    )


def _contacts_table(
    data: DemoDataset,
    result: SessionResult,
    accounts: _Rows,
    contacts: _Rows,
    users: dict[str, str],
    seed_contacts: set[str],
) -> str:
    """The exported contacts as Dynamics holds them, each matched, merged or created (and updated)."""
    updated = {result.contact_ids[e] for e in data.engaged_contacts if e in result.contact_ids}
    by_contact = {m.external_id: m for m in data.existing_contacts}
    contact_rows = []
    shown: set[str] = set()
    for external_id, crm_id in result.contact_ids.items():
        row = contacts.get(crm_id, {})
        if crm_id in seed_contacts:
            match = by_contact.get(external_id)
            outcome = f"matched ({match.by})" if match is not None else "matched"
        else:
            outcome = "merged (same person in the batch)" if crm_id in shown else "created"
        if crm_id in updated and crm_id not in shown:
            outcome += " + updated"
        shown.add(crm_id)
        parent = accounts.get(str(row.get("_parentcustomerid_value")), {}).get("name")
        contact_rows.append(
            [
                f"{row.get('firstname') or ''} {row.get('lastname') or ''}".strip(),
                row.get("emailaddress1") or "—",
                outcome,
                users.get(str(row.get("_ownerid_value"))),
                parent,
                row.get("jobtitle"),
                row.get("address1_country"),
            ]
        )
    return render_table(
        "Contacts in Dynamics",
        ["Name", "E-mail", "Result", "Owner", "Parent account", "Title", "Country"],
        contact_rows,
    )


def _campaign_table(data: DemoDataset, result: SessionResult, contacts: _Rows) -> str:
    """The campaign values each engaged contact's columns hold."""
    campaign_rows = []
    for external_id in data.engaged_contacts:
        row = contacts.get(result.contact_ids.get(external_id, ""), {})
        campaign_rows.append(
            [
                f"{row.get('firstname')} {row.get('lastname')}",
                row.get("gd_campaign_sequence"),
                row.get("gd_campaign_status"),
                row.get("gd_campaign_opens"),
                row.get("gd_campaign_clicks"),
                row.get("gd_campaign_reply_analysis"),
            ]
        )
    return render_table(
        "Campaign values (contact columns)",
        ["Contact", "Sequence", "Status", "Opens", "Clicks", "Replies"],
        campaign_rows,
    )


def _tasks_table(sandbox: Sandbox, task_ids: list[str], users: dict[str, str]) -> str:
    tasks = {str(r.get("activityid")): r for r in _rows(sandbox, "task")}
    return render_table(
        "Tasks",
        ["Subject", "Due", "State", "Owner"],
        [
            [
                t.get("subject"),
                t.get("scheduledend"),
                "completed" if t.get("statecode") == 1 else "open",
                users.get(str(t.get("_ownerid_value"))),
            ]
            for t in (tasks.get(i, {}) for i in task_ids)
        ],
    )


def _report_activities(sandbox: Sandbox, result: SessionResult) -> None:
    """The activities as logged on the Dynamics timeline (as e-mails or tasks); each must be there."""
    logged = {str(r.get("activityid")): ("e-mail", r) for r in _rows(sandbox, "email")}
    logged.update({str(r.get("activityid")): ("task", r) for r in _rows(sandbox, "task")})
    activity_rows = []
    for activity_id in result.activity_ids:
        table, row = logged.get(activity_id, ("missing", {}))
        activity_rows.append([table, row.get("subject"), row.get("actualend") or row.get("createdon")])
    result.report.append(
        render_table("Activities (Dynamics timeline)", ["Logged as", "Subject", "When"], activity_rows)
    )
    result.check("every activity is in Dynamics", all(r[0] != "missing" for r in activity_rows))


def _admin(driver: SessionDriver, path: str, body: Any = None) -> httpx.Response:
    headers = {"x-functions-key": driver.admin_key} if driver.admin_key else {}
    return driver.api.post(f"manage/workspaces/{driver.workspace_id}/{path}", json=body or {}, headers=headers)


def _reconcile_after_merge(driver: SessionDriver, result: SessionResult, http: _Http, new_ids: list[str]) -> None:
    """9. A sales user merges two exported contacts in Dynamics; the next reconciliation run makes the merged
    one's crmId an alias of the survivor, so Genesy's later update with the old id lands on the survivor."""
    if len(new_ids) < 2:
        return
    survivor, merged = new_ids[0], new_ids[1]
    driver.out("9. Reconciliation: a sales user merges two exported contacts in Dynamics")
    first = _admin(driver, "reconcile")
    if not result.check("the reconcile route answers 200", first.status_code == 200, first.text[:300]):
        return
    checked = first.json()["verification"]
    driver.out(f"   … first run: change tracking started; {checked['checked']} ledger rows verified in Dynamics, "
               f"{checked['missing']} missing")
    result.check("verification finds every exported record in Dynamics",
                 checked["checked"] > 0 and checked["missing"] == 0, str(checked))
    sandbox = driver.sandbox
    token = sandbox.mint_token()
    with httpx.Client(base_url=f"{sandbox.url}/api/data/v9.2/", verify=sandbox.ssl_context(),
                      headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as dynamics:
        merge = dynamics.post("Merge", json={
            "Target": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": survivor},
            "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": merged},
            "PerformParentingChecks": False,
        })
    result.check("Dynamics merges the two contacts", merge.status_code == 204, merge.text[:300])
    run = _admin(driver, "reconcile").json()
    contact = run.get("changes", {}).get("tables", {}).get(driver.services.workspace(driver.workspace_id)
                                                            .contact.logical_name, {})
    driver.out(f"   … reconcile: {contact.get('merged', 0)} merged, {contact.get('deleted', 0)} deleted, "
               f"{run.get('dataverse_requests')} Dataverse requests of a budget of {run.get('request_budget')}")
    result.check("reconciliation sees the merge", contact.get("merged") == 1, str(contact))
    result.check("reconciliation stays within its request budget",
                 int(run.get("dataverse_requests") or 0) <= int(run.get("request_budget") or 0), str(run)[:300])
    put = http.call("PUT", "contacts", {"contacts": [{"crmId": merged, "title": "Head of Merged Records"}]})
    _drain(driver, result, "update after a merge")
    row = sandbox.store.get("contact", survivor) or {}
    result.check("Genesy's update with the merged contact's crmId lands on the survivor",
                 bool(put["results"][0]["success"]) and row.get("jobtitle") == "Head of Merged Records",
                 f"{put['results'][0]}; survivor's jobtitle {row.get('jobtitle')!r}")


def _report_health(driver: SessionDriver, result: SessionResult) -> None:
    """The ledger's counts and the records needing attention; no record may have failed."""
    health = driver.services.ledger.summary(driver.workspace_id)
    result.health = health
    count_rows = [
        [kind, status, n]
        for kind, statuses in sorted(health["counts"].items())
        for status, n in sorted(statuses.items())
    ]
    result.report.append(render_table("Sync health (ledger)", ["Kind", "Status", "Records"], count_rows))
    attention = [
        [a["kind"], a["key"], a["status"], a.get("code"), (a.get("message") or "")[:60]] for a in health["attention"]
    ]
    result.report.append(render_table("Needs attention", ["Kind", "Key", "Status", "Code", "Reason"], attention))
    failed = sum(statuses.get("failed", 0) for statuses in health["counts"].values())
    result.check("the ledger shows no failed record", failed == 0, str(health["attention"][:3]))


# ---------------------------------------------------------------------------------------------------------
# Entry point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play a Genesy session against the local stack.")
    parser.add_argument("--companies", type=int, default=14)
    parser.add_argument("--contacts", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="Dataverse sandbox latency per request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()

    def say(line: str) -> None:
        print(line, flush=True)

    say("genesy-dynamics demo — a Genesy session against the local stack (Ctrl-C stops it)")
    try:
        from devstack.dataverse_sandbox import SandboxConfig

        with LocalStack(
            sandbox_config=SandboxConfig(latency_ms=args.latency_ms), progress=lambda s: say(f"·  {s}")
        ) as stack:
            base_url = stack.serve_http(0)
            say(f"·  app listening on {base_url} (workspace {stack.workspace.name!r})\n")
            dataset = build_dataset(args.companies, args.contacts, owner_email=DEMO_GENESY_OWNER_EMAIL)
            with httpx.Client(base_url=base_url, headers=stack.api_headers, timeout=60.0) as api:
                driver = SessionDriver(
                    api=api,
                    drain=stack.host.drain,
                    sandbox=stack.sandbox,
                    services=stack.services,
                    workspace_id=stack.workspace.id,
                    features=features_of(stack.host, stack.settings),
                    out=say,
                    admin_key=stack.admin_key,
                )
                result = run_session(driver, dataset)
            for block in result.report:
                say(block)
    except KeyboardInterrupt:
        say("\ninterrupted — the stack was stopped")
        return 130
    except Exception as exc:
        say(f"\nthe demo could not run: {type(exc).__name__}: {exc}")
        return 2
    passed = sum(c.ok for c in result.checks)
    say(f"\n{passed}/{len(result.checks)} checks passed in {time.monotonic() - started:.1f}s")
    if not result.ok:
        say("These did not happen as expected:")
        for check in result.failures:
            say(f"  ✗ {check.name}" + (f" — {check.detail}" if check.detail else ""))
        return 1
    say("Everything the demo expected landed in Dynamics. The stack is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
