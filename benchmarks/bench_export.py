"""Export throughput, end to end: Genesy calls → HTTP functions → queue → writes worker → Dataverse sandbox.

Exports `--companies` companies and `--contacts` contacts (generated; `--existing` of each already in the
sandbox, so they are matched, not created) in calls of 100, then links every contact to its company
(`POST /associations`, 100 pairs per call), with the sandbox answering every Dataverse request after
`--latency-ms`. HTTP goes through the local host's in-process `host.http()` (the app's own handlers,
no socket); the pump delivers the `genesy-writes` queue meanwhile, as Service Bus would.

Prints one JSON line: Dataverse requests per contact (sandbox counters), wall time, peak RSS (this
process, sandbox included), duplicates (sandbox contacts sharing an e-mail / accounts sharing a domain,
among groups holding a row we created — must be 0), records failed (ledger + dead letters), and the
requests by route so a miss can be traced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from benchmarks.common import emit, machine, peak_rss_mb, routes_summary
from devstack.dataverse_sandbox import SEED_IDS, SandboxConfig
from devstack.demo_data import bulk_companies, bulk_contacts
from devstack.stack import LocalStack

CALL_SIZE = 100
TARGET_REQUESTS_PER_CONTACT = 0.05


def _progress(line: str) -> None:
    print(f"# bench_export: {line}", file=sys.stderr, flush=True)


def _bare(url: str) -> str:
    host = url.lower().split("://", 1)[-1].split("/", 1)[0]
    return host[4:] if host.startswith("www.") else host


def _preexisting(
    stack: LocalStack, companies: list[dict[str, Any]], contacts: list[dict[str, Any]], share: float
) -> int:
    """Insert a share of the records into the sandbox first (as if the CRM already had them)."""
    owner = f"/systemusers({SEED_IDS['user:alice']})"
    inserted = 0
    for company in companies[: int(len(companies) * share)]:
        stack.sandbox.store.insert(
            "account",
            {
                "accountid": str(uuid.uuid4()),
                "name": company["name"],
                "websiteurl": company["domain"],
                "ownerid@odata.bind": owner,
            },
        )
        inserted += 1
    for contact in contacts[: int(len(contacts) * share)]:
        stack.sandbox.store.insert(
            "contact",
            {
                "contactid": str(uuid.uuid4()),
                "firstname": contact["firstName"],
                "lastname": contact["lastName"],
                "emailaddress1": contact["email"].upper(),
                "ownerid@odata.bind": owner,
            },
        )
        inserted += 1
    return inserted


def _post(stack: LocalStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.host.http("POST", f"/api/{path}", headers=stack.api_headers, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST /{path} answered {response.status_code}: {response.get_body()[:300]!r}")
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def _duplicates(stack: LocalStack, before_contacts: set[str], before_accounts: set[str]) -> dict[str, int]:
    def extra(groups: dict[str, list[str]], ours: set[str]) -> int:
        return sum(len(ids) - 1 for ids in groups.values() if len(ids) > 1 and any(i not in ours for i in ids))

    by_email: dict[str, list[str]] = {}
    for row in stack.sandbox.store.rows("contact"):
        email = str(row.get("emailaddress1") or "").strip().lower()
        if email:
            by_email.setdefault(email, []).append(str(row["contactid"]))
    by_domain: dict[str, list[str]] = {}
    for row in stack.sandbox.store.rows("account"):
        domain = _bare(str(row.get("websiteurl") or ""))
        if domain:
            by_domain.setdefault(domain, []).append(str(row["accountid"]))
    return {"contacts": extra(by_email, before_contacts), "accounts": extra(by_domain, before_accounts)}


def _export_companies(stack: LocalStack, company_rows: list[dict[str, Any]]) -> dict[str, str]:
    """Export the companies in calls of `CALL_SIZE`; their CRM ids by external id."""
    company_ids: dict[str, str] = {}
    for start in range(0, len(company_rows), CALL_SIZE):
        for item in _post(stack, "companies", {"companies": company_rows[start : start + CALL_SIZE]})["results"]:
            company_ids[item["externalId"]] = item["crmId"]
    return company_ids


def _export_contacts(
    stack: LocalStack,
    contact_rows: list[dict[str, Any]],
    company_rows: list[dict[str, Any]],
    company_ids: dict[str, str],
    started: float,
) -> list[dict[str, str]]:
    """Export the contacts in calls of `CALL_SIZE`; the contact → company pairs to link afterwards."""
    pairs: list[dict[str, str]] = []
    by_name = {c["name"]: c["externalId"] for c in company_rows}
    for start in range(0, len(contact_rows), CALL_SIZE):
        chunk = contact_rows[start : start + CALL_SIZE]
        if start and start % (CALL_SIZE * 20) == 0:
            _progress(f"{start} contacts accepted after {time.monotonic() - started:.1f}s")
        for item, record in zip(_post(stack, "contacts", {"contacts": chunk})["results"], chunk, strict=True):
            company = by_name.get(str(record.get("company")))
            if company in company_ids:
                pairs.append({"contactCRMId": item["crmId"], "companyCRMId": company_ids[company]})
    return pairs


def _link(stack: LocalStack, pairs: list[dict[str, str]]) -> None:
    """Link every contact to its company, `CALL_SIZE` pairs per `POST /associations`."""
    for start in range(0, len(pairs), CALL_SIZE):
        _post(stack, "associations", {"associations": pairs[start : start + CALL_SIZE]})


def _wait_for_writes(stack: LocalStack, *, deadline: float) -> None:
    """Wait until the pump has delivered the whole writes queue, reporting progress meanwhile."""
    while not stack.host.wait_idle(timeout=15):
        _progress(f"  {stack.host.queue.pending()} messages queued, {stack.sandbox.counters['requests']} requests")
        if time.monotonic() > deadline:
            raise RuntimeError("the writes queue did not drain within an hour")


def run(contacts: int, companies: int, latency_ms: float, existing: float) -> dict[str, Any]:
    company_rows = bulk_companies(companies)
    contact_rows = bulk_contacts(contacts, company_rows)
    with LocalStack(
        sandbox_config=SandboxConfig(latency_ms=latency_ms), demo_mappings=False, table_prefix="bench"
    ) as stack:
        preexisting = _preexisting(stack, company_rows, contact_rows, existing)
        seeded_contacts = {str(r["contactid"]) for r in stack.sandbox.store.rows("contact")}
        seeded_accounts = {str(r["accountid"]) for r in stack.sandbox.store.rows("account")}
        _post(stack, "companies", {"companies": company_rows[:1]})  # warm-up: token, metadata, caches
        stack.host.drain()
        stack.sandbox.reset_counters()

        started = time.monotonic()
        stack.start_pump()
        company_ids = _export_companies(stack, company_rows)
        _progress(f"{len(company_rows)} companies accepted after {time.monotonic() - started:.1f}s")
        pairs = _export_contacts(stack, contact_rows, company_rows, company_ids, started)
        _link(stack, pairs)
        accepted = time.monotonic()
        _progress(f"all calls accepted in {accepted - started:.1f}s; waiting for the writes queue")
        _wait_for_writes(stack, deadline=accepted + 3600)
        finished = time.monotonic()
        pump = stack.host.stop_pump()


        health = stack.services.ledger.summary(stack.workspace.id)
        failed = sum(statuses.get("failed", 0) for statuses in health["counts"].values())
        requests = stack.sandbox.counters["requests"]
        duplicates = _duplicates(stack, seeded_contacts, seeded_accounts)
        statuses = Counter({k: v for k, v in stack.sandbox.counters.items() if k.startswith("status_")})
        return {
            "benchmark": "export",
            "transport": "in-process host.http (app handlers, no socket) + local-host pump",
            "contacts": contacts,
            "companies": companies,
            "associations": len(pairs),
            "preexisting_records": preexisting,
            "sandbox_latency_ms": latency_ms,
            "dataverse_requests": requests,
            "dataverse_requests_per_contact": round(requests / max(contacts, 1), 4),
            "target_requests_per_contact": TARGET_REQUESTS_PER_CONTACT,
            "requests_target_met": requests / max(contacts, 1) <= TARGET_REQUESTS_PER_CONTACT,
            "wall_s": round(finished - started, 2),
            "http_phase_s": round(accepted - started, 2),
            "queue_tail_s": round(finished - accepted, 2),
            "records_per_s": round((contacts + companies) / max(finished - started, 1e-9), 1),
            "peak_rss_mb": peak_rss_mb(),
            "duplicates": duplicates["contacts"] + duplicates["accounts"],
            "duplicate_detail": duplicates,
            "records_failed": failed,
            "dead_lettered": pump.dead_lettered,
            "ledger": health["counts"],
            "dataverse_statuses": dict(statuses),
            "routes": routes_summary(stack.sandbox.request_log),
            "machine": machine(),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--existing", type=float, default=0.05, help="share of records already in Dynamics")
    args = parser.parse_args(argv)
    result = run(args.contacts, args.companies, args.latency_ms, args.existing)
    emit(result)
    return 0 if result["duplicates"] == 0 and result["records_failed"] == 0 and result["dead_lettered"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
