"""The composition root: every live object the use cases need, built once from settings.

`function_app.py` builds one `Services` (lazily, on the first trigger) and hands it to every blueprint;
tests build their own with Azurite, the in-process queue and the Dataverse sandbox. Nothing else in
the app keeps live objects at module level, so nothing needs resetting between tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mapping_store.store import MappingStore, WorkspaceMappings, authenticate
from shared.dataverse.client import DataverseClient
from shared.domain.entities import COMPANY, EntityKind, contact_kind
from shared.domain.mappings import Workspace
from shared.domain.metadata import SystemUser
from shared.domain.record_types import RecordType
from shared.messaging.queue import MessageSender, build_sender
from shared.platform.credential import azure_credential
from shared.platform.settings import Settings
from shared.storage.activity_index import ActivityIndex
from shared.storage.campaign_state import CampaignStore
from shared.storage.identities import IdentityStore
from shared.storage.ledger import AliasStore, Ledger
from shared.storage.pending import PendingItems
from shared.storage.recent import RecentRecords
from shared.storage.reconcile_state import ReconcileState
from shared.storage.tables import TableStorage
from shared.storage.webhooks import WebhookStore

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["Services", "ServicesProvider", "WorkspaceContext", "enabled_users", "lazy_services"]

ServicesProvider = Callable[[], "Services"]


class UsersCache:
    """Enabled Dynamics users per environment, kept `ttl_seconds` (owners and senders are resolved per call)."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, list[SystemUser]]] = {}
        self._lock = threading.Lock()

    def get(self, environment: str, load: Callable[[], list[SystemUser]]) -> list[SystemUser]:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(environment)
            if cached and now - cached[0] < self._ttl:
                return cached[1]
        users = load()
        with self._lock:
            self._entries[environment] = (now, users)
        return users


@dataclass
class WorkspaceContext:
    services: Services
    workspace: Workspace
    mappings: WorkspaceMappings
    client: DataverseClient

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def contact(self) -> EntityKind:
        return contact_kind(self.workspace.contact_entity)

    def entity(self, kind: str) -> EntityKind:
        return self.record(kind).entity

    def record(self, kind: str) -> RecordType:
        """What differs between contacts (or leads) and companies in this workspace."""
        sync, export = self.mappings.sync, self.mappings.export
        if kind == "company":
            return RecordType("company", COMPANY, export.company, sync.company, sync.company_sync_back)
        return RecordType("contact", self.contact, export.contact, sync.contact, sync.contact_sync_back)


def enabled_users(ctx: WorkspaceContext) -> list[SystemUser]:
    """Enabled, interactive Dynamics users of the workspace's environment, cached briefly."""
    return ctx.services.users.get(ctx.workspace.environment_url, ctx.client.enabled_users)


def _environment_key(environment_url: str) -> str:
    parts = urlsplit(environment_url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class Services:
    """The app's live objects: the Azure credential, Table stores, the queue sender, Dataverse clients."""

    def __init__(self, settings: Settings, *, sender: MessageSender | None = None) -> None:
        self.settings = settings
        self.tables = TableStorage(
            connection_string=settings.tables_connection_string,
            endpoint=settings.tables_endpoint,
            prefix=settings.table_prefix,
            credential=lambda: self.credential,
        )
        self.store = MappingStore(settings, self.tables)
        self.ledger = Ledger(self.tables)
        self.aliases = AliasStore(self.tables)
        self.pending = PendingItems(self.tables)
        self.campaign_state = CampaignStore(self.tables)
        self.reconcile_state = ReconcileState(self.tables)  # reconciliation's lease, run reports, marks
        self.activity_index = ActivityIndex(self.tables)
        self.identities = IdentityStore(self.tables)  # Genesy identities seen (owners, senders)
        self.webhooks = WebhookStore(self.tables)  # Genesy webhook secrets (HMACs) and deliveries
        self.sender = sender if sender is not None else build_sender(settings, lambda: self.credential)
        self.recent = RecentRecords()
        self.users = UsersCache(settings.users_cache_seconds)
        self._clients: dict[str, DataverseClient] = {}
        self._lock = threading.Lock()

    @cached_property
    def credential(self) -> TokenCredential:
        """The one Azure credential (built on first use: azure.identity is not paid for at cold start)."""
        return azure_credential(self.settings.managed_identity_client_id)

    def dataverse(self, environment_url: str) -> DataverseClient:
        """The pooled client for a Dynamics environment (one per environment, sharing the credential)."""
        key = _environment_key(environment_url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = DataverseClient(
                    key,
                    self.credential,
                    ca_bundle=self.settings.dataverse_ca_bundle,
                    max_concurrency=self.settings.dataverse_max_concurrency,
                    use_bulk=self.settings.dataverse_use_bulk,
                    timeout=self.settings.dataverse_timeout_seconds,
                )
            return client

    def workspace(self, workspace_id: str) -> WorkspaceContext:
        """What a use case needs for one workspace: its mappings and its Dynamics client."""
        mappings = self.store.mappings(workspace_id)
        client = self.dataverse(mappings.workspace.environment_url)
        return WorkspaceContext(self, mappings.workspace, mappings, client)

    def genesy(self, headers: Mapping[str, str]) -> WorkspaceContext:
        """Authenticate a Genesy call by its key (401 otherwise) and load what it needs."""
        return self.workspace(authenticate(self.store, headers).id)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        close = getattr(self.sender, "close", None)
        if close is not None:
            close()
        self.tables.close()


def lazy_services(build: Callable[[], Services]) -> ServicesProvider:
    """A provider that builds the services on first use (after the host has set the environment)."""
    built: list[Services] = []
    lock = threading.Lock()

    def provide() -> Services:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0]

    return provide
