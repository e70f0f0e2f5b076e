"""Start/stop the sandbox: uvicorn over TLS (trustme test CA) in a background thread, plus the fake
managed-identity endpoint; `Sandbox` is the handle tests use to seed, inspect and tune it.

Key material on disk: the server's certificate and private key are written to a private temporary
directory (`dataverse-sandbox-*`) only for uvicorn to load them, and removed as soon as the server has
started; the CA's key never leaves memory. The directory keeps the CA certificate (what clients trust) and
the owning process id, and is removed by `stop()`, at interpreter exit, or — when its process was killed —
by the next sandbox started on the machine.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from devstack.dataverse_sandbox.admin import SandboxAdmin, stats_document
from devstack.dataverse_sandbox.api import DataverseApi
from devstack.dataverse_sandbox.app import SandboxApp
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.limits import FaultInjector, Metrics, RequestRecord, ServiceProtection, ThrottleEvent
from devstack.dataverse_sandbox.seed import APP_USER_ID, load_seed
from devstack.dataverse_sandbox.store import Store
from devstack.dataverse_sandbox.tokens import TokenSigner
from devstack.identity_endpoint import IdentityEndpoint, start_identity_endpoint
from devstack.ports import free_port, wait_for_port

__all__ = ["Sandbox", "start_sandbox"]

_WORKDIR_PREFIX = "dataverse-sandbox-"
_OWNER_FILE = "owner.pid"
_ORPHAN_AGE_S = 86400.0  # a directory from before owner files existed is removed once this old


@dataclass
class Sandbox:
    """A running sandbox. `config` is live: change knobs and the next request sees them."""

    url: str
    ca_cert_path: str
    config: SandboxConfig
    store: Store
    metrics: Metrics
    identity: IdentityEndpoint
    signer: TokenSigner
    protection: ServiceProtection
    faults: FaultInjector
    _server: uvicorn.Server
    _thread: threading.Thread
    _workdir: str
    _initial_config: SandboxConfig = field(default_factory=SandboxConfig)
    admin_key: str = ""

    @property
    def execution_ms_total(self) -> float:
        """Execution time (model ms) the cost model charged since the last counter reset."""
        with self.metrics.lock:
            return self.metrics.execution_ms_total

    def execution_ms(self, route: str) -> float:
        """Execution time (model ms) charged to `route` ("POST $batch", "batch:POST contacts", ...)."""
        with self.metrics.lock:
            return self.metrics.execution_ms_by_route.get(route, 0.0)

    def stats(self) -> dict[str, Any]:
        """What `GET /_sandbox/stats` answers: counters, execution time, throttling, knobs."""
        return stats_document(self.metrics, self.protection, self.config)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/data/v9.2/"

    @property
    def identity_endpoint(self) -> str:
        return self.identity.url

    @property
    def identity_header(self) -> str:
        return self.identity.secret

    @property
    def counters(self) -> Counter[str]:
        return self.metrics.counters

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.metrics.request_log

    @property
    def throttle_events(self) -> list[ThrottleEvent]:
        return self.metrics.throttle_events

    @property
    def tokens_issued(self) -> int:
        return self.identity.tokens_issued

    def retried_early(self) -> list[ThrottleEvent]:
        """429s whose caller came back before the announced Retry-After elapsed (should be empty)."""
        with self.metrics.lock:
            return [e for e in self.metrics.throttle_events if e.retried_early]

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the sandbox's test CA (for httpx's `verify=`)."""
        return ssl.create_default_context(cafile=self.ca_cert_path)

    def env(self) -> dict[str, str]:
        return {
            "IDENTITY_ENDPOINT": self.identity.url,
            "IDENTITY_HEADER": self.identity.secret,
            "DATAVERSE_CA_BUNDLE": self.ca_cert_path,
        }

    def mint_token(self, audience: str | None = None, client_id: str | None = None, ttl_s: int = 3600,
                   issued_at: float | None = None) -> str:
        """A token signed like the identity endpoint's (for tests of bad audience / expiry)."""
        return self.signer.mint(audience or self.url, client_id, ttl_s, now=issued_at)[0]

    def reset_counters(self) -> None:
        self.metrics.reset()
        self.identity.reset()

    def reset(self) -> None:
        """Seed data back, counters and limits cleared, config back to what `start_sandbox` was given."""
        self.config.restore(self._initial_config)
        with self.store.lock:
            self.store.clear()
            load_seed(self.store)
        self.protection.reset()
        self.faults.reseed()
        self.reset_counters()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.identity.stop()
        _remove_workdir(self._workdir)


def _remove_workdir(workdir: str) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def _owner_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def _remove_orphaned_workdirs(parent: str | None = None) -> None:
    """Remove the directories of sandboxes whose process died without `stop()` (killed, crashed)."""
    base = Path(parent or tempfile.gettempdir())
    for workdir in base.glob(f"{_WORKDIR_PREFIX}*"):
        with contextlib.suppress(OSError):
            if not workdir.is_dir() or workdir.stat().st_uid != os.getuid():
                continue
            owner = workdir / _OWNER_FILE
            if owner.exists():
                orphaned = not _owner_alive(owner.read_text().strip())
            else:
                orphaned = time.time() - workdir.stat().st_mtime > _ORPHAN_AGE_S
            if orphaned:
                _remove_workdir(str(workdir))


def start_sandbox(config: SandboxConfig | None = None, port: int = 0, timeout: float = 30.0) -> Sandbox:
    """Start the HTTPS sandbox on 127.0.0.1 (free port unless given) and the identity endpoint."""
    cfg = config or SandboxConfig()
    initial = cfg.copy()
    _remove_orphaned_workdirs()
    workdir = tempfile.mkdtemp(prefix=_WORKDIR_PREFIX)
    (Path(workdir) / _OWNER_FILE).write_text(str(os.getpid()))
    atexit.register(_remove_workdir, workdir)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = Path(workdir) / "ca.pem"
    cert_path = Path(workdir) / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))

    port = port or free_port()
    url = f"https://127.0.0.1:{port}"
    signer = TokenSigner()
    store = Store(APP_USER_ID)
    load_seed(store)
    metrics = Metrics()
    protection = ServiceProtection(cfg, metrics)
    faults = FaultInjector(cfg)
    api = DataverseApi(store, cfg, url, APP_USER_ID)
    admin_key = secrets.token_urlsafe(24)
    app = SandboxApp(api, cfg, signer, metrics, protection, faults,
                     SandboxAdmin(admin_key, store, metrics, protection, cfg))
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, ssl_certfile=str(cert_path), http="h11", lifespan="on",
        log_level="critical", access_log=False, timeout_graceful_shutdown=1, backlog=4096,
        h11_max_incomplete_event_size=256 * 1024, timeout_keep_alive=30,
    ))

    def run() -> None:
        asyncio.run(server.serve())

    thread = threading.Thread(target=run, name="dataverse-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Dataverse sandbox did not start")
            time.sleep(0.02)
    except BaseException:
        server.should_exit = True
        _remove_workdir(workdir)
        raise
    finally:
        cert_path.unlink(missing_ok=True)  # loaded by now (or never to be): the private key leaves the disk
    wait_for_port(port, timeout=timeout)
    identity = start_identity_endpoint(signer, ttl_s=lambda: cfg.token_ttl_s)
    return Sandbox(url=url, ca_cert_path=str(ca_path), config=cfg, store=store, metrics=metrics,
                   identity=identity, signer=signer, protection=protection, faults=faults, _server=server,
                   _thread=thread, _workdir=workdir, _initial_config=initial, admin_key=admin_key)


