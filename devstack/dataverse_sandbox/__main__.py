"""`python -m devstack.dataverse_sandbox --port 0`: run the sandbox until Ctrl-C, printing what clients need
(`DATAVERSE_URL`, the identity endpoint variables, `SANDBOX_ADMIN_KEY` for `/_sandbox/...`).

`--config-json '{"latency_ms": 50, "execution_sleep": true}'` sets any `SandboxConfig` knob."""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument("--config-json", default="{}", help="SandboxConfig knobs as a JSON object")
    parser.add_argument("--stats-file", help="on exit, write counters and per-route totals here (JSON)")
    args = parser.parse_args(argv)
    sandbox = start_sandbox(_config(args.latency_ms, args.seed, args.config_json), port=args.port)
    print(f"DATAVERSE_URL={sandbox.url}")
    for name, value in sandbox.env().items():
        print(f"{name}={value}")
    print(f"SANDBOX_ADMIN_KEY={sandbox.admin_key}")
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


def _config(latency_ms: float, seed: int, config_json: str) -> SandboxConfig:
    knobs = json.loads(config_json)
    names = {f.name for f in dataclasses.fields(SandboxConfig)}
    if not isinstance(knobs, dict) or not set(knobs) <= names:
        raise SystemExit(f"--config-json: a JSON object of SandboxConfig knobs ({', '.join(sorted(names))})")
    return SandboxConfig(**{"latency_ms": latency_ms, "seed": seed, **knobs})


def _write_stats(sandbox: Sandbox, path: str) -> None:
    routes: dict[str, dict[str, float]] = {}
    for record in sandbox.request_log:
        entry = routes.setdefault(record.route or f"{record.method} {record.path}", dict.fromkeys(_TOTALS, 0.0))
        entry["requests"] += 1
        entry["batch_parts"] += record.batch_parts
        entry["total_ms"] += record.duration * 1000
        entry["execution_ms"] += record.execution_ms
    with open(path, "w", encoding="utf-8") as out:
        json.dump({**sandbox.stats(), "routes": routes}, out)


_TOTALS = ("requests", "batch_parts", "total_ms", "execution_ms")


if __name__ == "__main__":
    main()
