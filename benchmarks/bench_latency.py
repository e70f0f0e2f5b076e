"""Handler latency of `POST /contacts` (100 contacts per call) with the sandbox answering after 20 ms.

Measures what Genesy waits for: validation, the key check, the one batched matching query against
Dynamics and the enqueue — over real HTTP (the local host behind uvicorn, httpx keep-alive client).
Each call exports 100 new contacts (distinct e-mails); the queue is drained between calls, outside the
timed window. Prints one JSON line with p50/p95/p99 in ms (target p95 ≤ 150 ms). The sandbox runs in a
process of its own, as Dynamics is remote (`--sandbox-in-process` puts it in this one, where its CPU
competes with the handler for the GIL).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from benchmarks.common import emit, machine, peak_rss_mb, percentile, routes_summary
from devstack.dataverse_sandbox import SandboxConfig
from devstack.demo_data import bulk_companies, bulk_contacts
from devstack.sandbox_process import SandboxProcess
from devstack.stack import LocalStack

TARGET_P95_MS = 150.0


def run(calls: int, size: int, latency_ms: float, warmup: int, *, sandbox_process: bool = True) -> dict[str, Any]:
    companies = bulk_companies(50)
    people = bulk_contacts((calls + warmup) * size, companies)
    timings: list[float] = []
    remote = SandboxProcess(latency_ms=latency_ms) if sandbox_process else None
    stats: dict[str, Any] = {}
    try:
        with LocalStack(
            sandbox_config=SandboxConfig(latency_ms=latency_ms),
            demo_mappings=False,
            table_prefix="lat",
            external_sandbox=remote,
        ) as stack:
            base_url = stack.serve_http(0)
            with httpx.Client(base_url=base_url, headers=stack.api_headers, timeout=60) as client:
                for index in range(calls + warmup):
                    body = {"contacts": people[index * size : (index + 1) * size]}
                    started = time.perf_counter()
                    response = client.post("contacts", json=body)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise RuntimeError(f"POST /contacts answered {response.status_code}: {response.text[:300]}")
                    if index >= warmup:
                        timings.append(elapsed)
                    stack.host.drain()  # the worker runs between calls, outside the timed window
            if remote is None:
                stats = {"routes": routes_summary(r for r in stack.sandbox.request_log)}
    finally:
        if remote is not None:
            stats = remote.stop()
    p95 = percentile(timings, 95)
    return {
        "benchmark": "latency",
        "endpoint": "POST /contacts",
        "transport": "HTTP (uvicorn local host, httpx keep-alive)",
        "sandbox": "separate process" if sandbox_process else "in process (shares the GIL)",
        "contacts_per_call": size,
        "calls": calls,
        "warmup_calls": warmup,
        "sandbox_latency_ms": latency_ms,
        "p50_ms": round(percentile(timings, 50), 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(percentile(timings, 99), 1),
        "max_ms": round(max(timings), 1),
        "target_p95_ms": TARGET_P95_MS,
        "target_met": p95 <= TARGET_P95_MS,
        "dataverse_routes_incl_worker": stats.get("routes", {}),
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="POST /contacts latency percentiles.")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--sandbox-in-process", action="store_true", help="run the sandbox in this process (shares the GIL)"
    )
    args = parser.parse_args(argv)
    emit(run(args.calls, args.size, args.latency_ms, args.warmup, sandbox_process=not args.sandbox_in_process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
