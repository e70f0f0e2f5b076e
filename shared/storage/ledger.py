"""The sync ledger and the id aliases, in Table Storage.

Ledger: one row per record and operation (create/update/associate) per workspace, holding the latest
outcome — status, Dynamics id and aliases, Dataverse's code and message, attempts, times — so every
accepted record is either in Dynamics or here with a reason.

Partitions: a workspace's record rows are spread over `SHARDS` partitions (`<workspace>~r<n>`, n from a
hash of the row key), and so are its log index rows (`<workspace>~l<n>`, the record's own n) — Microsoft's
remedy for the append-only "hot partition" (Azure Table design guide, prepend/append anti-pattern): an
export writes ≈ 2 rows per record at up to hundreds of records per second, and one partition per
workspace would take every one of them (Azurite, moreover, scans a partition on every write, so one
growing partition made a 10,000-contact export slow down as it went). A record is still one point read
(its partition follows from its key); the workspace's records are one range query over its `~r`
partitions.

The log: every write of a ledger row also writes an index row, keyed by reverse time (`~` + .NET max
ticks - ticks of `at`, then the record's row key), so within a partition the newest rows come first in
Table Storage's own order: a page of the log is one range query per log partition (status, kind and the
time window filtered by the service), merged newest first, and `limit` means the newest rows. A record
written again gets a new index row; the row it replaces is recognised as stale on read (the record's row
names its current index row in `log_row`), skipped, and deleted. The continuation token is the last
index row key returned — one order across all partitions — so paging is stable while new outcomes arrive
(they sort before it).

Aliases: when the worker finds that a record it was told to create already exists, the id we handed
Genesy becomes an alias of the existing record; later calls with that id reach the right record.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import heapq
import json
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Literal

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.odata import odata_literal
from shared.storage.tables import TableStorage, escape_key
from shared.storage.transactions import MAX_ENTITIES, submit_upserts

__all__ = ["AliasStore", "Ledger", "LedgerEntry", "LedgerPage", "LedgerStatus", "Operation"]

LedgerStatus = Literal[
    "accepted", "created", "updated", "skipped", "failed", "ambiguous", "retrying", "deleted_in_dynamics"
]
Operation = Literal["create", "update", "associate"]
# The log index: .NET's DateTime.MaxValue.Ticks, ticks (100 ns) counted from 0001-01-01 UTC.
_MAX_TICKS = 3_155_378_975_999_999_999
_TICKS_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
# Partitions per workspace for record rows and for log rows (a single hex digit each: at most 16).
SHARDS = 8
_READERS = 10  # point reads in flight when checking a page of the log (the Table client pools 10 connections)


def _now() -> datetime:
    return datetime.now(UTC)


def _reverse_ticks(at: datetime) -> int:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return _MAX_TICKS - (aware - _TICKS_EPOCH) // timedelta(microseconds=1) * 10


def _log_row_key(at: datetime, row_key: str) -> str:
    """The index row of a ledger row written at `at`: newest first in RowKey order."""
    return f"~{_reverse_ticks(at):019d}|{row_key}"


def _shard(row_key: str) -> int:
    return zlib.crc32(row_key.encode()) % SHARDS


def _partition(workspace_id: str, role: Literal["r", "l"], shard: int) -> str:
    """One of the workspace's partitions: record rows (`r`) or log index rows (`l`), shard `shard`."""
    return f"{escape_key(workspace_id)}~{role}{shard:x}"


def _record_partition(workspace_id: str, row_key: str) -> str:
    return _partition(workspace_id, "r", _shard(row_key))


def _log_partition(workspace_id: str, row_key: str) -> str:
    return _partition(workspace_id, "l", _shard(row_key))


def _record_range(workspace_id: str) -> dict[str, str]:
    """Query parameters `lo`/`hi` spanning the workspace's record partitions (`_IN_RECORDS`)."""
    return {"lo": _partition(workspace_id, "r", 0), "hi": _partition(workspace_id, "r", SHARDS - 1)}


