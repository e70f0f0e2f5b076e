"""Operating the sync: health, the log of outcomes, retries, dead-letter replay, reconciliation and
export preview (dry run). Validation of mappings against live Dynamics metadata: `shared.services.validation`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.write_messages import WriteItem, WriteMessage
from shared.messaging.outgoing import to_outgoing
from shared.platform.errors import BadRequest
from shared.platform.logs import logger
from shared.services import preview
from shared.services.reconciliation import reconcile_changes
from shared.services.root import Services, WorkspaceContext
from shared.storage.ledger import LedgerEntry

__all__ = [
    "preview_export",
    "reconcile",
    "reconcile_workspace",
    "replay_dead_letters",
    "retry_failed",
    "sync_health",
    "sync_log",
]

log = logger("operations")


def sync_health(services: Services, workspace_id: str) -> dict[str, Any]:
    """Counts by kind and status, records with warnings by kind, and the records that need attention, with
    Dataverse's reasons, the mapping's warnings and the record's aliases."""
    services.store.get_workspace(workspace_id)
    return {"workspace_id": workspace_id, **services.ledger.summary(workspace_id)}


def sync_log(
    services: Services,
    workspace_id: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The log, newest first: `{"entries": [...], "next": token or None}` (pass `next` as `continuation`)."""
    services.store.get_workspace(workspace_id)
    try:
        page = services.ledger.log(
            workspace_id, status=status, kind=kind, since=since, until=until, limit=limit, continuation=continuation
        )
    except ValueError as exc:
        raise BadRequest(f"continuation: {exc}") from None
    return {"entries": [e.as_dict() for e in page.entries], "next": page.next}


def retry_failed(
    services: Services,
    workspace_id: str,
    *,
    statuses: Sequence[str] = ("failed", "retrying"),
    kind: str | None = None,
    keys: Iterable[str] | None = None,
    older_than: timedelta | None = None,
) -> dict[str, int]:
    """Queue failed records again, in their original order of operations (creates, updates, links)."""
    services.store.get_workspace(workspace_id)
    ledger = services.ledger
    wanted = set(keys) if keys is not None else None
    cutoff = datetime.now(UTC) - older_than if older_than else None
    chosen = (
        entry
        for status in statuses
        for entry in ledger.entries(workspace_id, status=status, kind=kind)
        if _chosen_for_retry(entry, wanted, cutoff)
    )
    groups, not_retryable = _retry_messages(chosen)
    nonce = uuid.uuid4().hex
    sender, settings = services.sender, services.settings
    requeued = 0
    for group, pairs in sorted(groups.items(), key=lambda g: _OPERATION_ORDER.get(g[0][0], 3)):
        sender.send(settings.writes_queue, to_outgoing(_retry_message(workspace_id, group, pairs, nonce)))
        _mark_queued_again(pairs, nonce)
        ledger.record(entry for entry, _ in pairs)
        requeued += len(pairs)
    return {"requeued": requeued, "not_retryable": not_retryable}


# A retried message is identified by (operation, kind, export values as JSON).
_RetryGroup = tuple[str, str, str]
_RetryPairs = list[tuple[LedgerEntry, WriteItem]]
_OPERATION_ORDER = {"create": 0, "update": 1, "associate": 2}


def _chosen_for_retry(entry: LedgerEntry, wanted: set[str] | None, cutoff: datetime | None) -> bool:
    """Whether the caller's key and age filters keep this ledger entry."""
    if wanted is not None and entry.key not in wanted:
        return False
    return not (cutoff and entry.at > cutoff)


def _retry_messages(entries: Iterable[LedgerEntry]) -> tuple[dict[_RetryGroup, _RetryPairs], int]:
    """The retryable entries grouped by the message they go back in, and how many cannot be retried."""
    groups: dict[_RetryGroup, _RetryPairs] = {}
    not_retryable = 0
    for entry in entries:
        if not entry.retry:
            not_retryable += 1
            continue
        retry = entry.retry
        group = (str(retry["operation"]), str(retry["kind"]), json.dumps(retry.get("export_values") or {}))
        groups.setdefault(group, []).append((entry, WriteItem.model_validate(retry["item"])))
    return groups, not_retryable


def _retry_message(workspace_id: str, group: _RetryGroup, pairs: _RetryPairs, nonce: str) -> WriteMessage:
    operation, record_kind, values = group
    return WriteMessage(
        operation=operation,
        workspace_id=workspace_id,
        kind=record_kind,
        items=[item for _, item in pairs],
        export_values=json.loads(values),
        correlation_id=f"retry-{nonce}",
        retry_of=nonce,
    )


def _mark_queued_again(pairs: _RetryPairs, nonce: str) -> None:
    for entry, _ in pairs:
        entry.status = "accepted"
        entry.message = f"queued again by retry {nonce} (was: {entry.message or entry.status})"
        entry.at = datetime.now(UTC)


def replay_dead_letters(services: Services, queue: str, *, limit: int = 1000) -> int:
    """Move dead-lettered messages back onto their queue (same session, fresh message id)."""
    settings = services.settings
    if queue not in (settings.writes_queue, settings.campaign_queue):
        raise ValueError(f"unknown queue {queue!r}")
    return services.sender.replay_dead_letters(queue, limit=limit)


def reconcile(services: Services, *, stale_after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """Timer job: re-queue records left `retrying` (their message died) and log each workspace's health."""
    workspaces = services.store.list_workspaces()
    return {w.id: reconcile_workspace(services, w.id, stale_after=stale_after) for w in workspaces}


def reconcile_workspace(
    services: Services, workspace_id: str, *, stale_after: timedelta = timedelta(hours=1)
) -> dict[str, Any]:
    """Reconciliation of one workspace: `{"requeued": n, "failed": n, "changes": {...}}` — the merges and
    deletions done in Dynamics (`shared.services.reconciliation`) — (NotFound for an unknown workspace)."""
    changes = reconcile_changes(services.workspace(workspace_id))
    outcome = retry_failed(services, workspace_id, statuses=("retrying",), older_than=stale_after)
    health = services.ledger.summary(workspace_id)
    failed = sum(c.get("failed", 0) for c in health["counts"].values())
    if outcome["requeued"] or failed:
        log.warning(
            "workspace %s: %d stale records re-queued, %d records failed (see sync health)",
            workspace_id,
            outcome["requeued"],
            failed,
        )
    return {"requeued": outcome["requeued"], "failed": failed, "changes": changes}


def preview_export(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], export_values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A dry run of an export: the match, the exact body and the diff per column (`shared.services.preview`)."""
    return [r.model_dump(mode="json") for r in preview.preview_export(ctx, kind, records, export_values)]
