"""Export throughput against what Dataverse's limits allow, side by side with the naive flow.

The Dataverse sandbox runs in a process of its own (Dynamics is remote) under its cost model: every
request waits the network latency plus its server execution time (`execution_sleep`), and the three
service-protection limits hold per caller (6,000 requests, 1,200 s of execution time per 300 s window,
52 concurrent). `--time-scale` shrinks every model duration alike (0.5 = twice as fast as real time);
rates are reported in *model* seconds (wall seconds / time scale), so they do not depend on it.

Phases, in one run:
1. **naive**: what a Power Automate flow or a simple connector does, implemented here directly against
   the sandbox with httpx: for each company find it, then create or update it; for each contact find the
   contact, find its account, create or update it (one request each, sequential, waiting out any 429).
2. **export**: `--companies` companies and `--contacts` contacts (a `--existing` share already in
   Dynamics) through the app exactly as `bench_export` does it (HTTP functions in the in-process local
   host, the writes worker fed by the local host's pump from the in-process queue), then every contact
   linked to its company (`POST /associations`), until the writes queue is empty.
3. **workspaces**: three workspaces of the same Dynamics environment (so the same caller and budget)
   export a third of `--shared-contacts`/`--shared-companies` each, at once; each one's share.

Prints one JSON line per phase and a summary line with `records_per_s`, `ceiling_records_per_s` (derived in
docs/benchmarks.md from the model's limits), `ratio_to_ceiling`, `naive_records_per_s`,
`speedup_vs_naive`, duplicates, failed records, 429s received, requests sent inside a Retry-After, and the
peak RSS of the process running the app and the writes worker (this one: the local host runs the app
in-process; the sandbox's own process is not counted). The sandbox's limits are reset between phases.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
import signal
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.common import emit, machine, peak_rss_mb
from devstack.dataverse_sandbox import SandboxConfig
from devstack.demo_data import bulk_companies, bulk_contacts
from devstack.sandbox_process import SandboxProcess
from devstack.stack import LocalStack
from shared.domain.odata import odata_literal

CALL_SIZE = 100
TARGETS = {"ratio_to_ceiling": 0.9, "speedup_vs_naive": 10.0, "worker_peak_rss_mb": 150.0}
Record = dict[str, Any]


def _progress(line: str) -> None:
    print(f"# bench_throughput: {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the ceiling


def ceiling(cfg: SandboxConfig, *, companies: int, contacts: int, associations: int, matched: int = 0,
            bulk_size: int = CALL_SIZE) -> dict[str, Any]:
    """What the model's limits allow for this export (docs/benchmarks.md derives it).

    The cheapest path writes every company, contact and association as one target of a bulk message of
    `bulk_size` targets, and reads once per Genesy call to match (returning the `matched` rows). The
    export then needs `exec_ms` of server time and `requests` requests; each limit gives a least time:
    execution budget E per window W → exec/(E/W); request limit R per W → requests/(R/W); concurrency C →
    (requests * latency + exec)/C. The largest is binding; ceiling = records / that time.
    """
    per_target_ms = cfg.exec_bulk_record_ms + cfg.exec_bulk_request_ms / bulk_size
    calls = math.ceil(companies / CALL_SIZE) + math.ceil(contacts / CALL_SIZE)
    bulk_requests = sum(math.ceil(n / bulk_size) for n in (companies, contacts, associations))
    exec_ms = (companies + contacts + associations) * per_target_ms + calls * cfg.exec_query_ms
    exec_ms += matched * cfg.exec_row_ms
    requests = bulk_requests + calls
    least_s = {
        "execution_time": exec_ms / 1000 / (cfg.execution_time_limit_s / cfg.request_window_s),
        "requests": requests / (cfg.request_limit / cfg.request_window_s),
        "concurrency": (requests * cfg.latency_ms + exec_ms) / 1000 / cfg.concurrency_limit,
    }
    binding = max(least_s, key=lambda name: least_s[name])
    return {
        "ceiling_records_per_s": round((companies + contacts) / least_s[binding], 1),
        "binding_limit": binding,
        "least_time_s": {k: round(v, 2) for k, v in least_s.items()},
        "min_execution_s": round(exec_ms / 1000, 2),
        "per_target_ms": per_target_ms,
    }


def naive_ceiling(cfg: SandboxConfig) -> float:
    """Contacts per second the naive flow can reach at best: three sequential requests, each a round trip."""
    per_contact_ms = 3 * cfg.latency_ms + 2 * (cfg.exec_query_ms + cfg.exec_row_ms) + cfg.exec_write_ms
    return round(1000 / per_contact_ms, 2)


# ---------------------------------------------------------------------------------------------- data


def relabel(companies: list[Record], contacts: list[Record], tag: str) -> tuple[list[Record], list[Record]]:
    """The same shapes with ids, names, domains and e-mails of their own (no record shared with another set)."""
    out_companies = []
    for company in companies:
        stem = str(company["domain"]).split("www.", 1)[-1].split(".example", 1)[0]
        out_companies.append({**company, "externalId": f"{tag}-{company['externalId']}",
                              "name": f"{company['name']} {tag}", "domain": f"https://www.{stem}-{tag}.example/"})
    names = {c["name"]: o["name"] for c, o in zip(companies, out_companies, strict=True)}
    out_contacts = []
    for contact in contacts:
        local, _, domain = str(contact["email"]).partition("@")
        relabelled = {**contact, "externalId": f"{tag}-{contact['externalId']}", "email": f"{local}@{tag}.{domain}"}
        if "company" in contact:
            relabelled["company"] = names.get(str(contact["company"]), contact["company"])
        if "linkedinUrl" in contact:
            relabelled["linkedinUrl"] = f"{contact['linkedinUrl']}-{tag}"
        out_contacts.append(relabelled)
    return out_companies, out_contacts


def _bare(url: str) -> str:
    host = url.lower().split("://", 1)[-1].split("/", 1)[0]
    return host[4:] if host.startswith("www.") else host


# ---------------------------------------------------------------------------------------------- Web API access


class WebApi:
    """An httpx client on the sandbox's Web API with a managed-identity token, waiting out every 429."""

    def __init__(self, remote: SandboxProcess) -> None:
        env = remote.env()
        token = httpx.get(env["IDENTITY_ENDPOINT"], params={"api-version": "2019-08-01", "resource": remote.url},
                          headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}, timeout=30).json()["access_token"]
        self.client = httpx.Client(
            base_url=f"{remote.url}/api/data/v9.2/", timeout=300,
            verify=ssl.create_default_context(cafile=env["DATAVERSE_CA_BUNDLE"]),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "OData-Version": "4.0"})
        self.throttled = 0

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        while True:
            response = self.client.request(method, path, **kwargs)
            if response.status_code != 429:
                if response.status_code >= 400:
                    raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
                return response
            self.throttled += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))

    def find(self, entity_set: str, column: str, value: str, key: str) -> str | None:
        params = {"$select": key, "$filter": f"{column} eq {odata_literal(value)}", "$top": "1"}
        rows = self.send("GET", entity_set, params=params).json()["value"]
        return str(rows[0][key]) if rows else None

    def close(self) -> None:
        self.client.close()


