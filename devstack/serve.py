"""`make serve`: the local stack left running, for people with curl, for tests, for a Genesy behind a tunnel.

Starts `LocalStack` (Azurite, the HTTPS Dataverse sandbox and its identity endpoint, the demo workspace
with the demo mappings), serves the app on `http://127.0.0.1:7071/api` (`PORT` overrides; 0 = any free
port), feeds the Service Bus triggers continuously from the in-process queue, and writes
`.local/stack.json` (`STACK_JSON` or `--stack-json` overrides) with everything a client needs. Ctrl-C or
SIGTERM stops everything and removes the file. A development tool, not a production host.

The sandbox's knobs (`SandboxConfig`: latency, fault rates, service-protection limits, …) come from
`SANDBOX_<KNOB>` environment variables or `--<knob>` flags (a flag wins), e.g. `SANDBOX_LATENCY_MS=50` or
`--latency-ms 50`, `SANDBOX_ERROR_RATE_5XX=0.05`, `--timeout-rate 0.01`, `SANDBOX_REQUEST_LIMIT=600`,
`--concurrency-limit 8`, `SANDBOX_THROTTLE_BURST=3`; `--help` lists them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.dataverse_sandbox import SandboxConfig
from devstack.stack import LocalStack, StackInfo

__all__ = ["DEFAULT_PORT", "SANDBOX_ENV_PREFIX", "banner", "main", "sandbox_config", "write_stack_json"]

DEFAULT_PORT = 7071
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK_JSON = ROOT / ".local" / "stack.json"


SANDBOX_ENV_PREFIX = "SANDBOX_"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _knobs() -> dict[str, Any]:
    """Every `SandboxConfig` knob and its default."""
    return {f.name: getattr(SandboxConfig(), f.name) for f in dataclasses.fields(SandboxConfig)}


def _parse_knob(name: str, default: Any, text: str) -> Any:
    """`text` as the type of the knob's default; ValueError naming the knob when it does not fit."""
    value: Any
    try:
        if isinstance(default, bool):
            if text.strip().lower() not in _TRUE | _FALSE:
                raise ValueError("not a yes/no value")
            value = text.strip().lower() in _TRUE
        else:
            value = type(default)(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a valid {type(default).__name__}") from None
    if not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: must be a finite number, not negative")
    if (name.endswith("_rate") or "_rate_" in name) and value > 1:
        raise ValueError(f"{name}: a rate is between 0 and 1")
    return value


def sandbox_config(env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> SandboxConfig:
    """The sandbox's knobs from `SANDBOX_<KNOB>` variables in `env`, overridden by `flags` (knob → text)."""
    values: dict[str, Any] = {}
    for name, default in _knobs().items():
        text = (flags or {}).get(name)
        if text is None:
            text = env.get(SANDBOX_ENV_PREFIX + name.upper())
        if text is not None and text.strip():
            values[name] = _parse_knob(name, default, text)
    return SandboxConfig(**values)


def _changed_knobs(config: SandboxConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name, default in _knobs().items() if getattr(config, name) != default}


def _add_sandbox_flags(parser: argparse.ArgumentParser) -> None:
    about = f"knobs of the sandbox (default in brackets); each is also read from {SANDBOX_ENV_PREFIX}<KNOB>"
    group = parser.add_argument_group("Dataverse sandbox", about)
    for name, default in _knobs().items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"sandbox_{name}",
            metavar=type(default).__name__.upper(),
            help=f"[{default}] env {SANDBOX_ENV_PREFIX}{name.upper()}",
        )


def write_stack_json(path: Path, info: StackInfo, sandbox: SandboxConfig | None = None) -> None:
    """Write the connection details (owner-only permissions: it holds the keys), and the sandbox's knobs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    document: dict[str, Any] = dict(info.as_dict())
    if sandbox is not None:
        document["sandbox_config"] = dataclasses.asdict(sandbox)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


def banner(
    info: StackInfo, stack_json: Path, functions: Sequence[str], sandbox: SandboxConfig | None = None
) -> str:
    changed = _changed_knobs(sandbox) if sandbox is not None else {}
    knobs = ", ".join(f"{name}={value}" for name, value in changed.items()) or "defaults"
    lines = [
        "genesy-dynamics local stack is running (a development host, not production).",
        f"  Genesy API     {info.base_url}   key header {info.api_key_header}",
        f"  Admin API      {info.base_url}/manage/...   header x-functions-key",
        f"  Admin console  {info.base_url}/console   (signed in as the development admin)",
        f"  Dynamics       {info.dataverse_url} (sandbox, test CA {info.ca_cert})",
        f"  Sandbox knobs  {knobs}",
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


def _progress(line: str) -> None:
    print(f"·  {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local stack and serve the app until interrupted.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stack-json", type=Path, default=Path(os.environ.get("STACK_JSON", DEFAULT_STACK_JSON)))
    parser.add_argument("--verbose", action="store_true", help="log the functions' INFO lines")
    _add_sandbox_flags(parser)
    args = parser.parse_args(argv)
    flags = {name: getattr(args, f"sandbox_{name}") for name in _knobs()}
    try:
        config = sandbox_config(os.environ, flags)
    except ValueError as exc:
        parser.error(str(exc))
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
        # The console signs you in as a development admin (loopback hosts only); CONSOLE_AUTH overrides it.
        console = {"CONSOLE_AUTH": os.environ.get("CONSOLE_AUTH") or "development"}
        with LocalStack(sandbox_config=config, extra_env=console, progress=_progress) as stack:
            stack.serve_http(args.port, args.host)
            stack.start_pump()
            info = stack.info()
            write_stack_json(stack_json, info, config)
            try:
                print(banner(info, stack_json, list(stack.host.describe()), config), flush=True)
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
