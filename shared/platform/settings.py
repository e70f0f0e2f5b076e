"""Typed application settings, read once from the environment.

A missing or malformed setting fails at start-up with a `SettingsError` naming the variable, so a
misconfigured deployment never half-works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings", "reset_settings_cache"]


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


QueueBackend = Literal["servicebus", "inprocess"]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Table Storage: a connection string (Azurite, or a key) or an account URL used with managed identity.
    tables_connection_string: str | None = None
    tables_endpoint: str | None = None
    table_prefix: str = "gd"

    # Service Bus: fully qualified namespace (managed identity) or a connection string; or the
    # in-process queue used by tests and the local host.
    queue_backend: QueueBackend = "servicebus"
    servicebus_namespace: str | None = None
    servicebus_connection_string: str | None = None
    writes_queue: str = "genesy-writes"
    campaign_queue: str = "campaign-updates"
    max_delivery_count: int = 10

    # Identity.
    managed_identity_client_id: str | None = None
    api_key_hash_secret: str

    # Dataverse.
    dataverse_ca_bundle: str | None = None
    dataverse_max_concurrency: int = 8
    dataverse_timeout_seconds: float = 30.0
    match_timeout_seconds: float = 5.0
    write_budget_seconds: float = 240.0

    # Caches and keys.
    mapping_cache_seconds: float = 5.0
    users_cache_seconds: float = 300.0
    key_grace_seconds: int = 86_400
    key_cache_seconds: float = 30.0


_ENV: dict[str, tuple[str, type]] = {
    "tables_connection_string": ("TABLES_CONNECTION_STRING", str),
    "tables_endpoint": ("TABLES_ENDPOINT", str),
    "table_prefix": ("TABLE_PREFIX", str),
    "queue_backend": ("QUEUE_BACKEND", str),
    "servicebus_namespace": ("ServiceBusConnection__fullyQualifiedNamespace", str),
    "servicebus_connection_string": ("SERVICEBUS_CONNECTION_STRING", str),
    "writes_queue": ("WRITES_QUEUE_NAME", str),
    "campaign_queue": ("CAMPAIGN_QUEUE_NAME", str),
    "max_delivery_count": ("SERVICEBUS_MAX_DELIVERY_COUNT", int),
    "managed_identity_client_id": ("AZURE_CLIENT_ID", str),
    "api_key_hash_secret": ("API_KEY_HASH_SECRET", str),
    "dataverse_ca_bundle": ("DATAVERSE_CA_BUNDLE", str),
    "dataverse_max_concurrency": ("DATAVERSE_MAX_CONCURRENCY", int),
    "dataverse_timeout_seconds": ("DATAVERSE_TIMEOUT_SECONDS", float),
    "match_timeout_seconds": ("MATCH_TIMEOUT_SECONDS", float),
    "write_budget_seconds": ("WRITE_BUDGET_SECONDS", float),
    "mapping_cache_seconds": ("MAPPING_CACHE_SECONDS", float),
    "users_cache_seconds": ("USERS_CACHE_SECONDS", float),
    "key_grace_seconds": ("KEY_GRACE_SECONDS", int),
    "key_cache_seconds": ("KEY_CACHE_SECONDS", float),
}

ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(name for name, _ in _ENV.values())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from an environment mapping, naming any bad variable in the error."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for field, (var, kind) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        if kind is str:
            values[field] = raw
            continue
        try:
            number = kind(raw)
        except ValueError:
            raise SettingsError(f"{var} must be a {kind.__name__}, got {raw!r}") from None
        if number <= 0:
            raise SettingsError(f"{var} must be positive, got {raw!r}")
        values[field] = number

    if "api_key_hash_secret" not in values:
        raise SettingsError("API_KEY_HASH_SECRET is required (the secret that keys the API-key hashes)")
    if len(str(values["api_key_hash_secret"])) < 16:
        raise SettingsError("API_KEY_HASH_SECRET must be at least 16 characters")
    if "tables_connection_string" not in values and "tables_endpoint" not in values:
        raise SettingsError("TABLES_CONNECTION_STRING or TABLES_ENDPOINT is required")
    if "tables_endpoint" in values:
        parsed = urlparse(str(values["tables_endpoint"]))
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise SettingsError(f"TABLES_ENDPOINT must be an http(s) URL, got {values['tables_endpoint']!r}")
    prefix = str(values.get("table_prefix", "gd"))
    if not prefix.isalnum() or not prefix[0].isalpha() or len(prefix) > 20:
        raise SettingsError("TABLE_PREFIX must be 1-20 letters/digits starting with a letter")
    backend = values.get("queue_backend", "servicebus")
    if backend not in ("servicebus", "inprocess"):
        raise SettingsError(f"QUEUE_BACKEND must be 'servicebus' or 'inprocess', got {backend!r}")
    if backend == "servicebus" and not ("servicebus_namespace" in values or "servicebus_connection_string" in values):
        raise SettingsError(
            "ServiceBusConnection__fullyQualifiedNamespace or SERVICEBUS_CONNECTION_STRING is required "
            "when QUEUE_BACKEND is 'servicebus'"
        )
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
