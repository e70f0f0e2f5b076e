"""The Dataverse sandbox in a process of its own, for benchmarks: Dynamics is remote, so its work should
not share the app's interpreter (and GIL) when the app is measured."""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.ports import die_with_parent

__all__ = ["SandboxProcess"]

ROOT = Path(__file__).resolve().parent.parent
_NOT_FOR_CLIENTS = ("DATAVERSE_URL", "SANDBOX_ADMIN_KEY")


class SandboxProcess:
    """`python -m devstack.dataverse_sandbox` as a child process; `stop()` returns its request totals.

    `config` sets any knob (the cost model, limits, `time_scale`, ...); `latency_ms`/`seed` are kept for
    the callers that only set those. While it runs, `stats()`, `rows()`, `reset_counters()` and
    `set_config()` reach its admin endpoint (`/_sandbox/...`).
    """

    def __init__(self, latency_ms: float = 0.0, seed: int = 0, config: SandboxConfig | None = None) -> None:
        knobs = _changed_knobs(config or SandboxConfig(latency_ms=latency_ms, seed=seed))
        handle, self._stats_path = tempfile.mkstemp(prefix="sandbox-stats-", suffix=".json")
        os.close(handle)
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "devstack.dataverse_sandbox",
                "--port",
                "0",
                "--config-json",
                json.dumps(knobs),
                "--stats-file",
                self._stats_path,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        self._env: dict[str, str] = {}
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("Ctrl-C"):
                break
            name, _, value = line.strip().partition("=")
            if value:
                self._env[name] = value
        if "DATAVERSE_URL" not in self._env:
            self._process.kill()
            raise RuntimeError("the sandbox process did not start")
        self._admin: httpx.Client | None = None

    @property
    def url(self) -> str:
        return self._env["DATAVERSE_URL"]

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def ca_cert_path(self) -> str:
        return self._env["DATAVERSE_CA_BUNDLE"]

    def env(self) -> dict[str, str]:
        """What the app needs to reach it: IDENTITY_ENDPOINT, IDENTITY_HEADER, DATAVERSE_CA_BUNDLE."""
        return {k: v for k, v in self._env.items() if k not in _NOT_FOR_CLIENTS}

    def _client(self) -> httpx.Client:
        if self._admin is None:
            self._admin = httpx.Client(
                base_url=f"{self.url}/_sandbox/",
                verify=ssl.create_default_context(cafile=self.ca_cert_path),
                headers={"X-Sandbox-Admin-Key": self._env["SANDBOX_ADMIN_KEY"]},
                timeout=120,
            )
        return self._admin

    def stats(self) -> dict[str, Any]:
        """Counters, execution time charged, throttling and knobs of the running sandbox."""
        response = self._client().get("stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def rows(self, table: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        params = {"select": ",".join(select)} if select else None
        response = self._client().get(f"rows/{table}", params=params)
        response.raise_for_status()
        value: list[dict[str, Any]] = response.json()["value"]
        return value

    def reset_counters(self) -> None:
        self._client().post("reset-counters").raise_for_status()

    def reset_limits(self) -> None:
        """Every caller's service-protection windows emptied: the next phase starts with a full budget."""
        self._client().post("reset-limits").raise_for_status()

    def set_config(self, **knobs: Any) -> None:
        self._client().patch("config", json=knobs).raise_for_status()

    def stop(self) -> dict[str, Any]:
        """Stop the process; its counters and per-route totals."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        try:
            with open(self._stats_path, encoding="utf-8") as source:
                stats: dict[str, Any] = json.load(source)
        except (OSError, ValueError):
            stats = {}
        Path(self._stats_path).unlink(missing_ok=True)
        return stats


def _changed_knobs(config: SandboxConfig) -> dict[str, Any]:
    default = SandboxConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(SandboxConfig)
            if getattr(config, f.name) != getattr(default, f.name)}
