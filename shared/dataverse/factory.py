"""One pooled `DataverseClient` per environment URL per process, built from `Settings`."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import dataverse_credential
from shared.platform.settings import Settings

__all__ = ["client_for", "close_clients"]

_lock = threading.Lock()
_clients: dict[str, DataverseClient] = {}


def _key(environment_url: str) -> str:
    parts = urlsplit(environment_url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def client_for(settings: Settings, environment_url: str) -> DataverseClient:
    """The process's client for `environment_url` (created on first use with the shared credential)."""
    key = _key(environment_url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = DataverseClient(
                key,
                dataverse_credential(settings),
                ca_bundle=settings.dataverse_ca_bundle,
                max_concurrency=settings.dataverse_max_concurrency,
                timeout=settings.dataverse_timeout_seconds,
            )
            _clients[key] = client
        return client


def close_clients() -> None:
    """Close and forget every cached client (tests, shutdown)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
