"""`make serve`: the local stack left running, for people with curl, for tests, for a Genesy behind a tunnel.

Starts `LocalStack` (Azurite, the HTTPS Dataverse sandbox and its identity endpoint, the demo workspace
with the demo mappings), serves the app on `http://127.0.0.1:7071/api` (`PORT` overrides; 0 = any free
port), feeds the Service Bus triggers continuously from the in-process queue, and writes
`.local/stack.json` (`STACK_JSON` or `--stack-json` overrides) with everything a client needs. Ctrl-C or
SIGTERM stops everything and removes the file. A development tool, not a production host.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devstack.stack import LocalStack, StackInfo

__all__ = ["DEFAULT_PORT", "banner", "main", "write_stack_json"]

DEFAULT_PORT = 7071
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK_JSON = ROOT / ".local" / "stack.json"


def write_stack_json(path: Path, info: StackInfo) -> None:
    """Write the connection details (owner-only permissions: it holds the keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info.as_dict(), handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


def banner(info: StackInfo, stack_json: Path, functions: Sequence[str]) -> str:
    lines = [
        "genesy-dynamics local stack is running (a development host, not production).",
        f"  Genesy API     {info.base_url}   key header {info.api_key_header}",
        f"  Admin API      {info.base_url}/manage/...   header x-functions-key",
        f"  Dynamics       {info.dataverse_url} (sandbox, test CA {info.ca_cert})",
        f"  Connection     {stack_json}",
        "",
        "Try:",
        f"  curl -s -H '{info.api_key_header}: {info.api_key}' {info.base_url}/health",
        f"  curl -s -H 'x-functions-key: {info.admin_key}' \\\n"
        f"       {info.base_url}/manage/workspaces/{info.workspace_id}/sync-health",
        "",
        f"{len(functions)} functions registered; queues are pumped continuously. Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local stack and serve the app until interrupted.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stack-json", type=Path, default=Path(os.environ.get("STACK_JSON", DEFAULT_STACK_JSON)))
    parser.add_argument("--verbose", action="store_true", help="log the functions' INFO lines")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack_json: Path = args.stack_json
    try:
        with LocalStack(progress=lambda line: print(f"·  {line}", flush=True)) as stack:
            stack.serve_http(args.port, args.host)
            stack.start_pump()
            info = stack.info()
            write_stack_json(stack_json, info)
            try:
                print(banner(info, stack_json, list(stack.host.describe())), flush=True)
                while not stop.wait(0.5):
                    pass
                print("\nstopping…", flush=True)
            finally:
                stack_json.unlink(missing_ok=True)
    except Exception as exc:
        print(f"the local stack failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
