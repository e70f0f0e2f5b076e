"""Reconciliation's checks of the ledger against Dynamics, and the work left waiting, each within the run's
request budget (`RunBudget`):

- **verification**: a bounded sample of the `created`/`updated` rows written since the last run (and every
  such row of the last window in which a record was found missing) is looked up in Dynamics, 40 ids per
  request. A record that is not there is first checked against change tracking (one more round: was it
  deleted by a user?). One that was lost — its table is tracked and no deletion was seen — is queued again,
  once; a second loss, or one in a table without change tracking (where a deletion cannot be told from a
  loss), is left `failed` for a human, with the reason;
- **campaign values waiting** for a contact that did not exist when their events came are written once it
  does;
- **transient failures** (`failed` after the worker's deliveries ran out on 429/5xx/timeouts) are queued
  again with a capped exponential backoff; permanent ones (their message says "to fix") are left for a human.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.dataverse.errors import DataverseError
from shared.platform.logs import logger
from shared.services.campaign import CAMPAIGN_WAITING, write_waiting_campaign
from shared.services.reconciliation import RunBudget, track_deletions
from shared.services.requeue import requeue
from shared.services.root import WorkspaceContext
from shared.storage.ledger import LedgerEntry
from shared.storage.reconcile_state import RecordMark

__all__ = ["IDS_PER_READ", "retry_transient", "verify_ledger", "write_waiting_campaigns"]

log = logger("reconciliation")

IDS_PER_READ = 40  # ids per existence query: 40 GUIDs keep the URL far below its limit, so one request each
_KINDS = ("contact", "company")
_FIRST_WINDOW = timedelta(days=1)  # the first run looks back this far
_BACKOFF = timedelta(minutes=15)  # transient failures: 15 min, 30 min, 1 h, … (capped)
_BACKOFF_CAP = timedelta(hours=24)
_FIX_MARK = "to fix:"  # permanent failures carry "— to fix: …" in their message (write_plan.error_fields)
_WINDOW_ROWS = 2000
# Writing one contact's waiting values: the update, and the column metadata when it is not cached (6 reads).
_CAMPAIGN_REQUESTS = 7  # rows of a failed window re-verified at most per run


def _existing(ctx: WorkspaceContext, kind: str, ids: Sequence[str], budget: RunBudget) -> tuple[set[str], list[str]]:
    """(the ids found in Dynamics, the ids the budget left unchecked), one request per 40 ids."""
    entity = ctx.entity(kind)
    found: set[str] = set()
    for start in range(0, len(ids), IDS_PER_READ):
        if not budget.allows(1, step="verification"):
            return found, list(ids[start:])
        chunk = ids[start : start + IDS_PER_READ]
        rows = ctx.client.query_in(entity.entity_set, entity.primary_id, chunk, select=[entity.primary_id],
                                   key=entity.primary_id)
        found.update(str(r[entity.primary_id]).lower() for r in rows)
    return found, []


def _window(ctx: WorkspaceContext, kind: str, since: datetime, until: datetime, limit: int) -> list[LedgerEntry]:
    ledger, ws = ctx.services.ledger, ctx.workspace.id
    out: list[LedgerEntry] = []
    for status in ("created", "updated"):
        out += ledger.log(ws, status=status, kind=kind, since=since, until=until, limit=limit).entries
    return out


def verify_ledger(
    ctx: WorkspaceContext, budget: RunBudget, until: datetime, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Check recent ledger rows against Dynamics; `{"since", "until", "checked", "missing", "requeued", ...}`."""
    last = (previous or {}).get("verification") or {}
    since = _parse(last.get("until")) or until - _FIRST_WINDOW
    sample = ctx.settings.reconcile_verify_sample
    report: dict[str, Any] = {"since": since.isoformat(), "until": until.isoformat(), "checked": 0, "missing": 0,
                              "requeued": 0, "left_failed": 0, "unchecked": 0}
    if last.get("missing") and _parse(last.get("since")):  # the last window lost records: look at all of it
        report["rechecked_window"] = {"since": last["since"], "until": last["until"]}
    for kind in _KINDS:
        entries = _window(ctx, kind, since, until, max(1, sample // 2)) if sample else []
        if "rechecked_window" in report:
            entries += _window(ctx, kind, _parse(last["since"]) or since, _parse(last["until"]) or since,
                               _WINDOW_ROWS)
        _verify_kind(ctx, kind, _unique(entries), budget, report)
    return report


def _unique(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    seen: dict[str, LedgerEntry] = {}
    for entry in entries:
        if entry.crm_id:
            seen.setdefault(entry.row_key, entry)
    return list(seen.values())


def _verify_kind(
    ctx: WorkspaceContext, kind: str, entries: list[LedgerEntry], budget: RunBudget, report: dict[str, Any]
) -> None:
    ws, aliases = ctx.workspace.id, ctx.services.aliases
    ids = list(dict.fromkeys(str(e.crm_id).lower() for e in entries))
    gone = aliases.deleted(ws, kind, ids)
    ids = [i for i in ids if i not in gone]
    found, unchecked = _existing(ctx, kind, ids, budget)
    report["checked"] += len(ids) - len(unchecked)
    report["unchecked"] += len(unchecked)
    missing = set(ids) - found - set(unchecked)
    if not missing:
        return
    report["missing"] += len(missing)
    tracked = track_deletions(ctx, kind, budget)  # deleted by a user since the last round? then that is that
    deleted = set(aliases.deleted(ws, kind, missing))
    ledger = ctx.services.ledger  # the log's rows do not carry the retry payload: read each lost record's row
    lost = [full for e in entries if str(e.crm_id).lower() in missing - deleted
            for full in [ledger.get(ws, e.kind, e.operation, e.key)] if full is not None]
    _settle_lost(ctx, kind, lost, tracked, report)


def _settle_lost(ctx: WorkspaceContext, kind: str, lost: list[LedgerEntry], tracked: bool,
                 report: dict[str, Any]) -> None:
    state, ws, now = ctx.services.reconcile_state, ctx.workspace.id, datetime.now(UTC)
    again: list[LedgerEntry] = []
    for entry in lost:
        mark = state.mark(ws, kind, entry.row_key)
        if tracked and entry.retry and entry.operation == "create" and mark.requeued_missing is None:
            mark.requeued_missing = now
            state.set_mark(ws, kind, entry.row_key, mark)
            again.append(entry)
            continue
        entry.status, entry.code, entry.at = "failed", "missing_in_dynamics", now
        entry.message = _lost_reason(entry, tracked, mark)
        ctx.services.ledger.record([entry])
        report["left_failed"] += 1
    if again:
        outcome = requeue(ctx.services, ws, again, note="reconciliation (not found in Dynamics)")
        report["requeued"] += outcome["requeued"]
        log.warning("workspace %s: %d %s records were not in Dynamics; queued again", ws, outcome["requeued"], kind)


def _lost_reason(entry: LedgerEntry, tracked: bool, mark: RecordMark) -> str:
    base = f"{entry.crm_id} is not in Dynamics although the ledger says {entry.status}"
    if not tracked:
        return (f"{base}; change tracking is off for its table, so a deletion cannot be told from a loss — not "
                "written again. To fix: export it again from Genesy if it should exist")
    if mark.requeued_missing is not None:
        return (f"{base}, and it went missing again after reconciliation queued it once "
                f"({mark.requeued_missing.isoformat()}) — to fix: look in Dynamics's audit history")
    return f"{base}; nothing kept to write it again — to fix: export it again from Genesy"


def write_waiting_campaigns(ctx: WorkspaceContext, budget: RunBudget) -> dict[str, int]:
    """Campaign values kept for contacts that were not in Dynamics: written where the contact now exists."""
    waiting = [e for e in ctx.services.ledger.entries(ctx.workspace.id, status="failed", kind="campaign")
               if e.crm_id and CAMPAIGN_WAITING in (e.message or "")]
    report = {"waiting": len(waiting), "written": 0}
    if not waiting:
        return report
    resolved = ctx.services.aliases.resolve(ctx.workspace.id, "contact", [str(e.crm_id) for e in waiting])
    targets = list(dict.fromkeys(resolved[str(e.crm_id).lower()] for e in waiting))
    found, _ = _existing(ctx, "contact", targets, budget)
    for entry in waiting:
        target = resolved[str(entry.crm_id).lower()]
        if target not in found or not budget.allows(_CAMPAIGN_REQUESTS, step="campaign values"):
            continue
        try:
            if write_waiting_campaign(ctx, entry, target):
                report["written"] += 1
        except DataverseError as exc:
            log.warning("workspace %s: waiting campaign values not written: %s", ctx.workspace.id, exc.code)
    return report


def retry_transient(ctx: WorkspaceContext, now: datetime) -> dict[str, int]:
    """Queue again the records that failed on transient errors, each at most `RECONCILE_RETRY_LIMIT` times with
    a doubling wait; the ones that failed permanently are counted and left for a human."""
    state, ws, limit = ctx.services.reconcile_state, ctx.workspace.id, ctx.settings.reconcile_retry_limit
    report = {"requeued": 0, "permanent": 0, "waiting": 0, "gave_up": 0}
    due: list[LedgerEntry] = []
    for entry in ctx.services.ledger.entries(ws, status="failed"):
        if entry.kind == "campaign" or entry.code == "missing_in_dynamics":
            continue
        if not entry.retry or _FIX_MARK in (entry.message or ""):
            report["permanent"] += 1
            continue
        mark = state.mark(ws, entry.kind, entry.row_key)
        if mark.retries >= limit:
            report["gave_up"] += 1
            continue
        wait = min(_BACKOFF * 2**mark.retries, _BACKOFF_CAP)
        if mark.last_retry is not None and now - mark.last_retry < wait:
            report["waiting"] += 1
            continue
        state.set_mark(ws, entry.kind, entry.row_key, RecordMark(mark.retries + 1, now, mark.requeued_missing))
        due.append(entry)
    if due:
        report["requeued"] = requeue(ctx.services, ws, due, note="reconciliation (transient failure)")["requeued"]
    return report


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
