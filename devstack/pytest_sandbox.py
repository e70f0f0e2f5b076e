"""pytest plugin: one Dataverse sandbox per test session (per xdist worker), reset before each test.

Register with `pytest_plugins = ["devstack.pytest_sandbox"]`. Use `sandbox` in tests (fresh seed data,
default config, cleared counters); `dataverse_sandbox` is the long-lived session instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.dataverse_sandbox import Sandbox, SandboxConfig, start_sandbox

__all__ = ["dataverse_sandbox", "sandbox", "sandbox_env"]


@pytest.fixture(scope="session")
def dataverse_sandbox() -> Iterator[Sandbox]:
    instance = start_sandbox(SandboxConfig())
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def sandbox(dataverse_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The session sandbox, back to its seed state and default knobs for this test."""
    dataverse_sandbox.reset()
    yield dataverse_sandbox
    dataverse_sandbox.reset()


@pytest.fixture
def sandbox_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The sandbox's client environment (identity endpoint, header, CA bundle) set for this test."""
    env = sandbox.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