def _preexisting(api: WebApi, companies: list[Record], contacts: list[Record], share: float) -> int:
    """A share of the records already in Dynamics (as a CRM would hold them), written in bulk."""
    accounts = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": str(uuid.uuid4()),
                 "name": c["name"], "websiteurl": c["domain"]} for c in companies[: int(len(companies) * share)]]
    people = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": str(uuid.uuid4()),
               "firstname": c["firstName"], "lastname": c["lastName"], "emailaddress1": str(c["email"]).upper()}
              for c in contacts[: int(len(contacts) * share)]]
    for entity_set, targets in (("accounts", accounts), ("contacts", people)):
        for start in range(0, len(targets), 500):
            api.send("POST", f"{entity_set}/Microsoft.Dynamics.CRM.CreateMultiple",
                     json={"Targets": targets[start : start + 500]})
    return len(accounts) + len(people)


# ---------------------------------------------------------------------------------------------- phase 1: naive


def naive_flow(remote: SandboxProcess, companies: list[Record], contacts: list[Record],
               time_scale: float) -> dict[str, Any]:
    """Find then create-or-update, one request at a time: companies by name, contacts by e-mail with their
    account looked up by name (three requests per contact)."""
    api = WebApi(remote)
    try:
        started = time.monotonic()
        for company in companies:
            body = {"name": company["name"], "websiteurl": company["domain"]}
            found = api.find("accounts", "name", str(company["name"]), "accountid")
            api.send("PATCH" if found else "POST", f"accounts({found})" if found else "accounts", json=body)
        for contact in contacts:
            found = api.find("contacts", "emailaddress1", str(contact["email"]), "contactid")
            account = api.find("accounts", "name", str(contact.get("company", "")), "accountid")
            body = {"firstname": contact["firstName"], "lastname": contact["lastName"],
                    "emailaddress1": contact["email"], "jobtitle": contact.get("title")}
            if account:
                body["parentcustomerid_account@odata.bind"] = f"/accounts({account})"
            api.send("PATCH" if found else "POST", f"contacts({found})" if found else "contacts", json=body)
        model_s = (time.monotonic() - started) / time_scale
    finally:
        api.close()
    records = len(companies) + len(contacts)
    return {"phase": "naive", "companies": len(companies), "contacts": len(contacts),
            "model_s": round(model_s, 2), "naive_records_per_s": round(records / model_s, 2),
            "throttled_429": api.throttled}


