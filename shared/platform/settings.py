"""Typed application settings, read once from the environment (pydantic-settings).

Each field of `Settings` names its environment variable (`validation_alias`). Values are trimmed, and a
blank one counts as unset. A missing or malformed setting fails at start-up with a `SettingsError`
naming the variable, so a misconfigured deployment never half-works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Self
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


QueueBackend = Literal["servicebus", "inprocess"]
# Who may open the admin console (`shared.platform.console_auth`): nobody (the default), an admin signed in
# by App Service Authentication in front of the app, or a development admin on a loopback host.
ConsoleAuth = Literal["disabled", "easyauth", "development"]


class Settings(BaseModel):
    """The app's settings. Fields also accept their Python names, so tests can build one directly."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    # Table Storage: a connection string (Azurite, or a key) or an account URL used with managed identity.
    tables_connection_string: str | None = Field(None, validation_alias="TABLES_CONNECTION_STRING", repr=False)
    tables_endpoint: str | None = Field(None, validation_alias="TABLES_ENDPOINT")
    table_prefix: str = Field("gd", validation_alias="TABLE_PREFIX")

    # Service Bus: fully qualified namespace (managed identity) or a connection string; or the
    # in-process queue used by tests and the local host.
    queue_backend: QueueBackend = Field("servicebus", validation_alias="QUEUE_BACKEND")
    servicebus_namespace: str | None = Field(None, validation_alias="ServiceBusConnection__fullyQualifiedNamespace")
    servicebus_connection_string: str | None = Field(None, validation_alias="SERVICEBUS_CONNECTION_STRING", repr=False)
    writes_queue: str = Field("genesy-writes", validation_alias="WRITES_QUEUE_NAME")
    campaign_queue: str = Field("campaign-updates", validation_alias="CAMPAIGN_QUEUE_NAME")
    max_delivery_count: PositiveInt = Field(10, validation_alias="SERVICEBUS_MAX_DELIVERY_COUNT")

    # Identity.
    managed_identity_client_id: str | None = Field(None, validation_alias="AZURE_CLIENT_ID")
    api_key_hash_secret: str = Field(
        validation_alias="API_KEY_HASH_SECRET",
        min_length=16,
        repr=False,
        description="the secret that keys the API-key hashes",
    )

    # Dataverse.
    dataverse_ca_bundle: str | None = Field(None, validation_alias="DATAVERSE_CA_BUNDLE")
    dataverse_max_concurrency: PositiveInt = Field(8, validation_alias="DATAVERSE_MAX_CONCURRENCY")
    dataverse_use_bulk: bool = Field(True, validation_alias="DATAVERSE_USE_BULK")
    dataverse_timeout_seconds: PositiveFloat = Field(30.0, validation_alias="DATAVERSE_TIMEOUT_SECONDS")
    match_timeout_seconds: PositiveFloat = Field(5.0, validation_alias="MATCH_TIMEOUT_SECONDS")
    write_budget_seconds: PositiveFloat = Field(240.0, validation_alias="WRITE_BUDGET_SECONDS")
    # Messages of one session's batch the worker processes at the same time when they commute.
    write_parallel_messages: PositiveInt = Field(8, validation_alias="WRITE_PARALLEL_MESSAGES")
    # Reconciliation: the share of Dataverse's service-protection request budget (6,000 requests per user per
    # 300 s) one run may spend, the verification sample, retries of transient failures, the run's lease.
    reconcile_budget_share: float = Field(0.05, gt=0, le=1, validation_alias="RECONCILE_BUDGET_SHARE")
    reconcile_verify_sample: NonNegativeInt = Field(100, validation_alias="RECONCILE_VERIFY_SAMPLE")
    reconcile_retry_limit: NonNegativeInt = Field(3, validation_alias="RECONCILE_RETRY_LIMIT")
    reconcile_lease_seconds: PositiveInt = Field(900, validation_alias="RECONCILE_LEASE_SECONDS")

    # Caches and keys.
    mapping_cache_seconds: PositiveFloat = Field(5.0, validation_alias="MAPPING_CACHE_SECONDS")
    users_cache_seconds: PositiveFloat = Field(300.0, validation_alias="USERS_CACHE_SECONDS")
    key_grace_seconds: PositiveInt = Field(86_400, validation_alias="KEY_GRACE_SECONDS")
    key_cache_seconds: PositiveFloat = Field(30.0, validation_alias="KEY_CACHE_SECONDS")

    # The admin console at /api/console: who is let in, and the Entra app role an admin must hold.
    console_auth: ConsoleAuth = Field("disabled", validation_alias="CONSOLE_AUTH")
    console_admin_role: str = Field("GenesyDynamics.Admin", validation_alias="CONSOLE_ADMIN_ROLE", min_length=1)

    # Genesy webhooks: the event types that only mark a contact as engaged (comma-separated).
    webhook_engagement_events: str = Field("POST_LIKED,PROFILE_VISITED", validation_alias="WEBHOOK_ENGAGEMENT_EVENTS")

    def engagement_events(self) -> frozenset[str]:
        return frozenset(e.strip().upper() for e in self.webhook_engagement_events.split(",") if e.strip())

    @field_validator("table_prefix")
    @classmethod
    def _table_prefix_is_a_table_name_start(cls, prefix: str) -> str:
        if not prefix.isalnum() or not prefix[0].isalpha() or len(prefix) > 20:
            raise ValueError("must be 1-20 letters/digits starting with a letter")
        return prefix

    @field_validator("tables_endpoint")
    @classmethod
    def _tables_endpoint_is_a_url(cls, endpoint: str | None) -> str | None:
        if endpoint is not None:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("https", "http") or not parsed.netloc:
                raise ValueError("must be an http(s) URL")
        return endpoint


