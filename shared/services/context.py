"""Per-request context for Genesy calls: the workspace the key selects, its mappings and its Dynamics client."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from mapping_store import MappingStore, Workspace, WorkspaceMappings, authenticate, get_store
from shared.dataverse import DataverseClient, SystemUser, client_for
from shared.domain.entities import COMPANY, EntityKind, contact_kind
from shared.platform.settings import Settings, get_settings

__all__ = ["WorkspaceContext", "clear_users_cache", "enabled_users", "genesy_context", "workspace_context"]


@dataclass
class WorkspaceContext:
    settings: Settings
    store: MappingStore
    workspace: Workspace
    mappings: WorkspaceMappings
    client: DataverseClient

    @property
    def contact(self) -> EntityKind:
        return contact_kind(self.workspace.contact_entity)

    def entity(self, kind: str) -> EntityKind:
        return COMPANY if kind == "company" else self.contact


def workspace_context(settings: Settings, workspace_id: str) -> WorkspaceContext:
    store = get_store(settings)
    mappings = store.mappings(workspace_id)
    client = client_for(settings, mappings.workspace.environment_url)
    return WorkspaceContext(settings, store, mappings.workspace, mappings, client)


def genesy_context(headers: Mapping[str, str]) -> WorkspaceContext:
    """Authenticate a Genesy call by its key (401 otherwise) and load what it needs."""
    settings = get_settings()
    store = get_store(settings)
    workspace = authenticate(store, headers)
    return workspace_context(settings, workspace.id)


_users_lock = threading.Lock()
_users_cache: dict[str, tuple[float, list[SystemUser]]] = {}


def enabled_users(ctx: WorkspaceContext) -> list[SystemUser]:
    """Enabled, interactive Dynamics users of the workspace's environment, cached briefly."""
    key = ctx.workspace.environment_url
    now = time.monotonic()
    with _users_lock:
        cached = _users_cache.get(key)
        if cached and now - cached[0] < ctx.settings.users_cache_seconds:
            return cached[1]
    users = ctx.client.enabled_users()
    with _users_lock:
        _users_cache[key] = (now, users)
    return users


def clear_users_cache() -> None:
    with _users_lock:
        _users_cache.clear()
