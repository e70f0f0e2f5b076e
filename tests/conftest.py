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
from typing import Any

import pytest

from devstack.azurite import Azurite, start_azurite
from shared.platform.settings import Settings, load_settings, reset_settings_cache

pytest_plugins = ["devstack.pytest_sandbox"]

TEST_KEY_SECRET = "test-key-hash-secret-0123456789"
_prefixes = itertools.count()


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
def settings(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for this test, also installed as the process environment the app reads."""
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    yield load_settings(settings_env)
    reset_settings_cache()


# ---------------------------------------------------------------------------------------------
# The whole local stack for end-to-end tests: Azurite + Dataverse sandbox (HTTPS, tokens from the
# identity endpoint through azure-identity) + the app's registered functions on the local host.


@pytest.fixture(scope="session")
def function_host() -> Any:
    from devstack.local_host import FunctionHost
    from function_app import app

    return FunctionHost(app, raise_server_exceptions=True)


@dataclass
class GenesyStack:
    host: Any
    sandbox: Any
    settings: Settings
    workspace_id: str
    api_key: str
    queue: Any

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

    def rows(self, logical_name: str) -> list[dict[str, Any]]:
        return list(self.sandbox.store.rows(logical_name))


@pytest.fixture
def stack(
    settings_env: dict[str, str],
    sandbox: Any,
    function_host: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[GenesyStack]:
    from mapping_store import WorkspaceCreate, get_store
    from shared.dataverse import close_clients, reset_credential_cache
    from shared.messaging.queue import reset_in_process_queue
    from shared.platform.settings import get_settings
    from shared.services.context import clear_users_cache

    for name, value in {**settings_env, **sandbox.env()}.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    close_clients()
    reset_credential_cache()
    clear_users_cache()
    queue = reset_in_process_queue()
    settings = get_settings()
    workspace, api_key = get_store(settings).create_workspace(
        WorkspaceCreate(name="Test workspace", environment_url=sandbox.url), "tests"
    )
    yield GenesyStack(function_host, sandbox, settings, workspace.id, api_key, queue)
    close_clients()
    reset_settings_cache()
