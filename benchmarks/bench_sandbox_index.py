"""The sandbox's own cost per query as its tables grow: lookups must stay flat from 1k to 50k rows.

For each table size, fills a fresh sandbox store with contacts, then times (in process, no HTTP, so only
the sandbox's work is measured) what a long export makes it do: a matching query with
`Microsoft.Dynamics.CRM.In` over 100 e-mails, an `eq` lookup, an upsert by alternate key, and a write
followed by the same `In()` query (which used to rebuild the index over the whole table). Prints one
JSON line per size with the median microseconds of each, and a last line with the ratio 50k/1k.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.common import emit, machine
from devstack.dataverse_sandbox.api import ApiRequest, DataverseApi
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.seed import APP_USER_ID, load_seed
from devstack.dataverse_sandbox.store import Store

SIZES = (1_000, 5_000, 10_000, 50_000)
FLAT_RATIO = 3.0  # 50k rows may cost at most this many times what 1k rows cost


def _api(rows: int) -> DataverseApi:
    store = Store(APP_USER_ID)
    load_seed(store)
    for i in range(rows):
        store.insert("contact", {"firstname": f"First{i}", "lastname": f"Last{i % 977}",
                                 "emailaddress1": f"person{i}@bench.example", "gd_genesyexternalid": f"ext-{i}"})
    return DataverseApi(store, SandboxConfig(), "https://sandbox.invalid", APP_USER_ID)


def _in_filter(emails: list[str]) -> str:
    values = ",".join(json.dumps(e) for e in emails)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[{values}])"


def _get(api: DataverseApi, filter_text: str) -> int:
    req = ApiRequest("GET", "contacts", [("$filter", filter_text), ("$select", "emailaddress1")], {})
    resp = api.handle(req)
    assert resp.status == 200, resp.body[:300]
    return len(json.loads(resp.body)["value"])


def _median_us(action: Callable[[int], Any], repeats: int) -> float:
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1e6)
    return round(statistics.median(samples), 1)


def measure(rows: int, repeats: int) -> dict[str, Any]:
    api = _api(rows)
    step = max(1, rows // 100)
    emails = [f"person{i}@bench.example" for i in range(0, rows, step)][:100]
    in_filter = _in_filter(emails)
    assert _get(api, in_filter) == len(emails)  # builds the index once, outside the timing

    def write_then_query(i: int) -> None:
        body = json.dumps({"lastname": f"New{i}", "emailaddress1": f"new{i}@bench.example"}).encode()
        created = api.handle(ApiRequest("POST", "contacts", [], {}, body))
        assert created.status == 204
        _get(api, in_filter)

    def upsert_by_key(i: int) -> None:
        body = json.dumps({"jobtitle": f"Title {uuid.uuid4().hex[:6]}"}).encode()
        resp = api.handle(ApiRequest("PATCH", f"contacts(gd_genesyexternalid='ext-{(i * 7919) % rows}')", [], {},
                                     body))
        assert resp.status == 204, resp.body[:300]

    return {
        "benchmark": "sandbox_index",
        "rows": rows,
        "in_query_100_values_us": _median_us(lambda _i: _get(api, in_filter), repeats),
        "eq_query_us": _median_us(lambda i: _get(api, f"emailaddress1 eq 'person{(i * 31) % rows}@bench.example'"),
                                  repeats),
        "upsert_by_alternate_key_us": _median_us(upsert_by_key, repeats),
        "write_then_in_query_us": _median_us(write_then_query, repeats),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sandbox query cost against table size.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    results = [measure(rows, args.repeats) for rows in args.sizes]
    for result in results:
        emit(result)
    first, last = results[0], results[-1]
    keys = [k for k in first if k.endswith("_us")]
    ratios = {k: round(last[k] / max(first[k], 1e-9), 2) for k in keys}
    flat = all(r <= FLAT_RATIO for r in ratios.values())
    emit({"benchmark": "sandbox_index_summary", "from_rows": first["rows"], "to_rows": last["rows"],
          "ratio": ratios, "flat_ratio_limit": FLAT_RATIO, "flat": flat, "machine": machine()})
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
