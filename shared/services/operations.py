"""Operating the sync: health, the log of outcomes, retries, dead-letter replay, reconciliation and
export preview (dry run). Validation of mappings against live Dynamics metadata: `shared.services.validation`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.platform.errors import BadRequest
from shared.platform.logs import logger
from shared.services import preview
from shared.services.reconcile_run import reconcile_all, run_reconciliation
from shared.services.requeue import requeue
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
    Dataverse's reasons, the mapping's warnings and the record's aliases; the last reconciliation run."""
    services.store.get_workspace(workspace_id)
    last = next(iter(services.reconcile_state.reports(workspace_id, 1)), None)
    return {"workspace_id": workspace_id, **services.ledger.summary(workspace_id), "last_reconciliation": last}


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
    wanted = set(keys) if keys is not None else None
    cutoff = datetime.now(UTC) - older_than if older_than else None
    chosen = (
        entry
        for status in statuses
        for entry in services.ledger.entries(workspace_id, status=status, kind=kind)
        if _chosen_for_retry(entry, wanted, cutoff)
    )
    return requeue(services, workspace_id, chosen)


def _chosen_for_retry(entry: LedgerEntry, wanted: set[str] | None, cutoff: datetime | None) -> bool:
    """Whether the caller's key and age filters keep this ledger entry."""
    if wanted is not None and entry.key not in wanted:
        return False
    return not (cutoff and entry.at > cutoff)


def replay_dead_letters(services: Services, queue: str, *, limit: int = 1000) -> int:
    """Move dead-lettered messages back onto their queue (same session, fresh message id)."""
    settings = services.settings
    if queue not in (settings.writes_queue, settings.campaign_queue):
        raise ValueError(f"unknown queue {queue!r}")
    return services.sender.replay_dead_letters(queue, limit=limit)


def reconcile(services: Services, *, stale_after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """The timer job: every workspace's reconciliation run (`shared.services.reconcile_run`)."""
    return reconcile_all(services, stale_after=stale_after)


def reconcile_workspace(
    services: Services,
    workspace_id: str,
    *,
    stale_after: timedelta = timedelta(hours=1),
    by: str = "the admin API",
) -> dict[str, Any]:
    """One workspace's reconciliation run now: its report (NotFound for an unknown workspace)."""
    return run_reconciliation(services, workspace_id, stale_after=stale_after, by=by)


def preview_export(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], export_values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A dry run of an export: the match, the exact body and the diff per column (`shared.services.preview`)."""
    return [r.model_dump(mode="json") for r in preview.preview_export(ctx, kind, records, export_values)]