# ---------------------------------------------------------------------------------------------- app exports


@dataclass
class Workspace:
    id: str
    headers: dict[str, str]


def _post(stack: LocalStack, workspace: Workspace, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.host.http("POST", f"/api/{path}", headers=workspace.headers, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST /{path} answered {response.status_code}: {response.get_body()[:300]!r}")
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def export(stack: LocalStack, workspace: Workspace, companies: list[Record], contacts: list[Record]) -> int:
    """Genesy's calls for one export: companies, contacts, then their associations (≤100 per call, as
    `bench_export` sends them). Returns the number of contacts linked (two records the app took for one
    person share an id and one association)."""
    company_ids: dict[str, str] = {}
    for start in range(0, len(companies), CALL_SIZE):
        answer = _post(stack, workspace, "companies", {"companies": companies[start : start + CALL_SIZE]})
        for item in answer["results"]:
            company_ids[item["externalId"]] = item["crmId"]
    by_name = {c["name"]: c["externalId"] for c in companies}
    pairs: list[dict[str, str]] = []
    for start in range(0, len(contacts), CALL_SIZE):
        chunk = contacts[start : start + CALL_SIZE]
        answer = _post(stack, workspace, "contacts", {"contacts": chunk})
        for item, record in zip(answer["results"], chunk, strict=True):
            company = by_name.get(str(record.get("company")))
            if company in company_ids:
                pairs.append({"contactCRMId": item["crmId"], "companyCRMId": company_ids[company]})
    for start in range(0, len(pairs), CALL_SIZE):
        _post(stack, workspace, "associations", {"associations": pairs[start : start + CALL_SIZE]})
    return len({pair["contactCRMId"] for pair in pairs})


def _ledger(stack: LocalStack, workspace_id: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = stack.services.ledger.summary(workspace_id)["counts"]
    return counts


def _final(counts: dict[str, dict[str, int]], kind: str) -> int:
    return sum(n for status, n in counts.get(kind, {}).items() if status not in ("retrying", "pending"))


def settled(counts: dict[str, dict[str, int]], expected: dict[str, int]) -> bool:
    """Every expected record has a final ledger status (written, matched, failed: anything but retrying)."""
    return all(_final(counts, kind) >= total for kind, total in expected.items())


def _baseline(stack: LocalStack, workspace_id: str) -> dict[str, int]:
    """Settled ledger rows per kind now (a workspace's ledger holds its earlier exports too)."""
    counts = _ledger(stack, workspace_id)
    return {kind: _final(counts, kind) for kind in ("company", "contact", "association")}


def _expect(baseline: dict[str, int], companies: int, contacts: int, linked: int) -> dict[str, int]:
    new = {"company": companies, "contact": contacts, "association": linked}
    return {kind: baseline[kind] + n for kind, n in new.items() if n}


def _queue_quiet(stack: LocalStack, deadline: float, poll_s: float = 0.05) -> None:
    """Wait (cheaply, in memory) until nothing is queued: reading the ledger's summary scans the workspace's
    partition, which would load Azurite while the export runs and make the end of a run a second late."""
    last_report = time.monotonic()
    while (queued := stack.host.queue.pending()) and time.monotonic() < deadline:
        if time.monotonic() - last_report > 15:
            _progress(f"  {queued} messages still queued")
            last_report = time.monotonic()
        time.sleep(poll_s)


def _wait_settled(stack: LocalStack, workspace_id: str, expected: dict[str, int], deadline: float,
                  poll_s: float = 0.1) -> None:
    last_report = time.monotonic()
    _queue_quiet(stack, deadline)
    while not settled(counts := _ledger(stack, workspace_id), expected):
        if time.monotonic() > deadline:
            raise RuntimeError(f"workspace {workspace_id} did not settle: {counts}, expected {expected}")
        if time.monotonic() - last_report > 15:
            _progress(f"  workspace {workspace_id[:8]}: ledger {counts}, expected {expected}, "
                      f"{stack.host.queue.pending()} messages queued")
            last_report = time.monotonic()
        time.sleep(poll_s)
        _queue_quiet(stack, deadline)


def _failed(counts: dict[str, dict[str, int]]) -> int:
    return sum(statuses.get("failed", 0) for statuses in counts.values())


_IDENTITY = {"contact": ("contactid", "emailaddress1", str.lower), "account": ("accountid", "websiteurl", _bare)}


def row_ids(remote: SandboxProcess) -> set[str]:
    """Ids of the contacts and accounts in the sandbox now (its seed data: not ours to judge)."""
    return {str(row[pk]) for table, (pk, _, _) in _IDENTITY.items() for row in remote.rows(table, [pk])}


def duplicates(remote: SandboxProcess, before: set[str]) -> int:
    """Extra rows among contacts sharing an e-mail and accounts sharing a domain, in groups holding a row
    written during the run (must be 0)."""
    extra = 0
    for table, (pk, column, key) in _IDENTITY.items():
        groups: dict[str, list[str]] = {}
        for row in remote.rows(table, [pk, column]):
            value = key(str(row.get(column) or "").strip())
            if value:
                groups.setdefault(value, []).append(str(row[pk]))
        extra += sum(len(ids) - 1 for ids in groups.values() if len(ids) > 1 and not set(ids) <= before)
    return extra


def _sandbox_delta(remote: SandboxProcess) -> dict[str, Any]:
    stats = remote.stats()
    return {"throttled_429": stats["throttled"]["total"], "throttled_by_code": stats["throttled"]["by_code"],
            "sent_inside_retry_after": stats["throttled"]["retried_early"],
            "dataverse_requests": stats["counters"].get("requests", 0),
            "batch_parts": stats["counters"].get("batch_parts", 0),
            "execution_s": round(stats["execution_ms"]["total"] / 1000, 2),
            "max_concurrency_seen": stats["counters"].get("max_concurrency_seen", 0),
            "execution_by_route_s": {k: round(v / 1000, 2) for k, v in
                                     sorted(stats["execution_ms"]["by_route"].items(), key=lambda kv: -kv[1])[:8]}}


def _fresh_budget(remote: SandboxProcess) -> None:
    remote.reset_limits()
    remote.reset_counters()


def export_phase(stack: LocalStack, remote: SandboxProcess, cfg: SandboxConfig, companies: list[Record],
                 contacts: list[Record], preexisting: int) -> dict[str, Any]:
    workspace = Workspace(stack.workspace.id, stack.api_headers)
    _fresh_budget(remote)
    baseline = _baseline(stack, workspace.id)
    started = time.monotonic()
    associations = export(stack, workspace, companies, contacts)
    expected = _expect(baseline, len(companies), len(contacts), associations)
    accepted = time.monotonic()
    _progress(f"export: calls accepted in {accepted - started:.1f}s wall; waiting for the writes")
    _wait_settled(stack, workspace.id, expected, deadline=accepted + 7200)
    model_s = (time.monotonic() - started) / cfg.time_scale
    counts = _ledger(stack, workspace.id)
    records = len(companies) + len(contacts)
    limit = ceiling(cfg, companies=len(companies), contacts=len(contacts), associations=associations,
                    matched=preexisting)
    rate = records / model_s
    delta = _sandbox_delta(remote)
    budget_rate = cfg.execution_time_limit_s / cfg.request_window_s
    return {"phase": "export", "companies": len(companies), "contacts": len(contacts),
            "associations": associations, "preexisting_records": preexisting, "model_s": round(model_s, 2),
            "http_phase_model_s": round((accepted - started) / cfg.time_scale, 2),
            "records_per_s": round(rate, 1), **limit,
            "ratio_to_ceiling": round(rate / limit["ceiling_records_per_s"], 3),
            "execution_budget_used": round(delta["execution_s"] / (model_s * budget_rate), 3),
            "failed": _failed(counts), "ledger": counts, **delta}


def _new_workspace(stack: LocalStack, remote: SandboxProcess, name: str) -> Workspace:
    from shared.domain.mappings import WorkspaceCreate

    created, api_key = stack.services.store.create_workspace(
        WorkspaceCreate(name=name, environment_url=remote.url), "bench")
    return Workspace(created.id, {created.key_header: api_key, "Accept": "application/json"})


def workspaces_phase(stack: LocalStack, remote: SandboxProcess, cfg: SandboxConfig, companies: int,
                     contacts: int) -> dict[str, Any]:
    """Three workspaces on one environment export at once; each one's records/s and share."""
    workspaces = [Workspace(stack.workspace.id, stack.api_headers),
                  _new_workspace(stack, remote, "Second workspace"), _new_workspace(stack, remote, "Third workspace")]
    base_companies = bulk_companies(max(1, companies // 3), seed=31, prefix="wco")
    base_contacts = bulk_contacts(max(1, contacts // 3), base_companies, seed=37, prefix="wct")
    data = [relabel(base_companies, base_contacts, f"ws{i}") for i in range(3)]
    for index, workspace in enumerate(workspaces[1:], start=1):  # warm-up: token, metadata, caches
        warm = relabel(bulk_companies(1, seed=53, prefix="warm"), [], f"warm{index}")[0]
        expected = _expect(_baseline(stack, workspace.id), 1, 0, 0)
        export(stack, workspace, warm, [])
        _wait_settled(stack, workspace.id, expected, deadline=time.monotonic() + 600)
    _fresh_budget(remote)
    baselines = [_baseline(stack, w.id) for w in workspaces]
    finished: dict[int, float] = {}
    errors: list[BaseException] = []
    started = time.monotonic()

    def run(index: int) -> None:
        try:
            own_companies, own_contacts = data[index]
            linked = export(stack, workspaces[index], own_companies, own_contacts)
            expected = _expect(baselines[index], len(own_companies), len(own_contacts), linked)
            _wait_settled(stack, workspaces[index].id, expected, deadline=time.monotonic() + 7200)
            finished[index] = time.monotonic()
        except BaseException as exc:  # reported below, after every thread ended
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"workspace-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    records = len(base_companies) + len(base_contacts)
    rates = [records / ((finished[i] - started) / cfg.time_scale) for i in range(3)]
    shares = [rate / sum(rates) for rate in rates]
    fairness = sum(rates) ** 2 / (3 * sum(r * r for r in rates))  # Jain's index: 1 = perfectly fair
    failed = sum(_failed(_ledger(stack, w.id)) for w in workspaces)
    return {"phase": "workspaces", "records_per_workspace": records,
            "model_s": round((max(finished.values()) - started) / cfg.time_scale, 2),
            "records_per_s_each": [round(r, 1) for r in rates], "share_each": [round(s, 3) for s in shares],
            "jain_fairness": round(fairness, 3), "failed": failed, **_sandbox_delta(remote)}


# ---------------------------------------------------------------------------------------------- the run


@contextmanager
def _stack(remote: SandboxProcess) -> Iterator[LocalStack]:
    with LocalStack(demo_mappings=False, table_prefix="thru", external_sandbox=remote) as stack:
        stack.start_pump()
        yield stack


def model_config(latency_ms: float, time_scale: float, cost_factor: float = 1.0,
                 window_s: float = 300.0) -> SandboxConfig:
    """The sandbox's default cost model, with `execution_sleep` on; `cost_factor` scales every operation.

    `window_s` shortens the service-protection window keeping its rates (E/W, R/W): Dataverse's 300 s
    window lets a run shorter than it spend the whole budget at once, so the sustained ceiling would not
    bind; a window a fraction of the run makes a client that outruns the rates meet its 429s in the run.
    """
    base = SandboxConfig()
    share = window_s / base.request_window_s
    return SandboxConfig(
        latency_ms=latency_ms, time_scale=time_scale, execution_sleep=True, request_window_s=window_s,
        execution_time_limit_s=base.execution_time_limit_s * share,
        request_limit=max(1, round(base.request_limit * share)),
        exec_write_ms=base.exec_write_ms * cost_factor, exec_query_ms=base.exec_query_ms * cost_factor,
        exec_row_ms=base.exec_row_ms * cost_factor, exec_bulk_request_ms=base.exec_bulk_request_ms * cost_factor,
        exec_bulk_record_ms=base.exec_bulk_record_ms * cost_factor)


@dataclass(frozen=True)
class Options:
    contacts: int = 10_000
    companies: int = 2_000
    naive_contacts: int = 100
    shared_contacts: int = 1_500
    shared_companies: int = 300
    existing: float = 0.05
    latency_ms: float = 50.0
    time_scale: float = 1.0
    cost_factor: float = 1.0
    window_s: float = 30.0
    workspaces: bool = True


def run(options: Options, report: Callable[[dict[str, Any]], None] = emit) -> dict[str, Any]:
    cfg = model_config(options.latency_ms, options.time_scale, options.cost_factor, options.window_s)
    companies = bulk_companies(options.companies)
    contacts = bulk_contacts(options.contacts, companies)
    naive_companies, naive_contacts = relabel(
        bulk_companies(max(1, options.naive_contacts // 5), seed=41, prefix="nco"),
        bulk_contacts(options.naive_contacts, [], seed=43, prefix="nct"), "naive")
    for index, contact in enumerate(naive_contacts):
        contact["company"] = naive_companies[index % len(naive_companies)]["name"]
    remote = SandboxProcess(config=cfg)
    try:
        seeded = row_ids(remote)
        setup = WebApi(remote)
        preexisting = _preexisting(setup, companies, contacts, options.existing)
        setup.close()
        _fresh_budget(remote)
        _progress(f"naive flow: {len(naive_companies)} companies, {len(naive_contacts)} contacts")
        naive = naive_flow(remote, naive_companies, naive_contacts, cfg.time_scale)
        report(naive)
        with _stack(remote) as stack:
            _progress(f"export: {len(companies)} companies, {len(contacts)} contacts through the app")
            exported = export_phase(stack, remote, cfg, companies, contacts, preexisting)
            report(exported)
            shared = None
            if options.workspaces:
                _progress("three workspaces at once")
                shared = workspaces_phase(stack, remote, cfg, options.shared_companies, options.shared_contacts)
                report(shared)
            dead_lettered = stack.host.stop_pump().dead_lettered
        # The worker's peak, taken before this benchmark reads every sandbox row to count duplicates.
        worker_rss = peak_rss_mb()
        dupes = duplicates(remote, seeded)
    finally:
        remote.stop()
    summary = {
        "benchmark": "throughput",
        "model": {"latency_ms": cfg.latency_ms, "time_scale": cfg.time_scale, "cost_factor": options.cost_factor,
                  "exec_write_ms": cfg.exec_write_ms, "exec_query_ms": cfg.exec_query_ms,
                  "exec_row_ms": cfg.exec_row_ms, "exec_bulk_request_ms": cfg.exec_bulk_request_ms,
                  "exec_bulk_record_ms": cfg.exec_bulk_record_ms,
                  "execution_time_limit_s": cfg.execution_time_limit_s, "request_limit": cfg.request_limit,
                  "window_s": cfg.request_window_s, "concurrency_limit": cfg.concurrency_limit,
                  "dop_hint": cfg.dop_hint},
        "contacts": options.contacts, "companies": options.companies,
        "records_per_s": exported["records_per_s"],
        "ceiling_records_per_s": exported["ceiling_records_per_s"],
        "binding_limit": exported["binding_limit"],
        "ratio_to_ceiling": exported["ratio_to_ceiling"],
        "naive_records_per_s": naive["naive_records_per_s"],
        "naive_ceiling_records_per_s": naive_ceiling(cfg),
        "speedup_vs_naive": round(exported["records_per_s"] / naive["naive_records_per_s"], 2),
        "duplicates": dupes,
        "failed": exported["failed"] + (shared["failed"] if shared else 0),
        "dead_lettered": dead_lettered,
        "throttled_429": exported["throttled_429"] + (shared["throttled_429"] if shared else 0),
        "sent_inside_retry_after": exported["sent_inside_retry_after"]
        + (shared["sent_inside_retry_after"] if shared else 0),
        "worker_peak_rss_mb": worker_rss,
        "worker_process": "this benchmark process: the local host runs the app's HTTP functions and the writes "
                          "worker in-process; the sandbox runs in its own process and is not counted",
        "workspace_shares": shared["share_each"] if shared else None,
        "workspace_fairness": shared["jain_fairness"] if shared else None,
        "targets": TARGETS,
        "machine": machine(),
    }
    report(summary)
    return summary


def _options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = Options()
    parser.add_argument("--contacts", type=int, default=defaults.contacts)
    parser.add_argument("--companies", type=int, default=defaults.companies)
    parser.add_argument("--naive-contacts", type=int, default=defaults.naive_contacts)
    parser.add_argument("--shared-contacts", type=int, default=defaults.shared_contacts,
                        help="contacts exported by the three workspaces together (a third each)")
    parser.add_argument("--shared-companies", type=int, default=defaults.shared_companies)
    parser.add_argument("--existing", type=float, default=defaults.existing, help="share already in Dynamics")
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--time-scale", type=float, default=defaults.time_scale,
                        help="wall seconds per model second (0.5 runs twice as fast)")
    parser.add_argument("--cost-factor", type=float, default=defaults.cost_factor,
                        help="multiplies every per-operation execution time of the model")
    parser.add_argument("--window-s", type=float, default=defaults.window_s,
                        help="service-protection window (model s), limits scaled to keep Dataverse's rates")
    parser.add_argument("--no-workspaces", action="store_true", help="skip the three-workspace phase")
    args = parser.parse_args(argv)
    return Options(args.contacts, args.companies, args.naive_contacts, args.shared_contacts, args.shared_companies,
                   args.existing, args.latency_ms, args.time_scale, args.cost_factor, args.window_s,
                   not args.no_workspaces)


def main(argv: Sequence[str] | None = None) -> int:
    if "MALLOC_ARENA_MAX" not in os.environ:
        # Run the worker as deployed: infra sets MALLOC_ARENA_MAX=2 for the function app (glibc reads it at
        # process start, so the benchmark starts itself again with it).
        args = [sys.executable, "-m", "benchmarks.bench_throughput", *(sys.argv[1:] if argv is None else argv)]
        os.execve(sys.executable, args, {**os.environ, "MALLOC_ARENA_MAX": "2"})  # noqa: S606
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack (a long run stuck?)
    summary = run(_options(argv))
    clean = summary["duplicates"] == 0 and summary["failed"] == 0 and summary["dead_lettered"] == 0
    return 0 if clean and summary["sent_inside_retry_after"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