_IN_RECORDS = "PartitionKey ge @lo and PartitionKey le @hi"


def encode_continuation(log_row: str) -> str:
    return base64.urlsafe_b64encode(log_row.encode()).decode().rstrip("=")


def decode_continuation(token: str) -> str:
    """The index row key a continuation token stands for; ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a continuation token of this log") from None
    if not (len(text) > 21 and text[0] == "~" and text[1:20].isdigit() and text[20] == "|"):
        raise ValueError("not a continuation token of this log")
    return text


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
    # What it takes to write this record again (kept for failed, retrying and created records).
    retry: dict[str, Any] | None = None
    # Read from the log index, which notes whether the row keeps a retry payload but does not copy it.
    retry_kept: bool = False

    @property
    def row_key(self) -> str:
        return escape_key(f"{self.kind}|{self.operation}|{self.key}")

    @property
    def log_row(self) -> str:
        """This outcome's row in the workspace's log index."""
        return _log_row_key(self.at, self.row_key)

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": _record_partition(self.workspace_id, self.row_key),
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
            "retryable": bool(self.retry),  # read by the summary instead of the payload itself
            "log_row": self.log_row,
        }

    def to_log_entity(self) -> dict[str, Any]:
        """The index row: the outcome without the retry payload, keyed newest first, naming its record's row."""
        entity = self.to_entity()
        entity.pop("retry")
        entity.update(
            PartitionKey=_log_partition(self.workspace_id, self.row_key),
            RowKey=entity.pop("log_row"),
            row=entity["RowKey"],
        )
        return entity

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
            retry_kept=bool(entity.get("retryable")),
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
            # Created rows keep their payload too (reconciliation re-queues a created record lost from Dynamics),
            # but only a failed or retrying record is one an operator can retry.
            "retryable": (bool(self.retry) or self.retry_kept) and self.status in ("failed", "retrying"),
            "at": self.at.isoformat(),
        }


_MAX_RETRY_CHARS = 30_000  # a Table string property holds 32K UTF-16 characters


