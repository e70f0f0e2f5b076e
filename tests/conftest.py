"""Test session wiring: the local stack (Azurite; the Dataverse sandbox via its plugin) and per-test isolation.

Each xdist worker starts its own in-memory Azurite once; each test gets its own table prefix, so tests
pass in any order and in parallel.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.azurite import Azurite, start_azurite
from shared.platform.settings import Settings, load_settings
from shared.storage.tables import TableStorage

pytest_plugins = ["devstack.pytest_sandbox"]

TEST_KEY_SECRET = "test-key-hash-secret-0123456789"
_prefixes = itertools.count()
CHROMIUM = Path("/usr/bin/chromium")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the console's browser tests (tests/browser) could not run."""
    if not CHROMIUM.exists():
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (apt-get install chromium)", red=True, bold=True
        )


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture
def table_prefix() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").replace("gw", "")
    return f"t{worker}x{os.getpid() % 1000}n{next(_prefixes)}"


@pytest.fixture
def settings_env(azurite: Azurite, table_prefix: str) -> dict[str, str]:
    """Environment for the app under test: Azurite tables with a fresh prefix, in-process queue."""
    return {
        "TABLES_CONNECTION_STRING": azurite.connection_string,
        "TABLE_PREFIX": table_prefix,
        "QUEUE_BACKEND": "inprocess",
        "API_KEY_HASH_SECRET": TEST_KEY_SECRET,
        "MAPPING_CACHE_SECONDS": "5",
        "MATCH_TIMEOUT_SECONDS": "1",
    }


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    """Settings for this test (read from `settings_env`, not from the process environment)."""
    return load_settings(settings_env)


@pytest.fixture
def tables(settings: Settings) -> Iterator[TableStorage]:
    """Azurite tables under this test's prefix."""
    storage = TableStorage(connection_string=settings.tables_connection_string, prefix=settings.table_prefix)
    yield storage
    storage.close()


# ---------------------------------------------------------------------------------------------
# The whole local stack for end-to-end tests: Azurite + Dataverse sandbox (HTTPS, tokens from the
# identity endpoint through azure-identity) + the app's registered functions on the local host.


class _CurrentServices:
    """The services of the running test: the session's app and host follow it from test to test."""

    services: Any = None

    def __call__(self) -> Any:
        if self.services is None:
            raise RuntimeError("no test stack is running")
        return self.services

    def queue(self) -> Any:
        return self().sender


_current = _CurrentServices()


@pytest.fixture(scope="session")
def function_host() -> Any:
    from devstack.local_host import FunctionHost
    from function_app import build_app

    return FunctionHost(build_app(_current), queue=_current.queue, raise_server_exceptions=True)


@dataclass
class GenesyStack:
    host: Any
    sandbox: Any
    services: Any
    workspace_id: str
    api_key: str

    @property
    def settings(self) -> Settings:
        return self.services.settings  # type: ignore[no-any-return]

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.services.settings = value

    @property
    def queue(self) -> Any:
        return self.services.sender

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self.host.http(
            method, f"/api/{path.lstrip('/')}", headers=self.headers if headers is None else headers, json=body
        )
        payload = response.get_body()
        response.json = json.loads(payload) if payload else None
        return response

    def drain(self) -> Any:
        return self.host.drain()

    def dynamics(self) -> Any:
        """An httpx client on the sandbox's Web API, as a user or another integration reaches Dynamics."""
        import httpx

        return httpx.Client(
            base_url=f"{self.sandbox.url}/api/data/v9.2/",
            verify=self.sandbox.ssl_context(),
            headers={"Authorization": f"Bearer {self.sandbox.mint_token()}"},
            timeout=10.0,
        )

    def rows(self, logical_name: str) -> list[dict[str, Any]]:
        return list(self.sandbox.store.rows(logical_name))


def build_services(env: dict[str, str]) -> Any:
    """A composition root for tests: Azurite tables, a fresh in-process queue, the sandbox over HTTPS."""
    from shared.messaging.queue import InProcessQueue
    from shared.services.root import Services

    return Services(load_settings(env), sender=InProcessQueue())


@pytest.fixture
def stack(
    settings_env: dict[str, str],
    sandbox: Any,
    function_host: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[GenesyStack]:
    from shared.domain.mappings import WorkspaceCreate

    env = {**settings_env, **sandbox.env()}
    for name, value in env.items():  # the identity endpoint is read by azure-identity from the environment
        monkeypatch.setenv(name, value)
    services = build_services(env)
    _current.services = services
    workspace, api_key = services.store.create_workspace(
        WorkspaceCreate(name="Test workspace", environment_url=sandbox.url), "tests"
    )
    try:
        yield GenesyStack(function_host, sandbox, services, workspace.id, api_key)
    finally:
        _current.services = None
        services.close()
