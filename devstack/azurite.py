"""Azurite (Table service only, in memory) on a free loopback port, for tests, the demo and `make serve`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.ports import die_with_parent, free_port, wait_for_port

__all__ = ["AZURITE_ACCOUNT", "AZURITE_KEY", "Azurite", "start_azurite"]

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key; it protects nothing.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Azurite:
    port: int
    process: subprocess.Popen[bytes]
    workdir: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"TableEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite-table"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-table")
    if found:
        return found
    raise RuntimeError("azurite-table not found: run `npm ci` (make test and make demo do it)")


def start_azurite(timeout: float = 60.0) -> Azurite:
    """Start an in-memory Azurite Table service and wait until it accepts connections."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    process = subprocess.Popen(  # noqa: S603 - fixed binary, fixed arguments
        [
            _azurite_binary(),
            "--inMemoryPersistence",
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(port),
            "--skipApiVersionCheck",
            "--disableProductStyleUrl",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workdir,
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, timeout=timeout)
    except TimeoutError:
        process.kill()
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise RuntimeError(f"Azurite did not start: {err[-2000:]}") from None
    return Azurite(port=port, process=process, workdir=workdir)
