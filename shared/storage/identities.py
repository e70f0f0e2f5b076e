"""Genesy identities seen per workspace (Table `identities`): the owners named on exports (`ownerId`, the owner
field) and the senders of activities, so the admin API can list them with whom each resolves to.

One row per workspace and identity, with when it was last seen and, per source (`contact.ownerEmail`,
`activity.sender`, …), when it was last seen there. Written cheaply: the store remembers what this process
wrote, so an identity costs one merge upsert when it is new to the process (and again at most once per
`refresh_seconds`, to keep "last seen" current) and nothing on every other export. A failed write is
logged and forgotten (tried again at the next sighting); it never fails the export.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import TableClient

from shared.platform.logs import logger
from shared.storage.tables import TableStorage, as_utc, escape_key
from shared.storage.transactions import MAX_ENTITIES, submit_upserts

__all__ = ["REFRESH_SECONDS", "IdentityStore", "SeenIdentity", "clean_identity"]

REFRESH_SECONDS = 3600.0
MAX_IDENTITY_CHARS = 320
_MAX_REMEMBERED = 100_000
_SOURCE_PREFIX = "from_"
_NOT_IN_COLUMN = re.compile(r"[^A-Za-z0-9_]")

log = logger("identities")


@dataclass(frozen=True)
class SeenIdentity:
    """An identity as stored: its text, when it was last seen, and when per source."""

    identity: str
    last_seen: datetime | None
    sources: Mapping[str, datetime | None]

    @property
    def role(self) -> str:
        """`owner` when an export named it, else `sender` (only activities did)."""
        return "owner" if any(not s.startswith("activity.") for s in self.sources) else "sender"


def _source_column(source: str) -> str:
    """`contact.ownerEmail` → `from_contact_ownerEmail` (a valid Table property name)."""
    return _SOURCE_PREFIX + _NOT_IN_COLUMN.sub("_", source.replace(".", "_", 1))[:200]


def _source_name(column: str) -> str:
    return column[len(_SOURCE_PREFIX) :].replace("_", ".", 1)


def _row_key(identity: str) -> str:
    return escape_key(identity) if len(identity) <= 200 else "sha:" + hashlib.sha256(identity.encode()).hexdigest()


def clean_identity(value: Any) -> str | None:
    """The identity as stored and compared: trimmed, lower case; None for an empty or oversized value."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    return text if text and len(text) <= MAX_IDENTITY_CHARS else None


class IdentityStore:
    """workspace + identity → last seen, and where from (Table `identities`, created on first use)."""

    def __init__(self, tables: TableStorage, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._tables = tables
        self._refresh = refresh_seconds
        self._written: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    @cached_property
    def _table(self) -> TableClient:
        return self._tables.table("identities")

    def saw(self, workspace_id: str, source: str, identities: Iterable[Any]) -> None:
        """Note identities seen in `source` (e.g. `contact.ownerEmail`, `activity.sender`); writes only the
        ones this process has not written lately."""
        fresh = self._fresh(workspace_id, [(source, i) for i in identities])
        if fresh:
            self._write(workspace_id, fresh)

    def saw_records(
        self, workspace_id: str, kind: str, records: Iterable[Mapping[str, Any]], fields: Sequence[str]
    ) -> None:
        """Note the identities exported records name in `fields` (e.g. `ownerId`, `ownerEmail`)."""
        names = list(dict.fromkeys(fields))
        pairs = [(f"{kind}.{name}", record.get(name)) for record in records for name in names if record.get(name)]
        fresh = self._fresh(workspace_id, pairs)
        if fresh:
            self._write(workspace_id, fresh)

    def _fresh(self, workspace_id: str, pairs: Iterable[tuple[str, Any]]) -> dict[str, set[str]]:
        """identity → sources, for the sightings not written by this process within `refresh_seconds`."""
        now = time.monotonic()
        fresh: dict[str, set[str]] = {}
        with self._lock:
            for source, value in pairs:
                identity = clean_identity(value)
                if identity is None:
                    continue
                key = (workspace_id, identity, source)
                written = self._written.get(key)
                if written is not None and now - written < self._refresh:
                    continue
                if len(self._written) >= _MAX_REMEMBERED:
                    self._written.clear()
                self._written[key] = now
                fresh.setdefault(identity, set()).add(source)
        return fresh

    def _write(self, workspace_id: str, fresh: Mapping[str, set[str]]) -> None:
        at = datetime.now(UTC)
        partition = escape_key(workspace_id)
        entities = [
            {
                "PartitionKey": partition,
                "RowKey": _row_key(identity),
                "identity": identity,
                "last_seen": at,
                **{_source_column(source): at for source in sorted(sources)},
            }
            for identity, sources in fresh.items()
        ]
        try:
            for start in range(0, len(entities), MAX_ENTITIES):
                submit_upserts(self._table, entities[start : start + MAX_ENTITIES], merge=True)
        except AzureError as exc:
            log.warning("could not record %d identities seen: %s", len(entities), type(exc).__name__)
            with self._lock:
                for identity, sources in fresh.items():
                    for source in sources:
                        self._written.pop((workspace_id, identity, source), None)

    def seen(self, workspace_id: str) -> list[SeenIdentity]:
        """Every identity seen in the workspace, most recently seen first."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(workspace_id)})
        found = [
            SeenIdentity(
                identity=str(row.get("identity") or ""),
                last_seen=as_utc(row.get("last_seen")),
                sources={_source_name(k): as_utc(v) for k, v in row.items() if k.startswith(_SOURCE_PREFIX)},
            )
            for row in rows
        ]
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda s: (s.last_seen or oldest, s.identity), reverse=True)
