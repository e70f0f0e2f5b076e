"""Shared helpers for the benchmark scripts: the machine they ran on, peak RSS, percentiles, routes."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["emit", "machine", "peak_rss_mb", "percentile", "routes_summary"]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or "unknown"
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(value / 1024 if sys.platform != "darwin" else value / (1024 * 1024), 1)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def routes_summary(records: Iterable[Any]) -> dict[str, dict[str, float]]:
    """Sandbox request log → {route: {requests, batch_parts, total_ms}}, busiest first."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"requests": 0, "batch_parts": 0, "total_ms": 0.0})
    for record in records:
        entry = out[record.route or f"{record.method} {record.path}"]
        entry["requests"] += 1
        entry["batch_parts"] += record.batch_parts
        entry["total_ms"] += record.duration * 1000
    ordered = sorted(out.items(), key=lambda kv: -kv[1]["requests"])
    return {route: {k: round(v, 1) for k, v in stats.items()} for route, stats in ordered}


def emit(result: dict[str, Any]) -> None:
    """Print the benchmark's one JSON line."""
    print(json.dumps(result, ensure_ascii=False, sort_keys=False), flush=True)
