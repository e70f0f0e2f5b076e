"""Table Storage access: one service client per process, table names carrying the configured prefix.

Connection string (Azurite, or an account key) or account URL with managed identity. Tables are
created on first use and remembered, so steady-state calls cost no extra round trips.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient

from shared.platform.settings import Settings

__all__ = ["as_utc", "escape_key", "per_storage", "table_client", "table_service"]

_lock = threading.Lock()
_services: dict[tuple[str | None, str | None, str | None], TableServiceClient] = {}
_created: set[tuple[str, str]] = set()
_per_storage: dict[tuple[Any, ...], Any] = {}
T = TypeVar("T")

# Characters Table Storage forbids in PartitionKey/RowKey, plus control characters.
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f%]")


def table_service(settings: Settings) -> TableServiceClient:
    key = (settings.tables_connection_string, settings.tables_endpoint, settings.managed_identity_client_id)
    with _lock:
        service = _services.get(key)
        if service is None:
            if settings.tables_connection_string:
                service = TableServiceClient.from_connection_string(settings.tables_connection_string)
            else:
                from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

                credential = (
                    ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
                    if settings.managed_identity_client_id
                    else DefaultAzureCredential()
                )
                assert settings.tables_endpoint is not None
                service = TableServiceClient(endpoint=settings.tables_endpoint, credential=credential)
            _services[key] = service
    return service


def table_client(settings: Settings, name: str) -> TableClient:
    """The prefixed table `name`, created if this process has not seen it yet."""
    full = f"{settings.table_prefix}{name}"
    service = table_service(settings)
    marker = (service.url, full)
    if marker not in _created:
        with contextlib.suppress(ResourceExistsError):
            service.create_table(full)
        with _lock:
            _created.add(marker)
    return service.get_table_client(full)


def escape_key(value: str) -> str:
    """Make any string safe as a PartitionKey/RowKey (reversible percent-style escaping)."""
    return _FORBIDDEN_KEY_CHARS.sub(lambda m: f"%{ord(m.group()):02X}", value)


def per_storage(settings: Settings, factory: Callable[[Settings], T]) -> T:
    """One `factory(settings)` object per process and storage location (account and table prefix)."""
    key = (factory, settings.tables_connection_string, settings.tables_endpoint, settings.table_prefix)
    with _lock:
        found = _per_storage.get(key)
    if found is None:
        found = factory(settings)
        with _lock:
            found = _per_storage.setdefault(key, found)
    return found  # type: ignore[no-any-return]


def as_utc(value: Any) -> datetime | None:
    """A Table Storage datetime (timezone-less `TablesEntityDatetime`) as an aware UTC datetime."""
    if not isinstance(value, datetime):
        return None
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )
