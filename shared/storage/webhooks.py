"""Genesy webhooks per workspace: the secrets (Table `webhooksecrets`) and the deliveries received
(Table `webhookdeliveries`).

- A secret is kept only as the HMAC the caller computed (this layer never sees a plaintext); rotation
  writes the new row first, then gives every older row `expires_at = now + grace`. Verification reads
  the workspace's few rows and compares each digest in constant time.
- A delivery row is keyed by workspace and delivery id (derived from the event id by the caller, so a
  retried delivery is the same row). It keeps the raw body (up to `MAX_BODY_CHARS`), the parse outcome
  (`parsed|unparsed|ignored`), the processing status and the reason.
- Retention is bounded: rows older than `RETENTION_DAYS` are deleted, and at most `max_rows` are kept per
  workspace (the oldest go first). Pruning is opportunistic, on writing a new delivery: the age check on
  every new row (a filtered query that usually returns nothing), the count check on one new row in
  `COUNT_CHECK_EVERY` (a scan of the partition's keys).
"""

from __future__ import annotations

import contextlib
import hmac
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.storage.tables import TableStorage, as_utc, escape_key

__all__ = [
    "COUNT_CHECK_EVERY",
    "DELIVERY_STATUSES",
    "MAX_BODY_CHARS",
    "MAX_DELIVERIES_PER_WORKSPACE",
    "RETENTION_DAYS",
    "Delivery",
    "DeliveryStatus",
    "ParseOutcome",
    "WebhookStore",
]

RETENTION_DAYS = 30
MAX_DELIVERIES_PER_WORKSPACE = 5000
MAX_BODY_CHARS = 30_000
COUNT_CHECK_EVERY = 20

ParseOutcome = Literal["parsed", "unparsed", "ignored"]
DeliveryStatus = Literal["received", "processed", "waiting", "unparsed", "ignored", "failed"]
DELIVERY_STATUSES: tuple[str, ...] = ("received", "processed", "waiting", "unparsed", "ignored", "failed")
_LIST_COLUMNS = [
    "RowKey",
    "event_type",
    "event_id",
    "outcome",
    "status",
    "reason",
    "received_at",
    "processed_at",
    "attempts",
    "contact_id",
    "truncated",
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Delivery:
    """One stored delivery (the body only when read one by one)."""

    id: str
    workspace_id: str
    received_at: datetime
    status: DeliveryStatus = "received"
    outcome: ParseOutcome | None = None
    reason: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    contact_id: str | None = None
    processed_at: datetime | None = None
    attempts: int = 0
    truncated: bool = False
    body: str | None = field(default=None, repr=False)

    def view(self) -> dict[str, Any]:
        """What the admin API shows (no body)."""
        return {
            "id": self.id,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "outcome": self.outcome,
            "status": self.status,
            "reason": self.reason,
            "contact_id": self.contact_id,
            "received_at": self.received_at.isoformat(),
            "processed_at": self.processed_at.isoformat() if self.processed_at else None,
            "attempts": self.attempts,
            "truncated": self.truncated,
        }


def _delivery(workspace_id: str, row: Mapping[str, Any]) -> Delivery:
    received = as_utc(row.get("received_at")) or _utcnow()
    return Delivery(
        id=str(row["RowKey"]),
        workspace_id=workspace_id,
        received_at=received,
        status=row.get("status") or "received",
        outcome=row.get("outcome") or None,
        reason=row.get("reason") or None,
        event_type=row.get("event_type") or None,
        event_id=row.get("event_id") or None,
        contact_id=row.get("contact_id") or None,
        processed_at=as_utc(row.get("processed_at")),
        attempts=int(row.get("attempts") or 0),
        truncated=bool(row.get("truncated")),
        body=row.get("body"),
    )


class WebhookStore:
    """The workspaces' webhook secrets (as HMACs) and the deliveries received."""

    def __init__(
        self,
        tables: TableStorage,
        *,
        now: Callable[[], datetime] = _utcnow,
        max_rows: int = MAX_DELIVERIES_PER_WORKSPACE,
        retention_days: int = RETENTION_DAYS,
    ) -> None:
        self._tables = tables
        self._now = now
        self.max_rows = max_rows
        self.retention_days = retention_days

    @property
    def _secrets(self) -> TableClient:
        return self._tables.table("webhooksecrets")

    @property
    def _deliveries(self) -> TableClient:
        return self._tables.table("webhookdeliveries")

    # -- secrets -----------------------------------------------------------------------------------

    def rotate_secret(self, workspace_id: str, digest: str, grace_seconds: float) -> datetime | None:
        """Store the new secret's digest, then let older secrets expire `grace_seconds` from now;
        returns when the last of them expires (None when there was none)."""
        table = self._secrets
        partition = escape_key(workspace_id)
        now = self._now()
        table.upsert_entity({"PartitionKey": partition, "RowKey": digest, "created_at": now}, mode=UpdateMode.REPLACE)
        deadline = now + timedelta(seconds=grace_seconds)
        latest: datetime | None = None
        for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}):
            if row["RowKey"] == digest:
                continue
            current = as_utc(row.get("expires_at"))
            if current is not None and current <= now:
                with contextlib.suppress(ResourceNotFoundError):
                    table.delete_entity(partition, row["RowKey"])
                continue
            expires = deadline if current is None or current > deadline else current
            if current != expires:
                table.update_entity(
                    {"PartitionKey": partition, "RowKey": row["RowKey"], "expires_at": expires}, mode=UpdateMode.MERGE
                )
            latest = max(latest, expires) if latest else expires
        return latest

    def verify_secret(self, workspace_id: str, digest: str) -> bool:
        """Whether `digest` is a current (or still in its grace period) secret of the workspace."""
        now = self._now()
        found = False
        rows = self._secrets.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(workspace_id)})
        for row in rows:
            expires = as_utc(row.get("expires_at"))
            same = hmac.compare_digest(str(row["RowKey"]), digest)
            found = found or (same and (expires is None or now < expires))
        return found

    def has_secret(self, workspace_id: str) -> bool:
        rows = self._secrets.query_entities(
            "PartitionKey eq @pk", parameters={"pk": escape_key(workspace_id)}, select=["RowKey"]
        )
        return any(True for _ in rows)

    # -- deliveries --------------------------------------------------------------------------------

    def get(self, workspace_id: str, delivery_id: str) -> Delivery | None:
        try:
            row = self._deliveries.get_entity(escape_key(workspace_id), escape_key(delivery_id))
        except ResourceNotFoundError:
            return None
        return _delivery(workspace_id, row)

    def create(self, workspace_id: str, delivery_id: str, body: str, **fields: Any) -> Delivery | None:
        """Store a new delivery; None when the row exists already (a retried delivery)."""
        now = self._now()
        entity: dict[str, Any] = {
            "PartitionKey": escape_key(workspace_id),
            "RowKey": escape_key(delivery_id),
            "body": body[:MAX_BODY_CHARS],
            "truncated": len(body) > MAX_BODY_CHARS,
            "received_at": now,
            "status": "received",
            "attempts": 0,
            **{k: v for k, v in fields.items() if v is not None},
        }
        try:
            self._deliveries.create_entity(entity)
        except ResourceExistsError:
            return None
        self._prune(workspace_id, now)
        return _delivery(workspace_id, entity)

    def settle(
        self,
        delivery: Delivery,
        *,
        status: DeliveryStatus,
        outcome: ParseOutcome,
        reason: str | None = None,
        event_type: str | None = None,
        event_id: str | None = None,
        contact_id: str | None = None,
    ) -> Delivery:
        """Record how processing (or re-processing) ended."""
        delivery.status, delivery.outcome, delivery.reason = status, outcome, reason
        delivery.event_type = event_type or delivery.event_type
        delivery.event_id = event_id or delivery.event_id
        delivery.contact_id = contact_id or delivery.contact_id
        delivery.processed_at = self._now()
        delivery.attempts += 1
        self._deliveries.update_entity(
            {
                "PartitionKey": escape_key(delivery.workspace_id),
                "RowKey": escape_key(delivery.id),
                "status": status,
                "outcome": outcome,
                "reason": (reason or "")[:1000],
                "event_type": delivery.event_type or "",
                "event_id": delivery.event_id or "",
                "contact_id": delivery.contact_id or "",
                "processed_at": delivery.processed_at,
                "attempts": delivery.attempts,
            },
            mode=UpdateMode.MERGE,
        )
        return delivery

    def recent(self, workspace_id: str, *, status: str | None = None, limit: int = 50) -> list[Delivery]:
        """The workspace's deliveries, newest first (bodies left out)."""
        query, parameters = "PartitionKey eq @pk", {"pk": escape_key(workspace_id)}
        if status:
            query, parameters = query + " and status eq @status", {**parameters, "status": status}
        rows = self._deliveries.query_entities(query, parameters=parameters, select=_LIST_COLUMNS)
        deliveries = [_delivery(workspace_id, row) for row in rows]
        deliveries.sort(key=lambda d: (d.received_at, d.id), reverse=True)
        return deliveries[:limit]

    def get_many(self, workspace_id: str, ids: Iterable[str]) -> list[Delivery]:
        return [d for d in (self.get(workspace_id, i) for i in dict.fromkeys(ids)) if d is not None]

    def _prune(self, workspace_id: str, now: datetime) -> None:
        table = self._deliveries
        partition = escape_key(workspace_id)
        cutoff = now - timedelta(days=self.retention_days)
        old = table.query_entities(
            "PartitionKey eq @pk and received_at lt @cutoff",
            parameters={"pk": partition, "cutoff": cutoff},
            select=["RowKey"],
        )
        for row in list(old):
            with contextlib.suppress(ResourceNotFoundError):
                table.delete_entity(partition, row["RowKey"])
        if self.max_rows >= MAX_DELIVERIES_PER_WORKSPACE and random.randrange(COUNT_CHECK_EVERY):
            return
        rows = list(
            table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey", "received_at"])
        )
        if len(rows) <= self.max_rows:
            return
        rows.sort(key=lambda r: (as_utc(r.get("received_at")) or now, str(r["RowKey"])))
        for row in rows[: len(rows) - self.max_rows]:
            with contextlib.suppress(ResourceNotFoundError):
                table.delete_entity(partition, row["RowKey"])
