"""The sync ledger and the id aliases, in Table Storage.

Ledger: one row per record and operation (create/update/associate) per workspace, holding the latest
outcome — status, Dynamics id and aliases, Dataverse's code and message, attempts, times — so every
accepted record is either in Dynamics or here with a reason.

Aliases: when the worker finds that a record it was told to create already exists, the id we handed
Genesy becomes an alias of the existing record; later calls with that id reach the right record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.odata import odata_literal
from shared.storage.tables import TableStorage, escape_key

__all__ = ["AliasStore", "Ledger", "LedgerEntry", "LedgerStatus", "Operation"]

LedgerStatus = Literal["accepted", "created", "updated", "skipped", "failed", "ambiguous", "retrying"]
Operation = Literal["create", "update", "associate"]
_TX_LIMIT = 100


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerEntry:
    workspace_id: str
    kind: str  # contact | company | association
    operation: Operation
    key: str  # externalId, crmId, or "contactId>companyId"
    status: LedgerStatus
    crm_id: str | None = None
    external_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    code: str | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    attempts: int = 1
    message_id: str | None = None
    correlation_id: str | None = None
    at: datetime = field(default_factory=_now)
    # What it takes to retry this record (kept for failed/retrying records only).
    retry: dict[str, Any] | None = None

    @property
    def row_key(self) -> str:
        return escape_key(f"{self.kind}|{self.operation}|{self.key}")

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": escape_key(self.workspace_id),
            "RowKey": self.row_key,
            "kind": self.kind,
            "operation": self.operation,
            "key": self.key[:1000],
            "status": self.status,
            "crm_id": self.crm_id or "",
            "external_id": (self.external_id or "")[:1000],
            "aliases": json.dumps(self.aliases),
            "code": self.code or "",
            "message": (self.message or "")[:4000],
            "warnings": json.dumps(self.warnings[:20])[:8000],
            "attempts": self.attempts,
            "message_id": self.message_id or "",
            "correlation_id": self.correlation_id or "",
            "at": self.at,
            "retry": _retry_text(self.retry),
        }

    @classmethod
    def from_entity(cls, workspace_id: str, entity: Mapping[str, Any]) -> LedgerEntry:
        at = entity.get("at")
        return cls(
            workspace_id=workspace_id,
            kind=str(entity.get("kind", "")),
            operation=entity.get("operation", "create"),
            key=str(entity.get("key", "")),
            status=entity.get("status", "accepted"),
            crm_id=entity.get("crm_id") or None,
            external_id=entity.get("external_id") or None,
            aliases=json.loads(entity.get("aliases") or "[]"),
            code=entity.get("code") or None,
            message=entity.get("message") or None,
            warnings=json.loads(entity.get("warnings") or "[]"),
            attempts=int(entity.get("attempts", 1)),
            message_id=entity.get("message_id") or None,
            correlation_id=entity.get("correlation_id") or None,
            at=at if isinstance(at, datetime) else _now(),
            retry=json.loads(entity["retry"]) if entity.get("retry") else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "operation": self.operation,
            "key": self.key,
            "status": self.status,
            "crmId": self.crm_id,
            "externalId": self.external_id,
            "aliases": self.aliases,
            "code": self.code,
            "message": self.message,
            "warnings": self.warnings,
            "attempts": self.attempts,
            "retryable": bool(self.retry),
            "at": self.at.isoformat(),
        }


_MAX_RETRY_CHARS = 30_000  # a Table string property holds 32K UTF-16 characters


def _retry_text(retry: dict[str, Any] | None) -> str:
    if not retry:
        return ""
    text = json.dumps(retry, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= _MAX_RETRY_CHARS else ""


def _upsert_all(table: TableClient, entities: Sequence[dict[str, Any]]) -> None:
    """Upsert in entity-group transactions (one partition, ≤100 each); last write per row wins."""
    by_row: dict[tuple[str, str], dict[str, Any]] = {}
    for entity in entities:
        by_row[(entity["PartitionKey"], entity["RowKey"])] = entity
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for (partition, _), entity in by_row.items():
        by_partition.setdefault(partition, []).append(entity)
    for rows in by_partition.values():
        for start in range(0, len(rows), _TX_LIMIT):
            chunk = rows[start : start + _TX_LIMIT]
            table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in chunk])


class Ledger:
    def __init__(self, tables: TableStorage):
        self._table = tables.table("ledger")

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        _upsert_all(self._table, [e.to_entity() for e in entries])

    def get(self, workspace_id: str, kind: str, operation: Operation, key: str) -> LedgerEntry | None:
        row_key = escape_key(f"{kind}|{operation}|{key}")
        try:
            entity = self._table.get_entity(escape_key(workspace_id), row_key)
        except ResourceNotFoundError:
            return None
        return LedgerEntry.from_entity(workspace_id, entity)

    def entries(
        self, workspace_id: str, *, status: str | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[LedgerEntry]:
        query = f"PartitionKey eq {odata_literal(escape_key(workspace_id))}"
        if status:
            query += f" and status eq {odata_literal(status)}"
        if kind:
            query += f" and kind eq {odata_literal(kind)}"
        out: list[LedgerEntry] = []
        for entity in self._table.query_entities(query, results_per_page=min(limit, 1000)):
            out.append(LedgerEntry.from_entity(workspace_id, entity))
            if len(out) >= limit:
                break
        return out

    def summary(self, workspace_id: str) -> dict[str, Any]:
        """Sync health: counts by kind and status, and the latest failures with their reasons."""
        counts: dict[str, dict[str, int]] = {}
        failures: list[LedgerEntry] = []
        query = f"PartitionKey eq {odata_literal(escape_key(workspace_id))}"
        select = [
            "kind",
            "operation",
            "key",
            "status",
            "crm_id",
            "external_id",
            "code",
            "message",
            "at",
            "attempts",
            "retry",
        ]
        for entity in self._table.query_entities(query, select=select):
            entry = LedgerEntry.from_entity(workspace_id, entity)
            bucket = counts.setdefault(entry.kind, {})
            bucket[entry.status] = bucket.get(entry.status, 0) + 1
            if entry.status in ("failed", "retrying", "ambiguous"):
                failures.append(entry)
        failures.sort(key=lambda e: e.at, reverse=True)
        return {"counts": counts, "attention": [f.as_dict() for f in failures[:50]]}


class AliasStore:
    """alias id → Dynamics id, per workspace and kind. An alias never changes once set, so found aliases
    are cached for the life of the process; misses are not (another process may add the alias later)."""

    def __init__(self, tables: TableStorage):
        self._table = tables.table("aliases")
        self._cache: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def add(self, workspace_id: str, kind: str, pairs: Mapping[str, str]) -> None:
        entities = [
            {
                "PartitionKey": escape_key(workspace_id),
                "RowKey": escape_key(f"{kind}|{alias.lower()}"),
                "target": target.lower(),
            }
            for alias, target in pairs.items()
        ]
        _upsert_all(self._table, entities)
        with self._lock:
            for alias, target in pairs.items():
                self._cache[(workspace_id, kind, alias.lower())] = target.lower()

    def resolve(self, workspace_id: str, kind: str, ids: Iterable[str]) -> dict[str, str]:
        """id → the id to use in Dynamics (itself when it is no alias). One query per 40 unknown ids."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        out: dict[str, str] = {}
        unknown: list[str] = []
        with self._lock:
            for item in wanted:
                cached = self._cache.get((workspace_id, kind, item))
                if cached is None:
                    unknown.append(item)
                else:
                    out[item] = cached
        found = {key: str(entity["target"]) for key, entity in self._rows(workspace_id, kind, unknown)}
        with self._lock:
            for item in unknown:
                if item in found:
                    self._cache[(workspace_id, kind, item)] = found[item]
                out[item] = found.get(item, item)
        return out

    def mark_written(self, workspace_id: str, kind: str, ids: Iterable[str]) -> None:
        """Remember that records with these ids (ones we issued) now exist in Dynamics."""
        entities = [
            {"PartitionKey": escape_key(workspace_id), "RowKey": escape_key(f"{kind}-written|{i.lower()}")}
            for i in dict.fromkeys(ids)
        ]
        if entities:
            _upsert_all(self._table, entities)

    def written(self, workspace_id: str, kind: str, ids: Iterable[str]) -> set[str]:
        """The ids among `ids` that `mark_written` has seen: an issued id not in it is still pending."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        return {key for key, _ in self._rows(workspace_id, f"{kind}-written", wanted)}

    def add_alternatives(self, workspace_id: str, kind: str, groups: Mapping[str, Sequence[str]]) -> None:
        """Remember the other records an ambiguous match passed over (winner id → the others)."""
        entities = [
            {
                "PartitionKey": escape_key(workspace_id),
                "RowKey": escape_key(f"{kind}-alternatives|{winner.lower()}"),
                "alternatives": json.dumps(sorted(a.lower() for a in others)),
            }
            for winner, others in groups.items()
            if others
        ]
        _upsert_all(self._table, entities)

    def alternatives(self, workspace_id: str, kind: str, ids: Iterable[str]) -> dict[str, list[str]]:
        """winner id → the records its ambiguous match passed over, for the ids that have any."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        rows = self._rows(workspace_id, f"{kind}-alternatives", wanted)
        return {key: list(json.loads(entity["alternatives"])) for key, entity in rows}

    def _rows(self, workspace_id: str, prefix: str, keys: Sequence[str]) -> Iterable[tuple[str, Any]]:
        """(key, entity) of the rows `prefix|key` that exist; one query per 40 keys."""
        partition = odata_literal(escape_key(workspace_id))
        for start in range(0, len(keys), 40):
            chunk = keys[start : start + 40]
            rows = " or ".join(f"RowKey eq {odata_literal(escape_key(f'{prefix}|{k}'))}" for k in chunk)
            for entity in self._table.query_entities(f"PartitionKey eq {partition} and ({rows})"):
                yield str(entity["RowKey"]).split("|", 1)[1], entity
