"""The Dataverse sandbox in a process of its own, for benchmarks: Dynamics is remote, so its work should
not share the app's interpreter (and GIL) when the app's latency is measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devstack.ports import die_with_parent

__all__ = ["SandboxProcess"]

ROOT = Path(__file__).resolve().parent.parent


class SandboxProcess:
    """`python -m devstack.dataverse_sandbox` as a child process; `stop()` returns its request totals."""

    def __init__(self, latency_ms: float = 0.0, seed: int = 0) -> None:
        handle, self._stats_path = tempfile.mkstemp(prefix="sandbox-stats-", suffix=".json")
        os.close(handle)
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "devstack.dataverse_sandbox",
                "--port",
                "0",
                "--latency-ms",
                str(latency_ms),
                "--seed",
                str(seed),
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

    @property
    def url(self) -> str:
        return self._env["DATAVERSE_URL"]

    def env(self) -> dict[str, str]:
        """What the app needs to reach it: IDENTITY_ENDPOINT, IDENTITY_HEADER, DATAVERSE_CA_BUNDLE."""
        return {k: v for k, v in self._env.items() if k != "DATAVERSE_URL"}

    def stop(self) -> dict[str, Any]:
        """Stop the process; its counters and per-route totals."""
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
