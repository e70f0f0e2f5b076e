"""Fixtures for the mapping store: a controllable clock and stores on the per-test Azurite prefix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from mapping_store.store import MappingStore
from shared.domain.mappings import Workspace, WorkspaceCreate
from shared.platform.settings import Settings
from shared.storage.tables import TableStorage


@dataclass
class Clock:
    """Wall clock and monotonic clock that move only when a test says so."""

    wall: datetime = field(default_factory=lambda: datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_store(settings: Settings, tables: TableStorage, clock: Clock) -> Callable[[], MappingStore]:
    """A new store (think: another process) on this test's tables, sharing the test clock."""

    def make() -> MappingStore:
        return MappingStore(settings, tables, now=clock.now, monotonic=clock.monotonic)

    return make


@pytest.fixture
def store(make_store: Callable[[], MappingStore]) -> MappingStore:
    return make_store()


@pytest.fixture
def workspace(store: MappingStore) -> tuple[Workspace, str]:
    """A contact workspace and its plaintext API key."""
    return store.create_workspace(
        WorkspaceCreate(name="Acme", environment_url="https://acme.crm4.dynamics.com"), actor="tester"
    )
