"""Cold import time of `function_app` next to Microsoft's `PowerPlatform.Dataverse` client, same run.

Each sample is a fresh interpreter (`python -c`) timing the import alone (interpreter start-up
excluded), with bytecode caches warm as on a deployed worker; the median of `--runs` samples is
reported, and the whole process wall time too. `function_app` is imported with a minimal environment
(its settings are read lazily, on the first call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import emit, machine

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import time, resource\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)
MODULES = {"function_app": "function_app", "PowerPlatform.Dataverse": "PowerPlatform.Dataverse"}


def sample(module: str) -> tuple[float, float, float]:
    env = {
        **os.environ,
        "API_KEY_HASH_SECRET": "bench-import-secret-0123456789",
        "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "QUEUE_BACKEND": "inprocess",
    }
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603 - our interpreter, a fixed probe
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    seconds, rss_kb = out.stdout.split()
    return float(seconds) * 1000, wall * 1000, int(rss_kb) / 1024


def run(runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "import", "runs": runs}
    for name, module in MODULES.items():
        sample(module)  # compile bytecode once
        samples = [sample(module) for _ in range(runs)]
        result[name] = {
            "import_ms_median": round(statistics.median(s[0] for s in samples), 1),
            "import_ms_min": round(min(s[0] for s in samples), 1),
            "process_ms_median": round(statistics.median(s[1] for s in samples), 1),
            "peak_rss_mb_median": round(statistics.median(s[2] for s in samples), 1),
        }
    result["ratio_function_app_to_dataverse_client"] = round(
        result["function_app"]["import_ms_median"] / result["PowerPlatform.Dataverse"]["import_ms_median"], 2
    )
    result["machine"] = machine()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold import time of function_app vs PowerPlatform.Dataverse.")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    emit(run(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
