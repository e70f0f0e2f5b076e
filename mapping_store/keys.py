"""API keys: issued once in plaintext, stored only as an HMAC, found by one point read.

A key looks like `gdk_<key_id>_<secret>`. Its HMAC-SHA256 (keyed with `API_KEY_HASH_SECRET`) is the
RowKey of the lookup row, so resolving a key is a single point read and the table never holds
anything that could be replayed. A per-workspace index (key id → hash, dates) lets an admin list and
rotate keys without ever seeing them again. Rotation never leaves a workspace without a valid key: the
new key is written first, then the old ones get `expires_at = now + grace`.

Keys are never logged or echoed; at most the key id is.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.mappings import ApiKeyRecord
from shared.platform.errors import Unauthorized
from shared.platform.logs import logger
from shared.platform.settings import Settings
from shared.storage.tables import TableStorage, as_utc, escape_key

__all__ = [
    "KEYS_TABLE",
    "KEY_PREFIX",
    "ApiKeys",
    "IssuedKey",
    "hash_key",
    "key_id_of",
    "key_value",
]

log = logger("keys")

KEYS_TABLE = "apikeys"
KEY_PREFIX = "gdk_"
_KEY_SHAPE = re.compile(r"^gdk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_LOOKUP = "k|"  # PartitionKey prefix of lookup rows (followed by the first two hash characters)
_INDEX = "w|"  # PartitionKey prefix of a workspace's key index


def _utcnow() -> datetime:
    return datetime.now(UTC)


def hash_key(secret: str, api_key: str) -> str:
    """The stored form of a key: HMAC-SHA256 keyed with the deployment's hash secret, hex."""
    return hmac.new(secret.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def key_id_of(api_key: str) -> str | None:
    """The public id inside a well-formed key (safe to log), or None."""
    match = _KEY_SHAPE.match(api_key)
    return match.group(1) if match else None


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key: `api_key` is the only time the plaintext exists outside the caller."""

    api_key: str
    key_id: str
    workspace_id: str
    created_at: datetime
    previous_keys_expire_at: datetime | None = None


class ApiKeys:
    """The keys table of one deployment."""

    def __init__(self, settings: Settings, tables: TableStorage, now: Callable[[], datetime] = _utcnow) -> None:
        self.settings = settings
        self._tables = tables
        self._now = now
        # digest → (workspace id, expiry, when read): a verified key skips the table read for
        # `key_cache_seconds`; a rotation in this process drops the workspace's entries at once.
        self._verified: dict[str, tuple[str, datetime | None, float]] = {}
        self._verified_lock = threading.Lock()

    def _forget(self, workspace_id: str) -> None:
        with self._verified_lock:
            for digest in [d for d, v in self._verified.items() if v[0] == workspace_id]:
                del self._verified[digest]

    @property
    def _table(self) -> TableClient:
        return self._tables.table(KEYS_TABLE)

    def _hash(self, api_key: str) -> str:
        return hash_key(self.settings.api_key_hash_secret, api_key)

    # -- issuing ---------------------------------------------------------------------------------

    def issue_key(self, workspace_id: str) -> IssuedKey:
        """A new key for the workspace; existing keys stay valid."""
        key_id = secrets.token_hex(6)
        api_key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        digest = self._hash(api_key)
        created_at = self._now()
        table = self._table
        table.create_entity(
            {
                "PartitionKey": _LOOKUP + digest[:2],
                "RowKey": digest,
                "workspace_id": workspace_id,
                "key_id": key_id,
                "created_at": created_at,
            }
        )
        table.create_entity(
            {
                "PartitionKey": _INDEX + escape_key(workspace_id),
                "RowKey": key_id,
                "key_hash": digest,
                "created_at": created_at,
            }
        )
        log.info("issued API key %s for workspace %s", key_id, workspace_id)
        return IssuedKey(api_key=api_key, key_id=key_id, workspace_id=workspace_id, created_at=created_at)

    def rotate_key(self, workspace_id: str, grace_seconds: float | None = None) -> IssuedKey:
        """Issue a new key, then let every older key expire `grace_seconds` from now (0 = at once)."""
        grace = self.settings.key_grace_seconds if grace_seconds is None else grace_seconds
        self._forget(workspace_id)
        issued = self.issue_key(workspace_id)
        deadline = self._now() + timedelta(seconds=grace)
        latest: datetime | None = None
        table = self._table
        for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": _INDEX + escape_key(workspace_id)}):
            if row["RowKey"] == issued.key_id:
                continue
            current = as_utc(row.get("expires_at"))
            if current is not None and current <= deadline:
                continue
            expires = deadline
            with contextlib.suppress(ResourceNotFoundError):  # already deleted lazily after expiry
                digest = str(row["key_hash"])
                table.update_entity(
                    {"PartitionKey": _LOOKUP + digest[:2], "RowKey": digest, "expires_at": expires},
                    mode=UpdateMode.MERGE,
                )
            table.update_entity(
                {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "expires_at": expires},
                mode=UpdateMode.MERGE,
            )
            latest = expires
            log.info("API key %s of workspace %s expires at %s", row["RowKey"], workspace_id, expires.isoformat())
        return IssuedKey(
            api_key=issued.api_key,
            key_id=issued.key_id,
            workspace_id=workspace_id,
            created_at=issued.created_at,
            previous_keys_expire_at=latest,
        )

    # -- listing ---------------------------------------------------------------------------------

    def records(self, workspace_id: str) -> list[ApiKeyRecord]:
        """The workspace's keys (ids and dates only), oldest first."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _INDEX + escape_key(workspace_id)})
        return sorted((self._record(row) for row in rows), key=lambda r: r.created_at)

    def records_by_workspace(self) -> dict[str, list[ApiKeyRecord]]:
        """Every workspace's keys in one range query (for listing workspaces)."""
        out: dict[str, list[ApiKeyRecord]] = {}
        rows = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi", parameters={"lo": _INDEX, "hi": "w}"}
        )
        for row in rows:
            out.setdefault(str(row["PartitionKey"])[len(_INDEX) :], []).append(self._record(row))
        for records in out.values():
            records.sort(key=lambda r: r.created_at)
        return out

    @staticmethod
    def _record(row: Mapping[str, Any]) -> ApiKeyRecord:
        created = as_utc(row.get("created_at"))
        assert created is not None
        return ApiKeyRecord(key_id=str(row["RowKey"]), created_at=created, expires_at=as_utc(row.get("expires_at")))

    # -- verifying -------------------------------------------------------------------------------

    def resolve(self, api_key: str) -> str:
        """The workspace id a key belongs to; `Unauthorized` for anything unknown, malformed or expired."""
        key_id = key_id_of(api_key)
        if key_id is None:
            raise Unauthorized("invalid API key")
        digest = self._hash(api_key)
        with self._verified_lock:
            cached = self._verified.get(digest)
        fresh = cached is not None and time.monotonic() - cached[2] < self.settings.key_cache_seconds
        if cached is not None and fresh and (cached[1] is None or self._now() < cached[1]):
            return cached[0]
        try:
            row = self._table.get_entity(_LOOKUP + digest[:2], digest)
        except ResourceNotFoundError:
            log.info("rejected unknown API key %s", key_id)
            raise Unauthorized("invalid API key") from None
        if not (
            hmac.compare_digest(str(row["RowKey"]), digest) and hmac.compare_digest(str(row.get("key_id", "")), key_id)
        ):
            raise Unauthorized("invalid API key")
        expires_at = as_utc(row.get("expires_at"))
        if expires_at is not None and self._now() >= expires_at:
            log.info("rejected expired API key %s", key_id)
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(
                    row["PartitionKey"],
                    row["RowKey"],
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            raise Unauthorized("the API key has expired; use the workspace's current key")
        with self._verified_lock:
            self._verified[digest] = (str(row["workspace_id"]), expires_at, time.monotonic())
        return str(row["workspace_id"])


def key_value(value: str) -> str | None:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value if value.startswith(KEY_PREFIX) else None