def _retry_text(retry: dict[str, Any] | None) -> str:
    if not retry:
        return ""
    text = json.dumps(retry, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= _MAX_RETRY_CHARS else ""


def _transactions(entities: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Entity-group transactions (one partition, ≤100 each) upserting `entities`; last write per row wins."""
    by_row: dict[tuple[str, str], dict[str, Any]] = {}
    for entity in entities:
        by_row[(entity["PartitionKey"], entity["RowKey"])] = entity
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for (partition, _), entity in by_row.items():
        by_partition.setdefault(partition, []).append(entity)
    return [
        rows[start : start + MAX_ENTITIES]
        for rows in by_partition.values()
        for start in range(0, len(rows), MAX_ENTITIES)
    ]


def _upsert_all(table: TableClient, entities: Iterable[dict[str, Any]]) -> None:
    """Upsert in entity-group transactions, one after another."""
    for chunk in _transactions(entities):
        submit_upserts(table, chunk)


@dataclass(frozen=True)
class LedgerPage:
    """A page of the log, newest first; `next` continues after it (None: nothing older matched)."""

    entries: list[LedgerEntry]
    next: str | None


_SUMMARY_COLUMNS = [
    "kind",
    "operation",
    "key",
    "status",
    "crm_id",
    "external_id",
    "aliases",
    "code",
    "message",
    "warnings",
    "at",
    "attempts",
    "retryable",
]


class Ledger:
    def __init__(self, tables: TableStorage):
        self._table = tables.table("ledger")
        # Transactions in flight for all of this process's writers (one per partition a call touches).
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ledger-write")

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        """Write each record's latest outcome: its row, and its row in the log index.

        The two go to different partitions (a transaction per partition touched), written at the same
        time: the call returns once all are stored and raises if any failed — the worker's message is then
        redelivered and writes both again (upserts), so a record row naming an index row that is missing, or
        the reverse, lasts only until then. Meanwhile a page of the log skips an index row whose record row names
        another (stale, or not written), and a record whose own index row is not written yet is missing from
        the log for that moment, never shown twice."""
        chosen = list(entries)
        if not chosen:
            return
        rows = [*(e.to_entity() for e in chosen), *(e.to_log_entity() for e in chosen)]
        pending = [self._writers.submit(submit_upserts, self._table, chunk) for chunk in _transactions(rows)]
        errors = [error for future in pending if (error := future.exception()) is not None]
        if errors:
            raise errors[0]

    def get(self, workspace_id: str, kind: str, operation: Operation, key: str) -> LedgerEntry | None:
        row_key = escape_key(f"{kind}|{operation}|{key}")
        try:
            entity = self._table.get_entity(_record_partition(workspace_id, row_key), row_key)
        except ResourceNotFoundError:
            return None
        return LedgerEntry.from_entity(workspace_id, entity)

    def entries(
        self,
        workspace_id: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[LedgerEntry]:
        """The newest `limit` matching records, retry payloads included (for retries and reconciliation,
        which need whole rows; the admin log pages through `log`). Reads every matching record row."""
        query, parameters = _filter(_IN_RECORDS, _record_range(workspace_id), status=status, kind=kind)
        query = _bounded(query, parameters, {"at ge @since": since, "at le @until": until})
        rows = self._table.query_entities(query, parameters=parameters, results_per_page=1000)
        found = (LedgerEntry.from_entity(workspace_id, entity) for entity in rows)
        return heapq.nlargest(limit, found, key=lambda e: e.at)

    def by_crm_id(self, workspace_id: str, crm_id: str) -> list[LedgerEntry]:
        """Every record row of the workspace whose Dynamics id is `crm_id`."""
        query = f"{_IN_RECORDS} and crm_id eq @crm"
        parameters = {**_record_range(workspace_id), "crm": crm_id.lower()}
        rows = self._table.query_entities(query, parameters=parameters)
        return [LedgerEntry.from_entity(workspace_id, entity) for entity in rows]

    def log(
        self,
        workspace_id: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        continuation: str | None = None,
    ) -> LedgerPage:
        """The log, newest first: at most `limit` records' latest outcomes, `at` within [since, until].

        `continuation` is a page's `next`; ValueError when it is not one. One range query per log
        partition, merged newest first, and one point read per row returned to check it is the record's
        current outcome.
        """
        bounds = {
            "RowKey gt @after": decode_continuation(continuation) if continuation else None,
            "RowKey ge @newest": f"~{_reverse_ticks(until):019d}" if until is not None else None,
            "RowKey lt @oldest": f"~{_reverse_ticks(since) + 1:019d}" if since is not None else None,
        }
        streams = []
        page = min(limit + 20, 1000)
        for shard in range(SHARDS):
            partition = _partition(workspace_id, "l", shard)
            query, parameters = _filter("PartitionKey eq @pk", {"pk": partition}, status=status, kind=kind)
            query = _bounded(query, parameters, bounds)
            streams.append(self._table.query_entities(query, parameters=parameters, results_per_page=page))
        rows = heapq.merge(*streams, key=lambda row: str(row["RowKey"]))
        found: list[LedgerEntry] = []
        last = ""
        with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="ledger-log") as pool:
            while chunk := list(islice(rows, min(limit - len(found), 100))):
                for entity in self._current(workspace_id, chunk, pool):
                    found.append(LedgerEntry.from_entity(workspace_id, entity))
                    last = str(entity["RowKey"])
                if len(found) >= limit:
                    more = next(rows, None) is not None
                    return LedgerPage(found, encode_continuation(last) if more else None)
        return LedgerPage(found, None)

    def _current(self, workspace_id: str, chunk: Sequence[Any], pool: ThreadPoolExecutor) -> Iterator[Any]:
        """The index rows of `chunk` that are their record's current outcome, in order; the ones a newer
        outcome replaced are deleted (best effort)."""

        def current_row(index_row: Any) -> str | None:
            row_key = str(index_row.get("row", ""))
            try:
                entity = self._table.get_entity(_record_partition(workspace_id, row_key), row_key, select=["log_row"])
            except ResourceNotFoundError:
                return None
            return str(entity.get("log_row") or "")

        stale = []
        for index_row, current in zip(chunk, pool.map(current_row, chunk), strict=True):
            if current == index_row["RowKey"]:
                yield index_row
            elif current and current < index_row["RowKey"]:  # replaced by a newer outcome
                stale.append(index_row)
        by_partition: dict[str, list[Any]] = {}
        for row in stale:
            by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
        for rows in by_partition.values():
            with contextlib.suppress(AzureError):  # another reader may have deleted them first
                self._table.submit_transaction([("delete", row) for row in rows])

    def reindex(self, workspace_id: str) -> int:
        """Bring rows of an earlier layout into this one; how many moved. Rows written before the log index
        existed get their index row; rows of the single-partition layout (`<workspace>`, `<workspace>~log`)
        move to the sharded partitions and leave the old ones."""
        rows = self._table.query_entities(_IN_RECORDS, parameters=_record_range(workspace_id))
        missing = [LedgerEntry.from_entity(workspace_id, e) for e in rows if not e.get("log_row")]
        old = escape_key(workspace_id)
        legacy = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": old}))
        moved = [LedgerEntry.from_entity(workspace_id, e) for e in legacy]
        self.record([*missing, *moved])
        for partition in (old, f"{old}~log"):
            keys = [row["RowKey"] for row in self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])]  # fmt: skip
            for start in range(0, len(keys), MAX_ENTITIES):
                deletes = [
                    ("delete", {"PartitionKey": partition, "RowKey": k}) for k in keys[start : start + MAX_ENTITIES]
                ]
                self._table.submit_transaction(deletes)
        return len(missing) + len(moved)

    def summary(self, workspace_id: str) -> dict[str, Any]:
        """Sync health: counts by kind and status, records with warnings by kind, and the latest records
        that need attention (failed, retrying, ambiguous) with their reasons, warnings and aliases."""
        counts: dict[str, dict[str, int]] = {}
        warnings: dict[str, int] = {}
        failures: list[LedgerEntry] = []
        legacy: set[str] = set()
        rows = self._table.query_entities(_IN_RECORDS, parameters=_record_range(workspace_id), select=_SUMMARY_COLUMNS)
        for entity in rows:
            entry = LedgerEntry.from_entity(workspace_id, entity)
            bucket = counts.setdefault(entry.kind, {})
            bucket[entry.status] = bucket.get(entry.status, 0) + 1
            if entry.warnings:
                warnings[entry.kind] = warnings.get(entry.kind, 0) + 1
            if entry.status in ("failed", "retrying", "ambiguous"):
                failures.append(entry)
                if "retryable" not in entity:
                    legacy.add(entry.row_key)
        attention = heapq.nlargest(50, failures, key=lambda e: e.at)
        for entry in attention:  # a row written before `retryable` was kept beside the payload: read it
            if entry.row_key in legacy and (full := self.get(workspace_id, entry.kind, entry.operation, entry.key)):
                entry.retry_kept = bool(full.retry)
        return {"counts": counts, "warnings": warnings, "attention": [f.as_dict() for f in attention]}


def _bounded(query: str, parameters: dict[str, Any], clauses: Mapping[str, Any]) -> str:
    """`query` with each `"<column> <op> @<name>"` clause whose value is not None, its value in `parameters`."""
    for clause, value in clauses.items():
        if value is not None:
            query += f" and {clause}"
            parameters[clause.rsplit("@", 1)[1]] = value
    return query


def _filter(
    base: str, partitions: Mapping[str, str], *, status: str | None, kind: str | None
) -> tuple[str, dict[str, Any]]:
    query, parameters = base, dict[str, Any](partitions)
    if status:
        query += " and status eq @status"
        parameters["status"] = status
    if kind:
        query += " and kind eq @kind"
        parameters["kind"] = kind
    return query, parameters


class AliasStore:
    """alias id → Dynamics id, per workspace and kind. An alias never changes once set, so found aliases
    are cached for the life of the process; misses are not (another process may add the alias later).

    The marks of ids we issued that are now written (one per record the app created) live in a table of
    their own (`issued`), so the alias lookups every call makes read a table that holds only the rare
    aliases, alternatives and deletions (Table Storage answers an OR of row keys by scanning the partition,
    Azurite by scanning the table). Being written never ends either, so written ids are cached too."""

    def __init__(self, tables: TableStorage):
        self._table = tables.table("aliases")
        self._issued = tables.table("issued")
        self._cache: dict[tuple[str, str, str], str] = {}
        self._written: set[tuple[str, str, str]] = set()
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
        fresh = list(dict.fromkeys(i.lower() for i in ids))
        entities = [{"PartitionKey": escape_key(workspace_id), "RowKey": escape_key(f"{kind}|{i}")} for i in fresh]
        if entities:
            _upsert_all(self._issued, entities)
        with self._lock:
            self._written.update((workspace_id, kind, i) for i in fresh)

    def written(self, workspace_id: str, kind: str, ids: Iterable[str]) -> set[str]:
        """The ids among `ids` that `mark_written` has seen: an issued id not in it is still pending."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        with self._lock:
            unknown = [i for i in wanted if (workspace_id, kind, i) not in self._written]
        found = {key for key, _ in self._rows(workspace_id, kind, unknown, self._issued)}
        missing = [i for i in unknown if i not in found]
        # Marks written before they had a table of their own.
        found |= {key for key, _ in self._rows(workspace_id, f"{kind}-written", missing)}
        with self._lock:
            self._written.update((workspace_id, kind, i) for i in found)
            return {i for i in wanted if (workspace_id, kind, i) in self._written}

    def set_delta(self, workspace_id: str, table: str, link: str) -> None:
        """Remember the change-tracking delta link of a Dynamics table for the workspace."""
        entity = {"PartitionKey": escape_key(workspace_id), "RowKey": escape_key(f"delta|{table}"), "link": link}
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def delta(self, workspace_id: str, table: str) -> str | None:
        """The stored delta link of a Dynamics table (None before the first sync)."""
        try:
            entity = self._table.get_entity(escape_key(workspace_id), escape_key(f"delta|{table}"))
        except ResourceNotFoundError:
            return None
        return str(entity.get("link") or "") or None

    def mark_deleted(self, workspace_id: str, kind: str, ids: Iterable[str], when: datetime) -> None:
        """Remember that the records with these ids were deleted in Dynamics at `when`."""
        entities = [
            {
                "PartitionKey": escape_key(workspace_id),
                "RowKey": escape_key(f"{kind}-deleted|{i.lower()}"),
                "at": when,
            }
            for i in dict.fromkeys(ids)
        ]
        if entities:
            _upsert_all(self._table, entities)

    def deleted(self, workspace_id: str, kind: str, ids: Iterable[str]) -> dict[str, datetime]:
        """id → when it was deleted in Dynamics, for the ids among `ids` marked deleted."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        out: dict[str, datetime] = {}
        for key, entity in self._rows(workspace_id, f"{kind}-deleted", wanted):
            at = entity.get("at")
            out[key] = at if isinstance(at, datetime) else _now()
        return out

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

    def _rows(
        self, workspace_id: str, prefix: str, keys: Sequence[str], table: TableClient | None = None
    ) -> Iterable[tuple[str, Any]]:
        """(key, entity) of the rows `prefix|key` that exist; one query per 40 keys."""
        partition = odata_literal(escape_key(workspace_id))
        for start in range(0, len(keys), 40):
            chunk = keys[start : start + 40]
            rows = " or ".join(f"RowKey eq {odata_literal(escape_key(f'{prefix}|{k}'))}" for k in chunk)
            for entity in (table or self._table).query_entities(f"PartitionKey eq {partition} and ({rows})"):
                yield str(entity["RowKey"]).split("|", 1)[1], entity
