"""`make bench`: run every benchmark in its own process; each prints one JSON line, passed through.

Extra arguments go nowhere; run a script alone for its flags (e.g. `python -m benchmarks.bench_export
--contacts 1000`). Exit status: non-zero when a benchmark failed to run or reported duplicates/failures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = (
    "benchmarks.bench_import",
    "benchmarks.bench_latency",
    "benchmarks.bench_export",
    "benchmarks.bench_sandbox_index",
    "benchmarks.bench_throughput",
)


def main() -> int:
    status = 0
    for module in BENCHMARKS:
        print(f"# {module}", file=sys.stderr, flush=True)
        completed = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False)  # noqa: S603
        if completed.returncode != 0:
            print(f"# {module} exited with {completed.returncode}", file=sys.stderr, flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
