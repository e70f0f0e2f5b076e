"""Test session wiring: the local stack (Azurite; the Dataverse sandbox via its plugin) and per-test isolation.

Each xdist worker starts its own in-memory Azurite once; each test gets its own table prefix, so tests
pass in any order and in parallel.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from devstack.azurite import Azurite, start_azurite
from shared.settings import Settings, load_settings, reset_settings_cache

pytest_plugins = ["devstack.pytest_sandbox"]

TEST_KEY_SECRET = "test-key-hash-secret-0123456789"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture
def table_prefix(worker_id: str) -> str:
    return f"t{worker_id.replace('gw', '')}x{os.getpid() % 1000}n{next(_prefixes)}"


@pytest.fixture
def settings_env(azurite: Azurite, table_prefix: str) -> dict[str, str]:
    """Environment for the app under test: Azurite tables with a fresh prefix, in-process queue."""
    return {
        "TABLES_CONNECTION_STRING": azurite.connection_string,
        "TABLE_PREFIX": table_prefix,
        "QUEUE_BACKEND": "inprocess",
        "API_KEY_HASH_SECRET": TEST_KEY_SECRET,
        "MAPPING_CACHE_SECONDS": "5",
    }


@pytest.fixture
def settings(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for this test, also installed as the process environment the app reads."""
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    yield load_settings(settings_env)
    reset_settings_cache()
