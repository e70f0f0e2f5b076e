"""`python -m devstack.dataverse_sandbox --port 0`: run the sandbox until Ctrl-C, printing what clients need."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from devstack.dataverse_sandbox import SandboxConfig, start_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (0 = a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
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
        sandbox.stop()


if __name__ == "__main__":
    main()
