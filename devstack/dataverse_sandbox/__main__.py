"""`python -m devstack.dataverse_sandbox --port 0`: run the sandbox until Ctrl-C, printing what clients need."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from types import FrameType

from devstack.dataverse_sandbox import Sandbox, SandboxConfig, start_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (0 = a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats-file", help="on exit, write counters and per-route totals here (JSON)")
    args = parser.parse_args(argv)
    sandbox = start_sandbox(SandboxConfig(latency_ms=args.latency_ms, seed=args.seed), port=args.port)
    print(f"DATAVERSE_URL={sandbox.url}")
    for name, value in sandbox.env().items():
        print(f"{name}={value}")
    print("Ctrl-C to stop.", flush=True)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if args.stats_file:
            _write_stats(sandbox, args.stats_file)
        sandbox.stop()


def _write_stats(sandbox: Sandbox, path: str) -> None:
    routes: dict[str, dict[str, float]] = {}
    for record in sandbox.request_log:
        entry = routes.setdefault(record.route or f"{record.method} {record.path}", dict.fromkeys(_TOTALS, 0.0))
        entry["requests"] += 1
        entry["batch_parts"] += record.batch_parts
        entry["total_ms"] += record.duration * 1000
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"counters": dict(sandbox.counters), "routes": routes}, out)


_TOTALS = ("requests", "batch_parts", "total_ms")


if __name__ == "__main__":
    main()
