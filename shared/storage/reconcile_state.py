"""What reconciliation keeps between runs, in Table Storage (`reconcile` table, one partition per workspace):

- the **lease** (`lease` row): who is running the workspace's reconciliation and until when. Taken with an
  insert, or — when the holder's time ran out — an ETag-conditional replace, so of two runs racing for it
  exactly one wins; released by an ETag-conditional delete (a run never frees a lease another run took over);
- the **run reports** (`run|<reverse time>` rows, newest first): what a run looked at, changed and spent;
- the **per-record marks** (`mark|<kind>|<row key>` rows): how often a failed record was retried by
  reconciliation and when, and whether a record missing from Dynamics was queued again (it is, once).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.domain.odata import odata_literal
from shared.storage.tables import TableStorage, as_utc, escape_key

__all__ = ["Lease", "ReconcileState", "RecordMark"]

_LEASE_ROW = "lease"
_RUN_PREFIX = "run|"
_MARK_PREFIX = "mark|"
_MAX_TICKS = 3_155_378_975_999_999_999
_TICKS_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_REPORT_CHARS = 60_000  # one Table string property holds 64 KiB of UTF-16


@dataclass(frozen=True)
class Lease:
    """A lease held by `holder` until `expires`; `etag` is what releasing it is conditional on."""

    workspace_id: str
    holder: str
    expires: datetime
    etag: str


@dataclass
class RecordMark:
    """Reconciliation's memory of one ledger record: retries it queued, and a re-queue of a missing record."""

    retries: int = 0
    last_retry: datetime | None = None
    requeued_missing: datetime | None = None


def _run_row(at: datetime) -> str:
    ticks = (at - _TICKS_EPOCH) // timedelta(microseconds=1) * 10
    return f"{_RUN_PREFIX}{_MAX_TICKS - ticks:019d}"


class ReconcileState:
    def __init__(self, tables: TableStorage):
        self._table = tables.table("reconcile")

    # -- the lease -----------------------------------------------------------------------------------------

    def acquire(self, workspace_id: str, seconds: float, *, now: datetime | None = None) -> Lease | None:
        """The workspace's lease for `seconds`, or None while another run holds it."""
        now = now or datetime.now(UTC)
        partition = escape_key(workspace_id)
        holder = uuid.uuid4().hex
        expires = now + timedelta(seconds=seconds)
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": _LEASE_ROW, "holder": holder, "expires": expires}
        meta: dict[str, Any] | None
        try:
            meta = dict(self._table.create_entity(entity))
        except ResourceExistsError:
            meta = self._take_over(partition, entity, now)
        if meta is None:
            return None
        return Lease(workspace_id, holder, expires, str(meta.get("etag")))

    def _take_over(self, partition: str, entity: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        try:
            current = self._table.get_entity(partition, _LEASE_ROW)
        except ResourceNotFoundError:  # released in between: take it the ordinary way
            try:
                return dict(self._table.create_entity(entity))
            except ResourceExistsError:
                return None
        expires = as_utc(current.get("expires"))
        if expires is not None and expires > now:
            return None
        try:
            return dict(
                self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceModifiedError, HttpResponseError):  # another run took it over first
            return None

    def release(self, lease: Lease) -> None:
        """Give the lease back, unless its time ran out and another run holds it now."""
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
            self._table.delete_entity(
                escape_key(lease.workspace_id),
                _LEASE_ROW,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )

    # -- run reports ---------------------------------------------------------------------------------------

    def save_report(self, workspace_id: str, report: dict[str, Any], at: datetime) -> None:
        text = json.dumps(report, ensure_ascii=False, default=str, separators=(",", ":"))
        if len(text) > _REPORT_CHARS:
            text = json.dumps({"started": report.get("started"), "truncated": True, "size": len(text)})
        self._table.upsert_entity(
            {"PartitionKey": escape_key(workspace_id), "RowKey": _run_row(at), "report": text}, mode=UpdateMode.REPLACE
        )

    def reports(self, workspace_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest `limit` run reports, newest first."""
        query = (
            f"PartitionKey eq {odata_literal(escape_key(workspace_id))} and RowKey ge '{_RUN_PREFIX}' "
            f"and RowKey lt 'run}}'"
        )
        out: list[dict[str, Any]] = []
        for entity in self._table.query_entities(query, select=["report"], results_per_page=limit):
            out.append(json.loads(str(entity["report"])))
            if len(out) >= limit:
                break
        return out

    # -- per-record marks ----------------------------------------------------------------------------------

    def mark(self, workspace_id: str, kind: str, row_key: str) -> RecordMark:
        try:
            entity = self._table.get_entity(escape_key(workspace_id), escape_key(f"{_MARK_PREFIX}{kind}|{row_key}"))
        except ResourceNotFoundError:
            return RecordMark()
        return RecordMark(
            int(entity.get("retries") or 0), as_utc(entity.get("last_retry")), as_utc(entity.get("requeued_missing"))
        )

    def set_mark(self, workspace_id: str, kind: str, row_key: str, mark: RecordMark) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": escape_key(workspace_id),
            "RowKey": escape_key(f"{_MARK_PREFIX}{kind}|{row_key}"),
            "retries": mark.retries,
        }
        if mark.last_retry is not None:
            entity["last_retry"] = mark.last_retry
        if mark.requeued_missing is not None:
            entity["requeued_missing"] = mark.requeued_missing
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