def _variable(field: str) -> str:
    """The environment variable of a `Settings` field."""
    alias = Settings.model_fields[field].validation_alias
    if not isinstance(alias, str):
        raise TypeError(f"Settings.{field} must name its environment variable in validation_alias")
    return alias


ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(_variable(field) for field in Settings.model_fields)
_FIELD_OF: dict[str, str] = {_variable(field): field for field in Settings.model_fields}


class _FromEnvironment(BaseSettings, Settings):
    """`Settings` as a deployment must provide them: the rules that span several variables."""

    model_config = SettingsConfigDict(case_sensitive=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what `load_settings` passes in (read by `_EnvironmentSource` from the mapping it was given):
        # never `os.environ` behind its back, nor a .env or secrets file.
        return (init_settings,)

    @model_validator(mode="after")
    def _tables_are_configured(self) -> Self:
        if self.tables_connection_string is None and self.tables_endpoint is None:
            connection_string, endpoint = _variable("tables_connection_string"), _variable("tables_endpoint")
            raise ValueError(f"{connection_string} or {endpoint} is required")
        return self

    @model_validator(mode="after")
    def _queue_is_configured(self) -> Self:
        configured = self.servicebus_namespace is not None or self.servicebus_connection_string is not None
        if self.queue_backend == "servicebus" and not configured:
            namespace, connection_string = _variable("servicebus_namespace"), _variable("servicebus_connection_string")
            raise ValueError(
                f"{namespace} or {connection_string} is required when {_variable('queue_backend')} is 'servicebus'"
            )
        return self


class _EnvironmentSource(EnvSettingsSource):
    """Environment variables from `environ` (normally `os.environ`), trimmed; blank ones count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self._environ is os.environ and os.name == "nt":
            self.case_sensitive = False  # Windows' os.environ ignores the case of names.
        values = (
            (name if self.case_sensitive else name.lower(), value.strip()) for name, value in self._environ.items()
        )
        return {name: value for name, value in values if value}


def _problem(error: ErrorDetails) -> str:
    """One validation error as a sentence naming the environment variable, never echoing a secret."""
    reason = error["msg"].removeprefix("Value error, ")  # How pydantic prefixes a validator's ValueError.
    if not error["loc"]:
        return reason  # A cross-variable rule: its message names the variables.
    name = str(error["loc"][0])  # The variable; a field name only if a caller passed field names.
    variable = name if name in _FIELD_OF else _variable(name)
    field = Settings.model_fields[_FIELD_OF[variable]]
    if error["type"] == "missing":
        return f"{variable} is required" + (f" ({field.description})" if field.description else "")
    if not field.repr:
        return f"{variable}: {reason}"
    return f"{variable}: {reason}, got {error['input']!r}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from `env` (default: the process environment), naming any bad variable in the error."""
    source = _EnvironmentSource(_FromEnvironment, os.environ if env is None else env)
    try:
        loaded = _FromEnvironment.model_validate(source())
    except ValidationError as error:
        raise SettingsError("; ".join(_problem(detail) for detail in error.errors(include_url=False))) from None
    return Settings.model_validate(loaded.model_dump())
