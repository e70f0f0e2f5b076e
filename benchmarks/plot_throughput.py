"""docs/benchmarks-throughput.png: export records/s against the model's ceiling, across network latencies
and per-operation costs (`bench_throughput` at each point, small sizes, the three-workspace phase skipped).

`python -m benchmarks.plot_throughput` runs the grid (a few minutes) and prints each point as a JSON line;
`--from points.jsonl` replots saved points without running anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_throughput import Options, run
from benchmarks.common import emit

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "benchmarks-throughput.png"
LATENCIES = (20.0, 50.0, 150.0)
COST_FACTORS = (0.5, 1.0, 2.0)


def measure(contacts: int, companies: int, time_scale: float) -> list[dict[str, Any]]:
    points = []
    for cost in COST_FACTORS:
        for latency in LATENCIES:
            options = Options(contacts=contacts, companies=companies, naive_contacts=20, latency_ms=latency,
                              time_scale=time_scale, cost_factor=cost, workspaces=False)
            summary = run(options, report=lambda _phase: None)
            point = {"latency_ms": latency, "cost_factor": cost,
                     **{k: summary[k] for k in ("records_per_s", "ceiling_records_per_s", "ratio_to_ceiling",
                                                "naive_records_per_s", "speedup_vs_naive", "binding_limit")}}
            emit(point)
            points.append(point)
    return points


def plot(points: list[dict[str, Any]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for cost in sorted({p["cost_factor"] for p in points}):
        row = sorted((p for p in points if p["cost_factor"] == cost), key=lambda p: p["latency_ms"])
        latencies = [p["latency_ms"] for p in row]
        line = left.plot(latencies, [p["records_per_s"] for p in row], marker="o", label=f"app, cost x{cost:g}")[0]
        left.plot(latencies, [p["ceiling_records_per_s"] for p in row], linestyle="--", color=line.get_color(),
                  label=f"ceiling, cost x{cost:g}")
        left.plot(latencies, [p["naive_records_per_s"] for p in row], linestyle=":", marker="x",
                  color=line.get_color(), label=f"naive flow, cost x{cost:g}")
        right.plot(latencies, [p["ratio_to_ceiling"] for p in row], marker="o", color=line.get_color(),
                   label=f"cost x{cost:g}")
    left.set(xlabel="network latency (ms)", ylabel="records/s (model time)", yscale="log",
             title="Export throughput against the ceiling")
    left.legend(fontsize=7)
    right.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="network latency (ms)", ylabel="records/s ÷ ceiling", ylim=(0, 1.05),
              title="Ratio to the ceiling (target 0.9)")
    right.legend(fontsize=8)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--companies", type=int, default=80)
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--from", dest="source", help="JSON lines of saved points: plot them, run nothing")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    if args.source:
        points = [json.loads(line) for line in Path(args.source).read_text().splitlines() if line.strip()]
    else:
        points = measure(args.contacts, args.companies, args.time_scale)
    plot(points, Path(args.output))
    print(f"# wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
