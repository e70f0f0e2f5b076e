"""Merges and deletions done in Dynamics, found by change tracking (or by `modifiedon` where it is off).

Per workspace and table (the contact entity — contact or lead — and account) the delta link of the last
round is kept in the alias store. The first round only establishes the link (every row would come back:
none of them is a change); on a big table it may take several runs, each reading as many pages as its
request budget allows and keeping the link to continue from. Later rounds read what changed since,
selecting only the primary id, `merged` and `_masterid_value`:

- a row merged into another (`merged` true, `_masterid_value` set) makes its id an alias of the
  survivor, so every later call with the old id reaches the survivor, and its ledger rows get a note;
- a deleted row is marked deleted (calls with its id answer that it was deleted) and its ledger rows
  move to `deleted_in_dynamics`.

Where change tracking is off for a table (Dataverse answers 0x80060888), merges are found with
`merged eq true and modifiedon gt <last run>` instead; deletions cannot be seen that way (the report and the
validation report say so), so verification never re-creates a missing record of such a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.dataverse.errors import DataverseError
from shared.dataverse.models import ChangeSet
from shared.domain.entities import EntityKind
from shared.platform.logs import logger
from shared.platform.usage import RequestUsage
from shared.services.root import WorkspaceContext

__all__ = ["CHANGE_TRACKING_OFF", "RunBudget", "TableChanges", "reconcile_changes", "track_deletions"]

log = logger("reconciliation")

CHANGE_TRACKING_OFF = "0x80060888"  # "Change tracking is not enabled for the entity"
_RESUME = "~resume"  # the alias-store row of a first round still under way
_WATERMARK = "modifiedon:"  # prefix of the stored value when a table is followed by `modifiedon`
_SKEW = timedelta(minutes=2)  # `modifiedon` rounds overlap by this much: clocks and commits are not exact


class RunBudget:
    """The Dataverse requests one reconciliation run may still spend, counted by the pipeline into `usage`."""

    def __init__(self, limit: int, usage: RequestUsage) -> None:
        self.limit = max(0, limit)
        self.usage = usage
        self.skipped: list[str] = []

    @property
    def spent(self) -> int:
        return self.usage.requests

    def left(self) -> int:
        return max(0, self.limit - self.spent)

    def allows(self, requests: int = 1, *, step: str = "") -> bool:
        """Whether `requests` more fit; a step that does not fit is noted as skipped."""
        if self.left() >= requests:
            return True
        if step and step not in self.skipped:
            self.skipped.append(step)
        return False


@dataclass
class TableChanges:
    mode: Literal["change_tracking", "modifiedon", "skipped"] = "change_tracking"
    changed: int = 0
    merged: int = 0
    deleted: int = 0
    complete: bool = True  # False while a first round is still reading its pages
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "changed": self.changed, "merged": self.merged,
                               "deleted": self.deleted}
        if not self.complete:
            out["complete"] = False
        if self.mode == "modifiedon":
            out["deletions"] = "not visible: change tracking is off for this table"
        if self.error:
            out["error"] = self.error
        return out


def reconcile_changes(ctx: WorkspaceContext, budget: RunBudget) -> dict[str, Any]:
    """Apply the merges and deletions done in Dynamics since the last round:
    `{table: {"mode", "changed", "merged", "deleted", ...}}`."""
    tables: dict[str, dict[str, Any]] = {}
    for entity in (ctx.entity("contact"), ctx.entity("company")):
        try:
            result = _reconcile_table(ctx, entity, budget)
        except DataverseError as exc:  # one table failing (Dynamics down, no privilege) spoils no other
            log.warning("workspace %s %s: change tracking failed: %s", ctx.workspace.id, entity.logical_name, exc)
            result = TableChanges(error=str(exc))
        tables[entity.logical_name] = result.as_dict()
    return tables


def track_deletions(ctx: WorkspaceContext, kind: str, budget: RunBudget) -> bool:
    """One more round for `kind`'s table (to see deletions that happened since the last one); whether deletions
    are visible for it at all (False where change tracking is off or no round could be read)."""
    entity = ctx.entity(kind)
    stored = ctx.services.aliases.delta(ctx.workspace.id, entity.logical_name)
    if stored is None or stored.startswith(_WATERMARK) or not budget.allows(1, step="deletion check"):
        return False
    try:
        return _reconcile_table(ctx, entity, budget).mode == "change_tracking"
    except DataverseError:
        return False


def _reconcile_table(ctx: WorkspaceContext, entity: EntityKind, budget: RunBudget) -> TableChanges:
    aliases, ws = ctx.services.aliases, ctx.workspace.id
    stored = aliases.delta(ws, entity.logical_name)
    if stored is not None and stored.startswith(_WATERMARK):
        return _by_modifiedon(ctx, entity, stored[len(_WATERMARK):], budget)
    resume = aliases.delta(ws, entity.logical_name + _RESUME)
    pages = budget.left()
    if pages < 1:
        budget.allows(1, step=f"changes of {entity.logical_name}")
        return TableChanges(mode="skipped", complete=False)
    try:
        changes = _read(ctx, entity, resume or stored, pages)
    except DataverseError as exc:
        if exc.code == CHANGE_TRACKING_OFF:
            log.info("workspace %s %s: change tracking is off; following modifiedon", ws, entity.logical_name)
            return _by_modifiedon(ctx, entity, None, budget)
        if stored is None or exc.status != 400:
            raise
        # The delta link expired (Dataverse keeps changes for a limited time): start over from a full sync.
        log.warning("workspace %s %s: delta link refused (%s); tracking again from now", ws, entity.logical_name, exc)
        stored = resume = None
        changes = _read(ctx, entity, None, max(1, budget.left()))
    if changes.next_link:  # a first round that did not finish within the budget: continue next run
        aliases.set_delta(ws, entity.logical_name + _RESUME, changes.next_link)
        return TableChanges(complete=False)
    result = TableChanges()
    if stored is not None and resume is None:
        result = _apply(ctx, entity, changes)
    if changes.delta_link:
        aliases.set_delta(ws, entity.logical_name, changes.delta_link)
    if resume is not None:
        aliases.set_delta(ws, entity.logical_name + _RESUME, "")
    return result


def _read(ctx: WorkspaceContext, entity: EntityKind, link: str | None, pages: int) -> ChangeSet:
    select = [entity.primary_id, "merged", "_masterid_value"]
    return ctx.client.track_changes(entity.entity_set, select, link or None, max_pages=pages)


def _by_modifiedon(ctx: WorkspaceContext, entity: EntityKind, since: str | None, budget: RunBudget) -> TableChanges:
    """Where change tracking is off: the rows merged since the last round (one query); deletions stay unseen."""
    started = datetime.now(UTC) - _SKEW
    mark = f"{_WATERMARK}{started.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    result = TableChanges(mode="modifiedon")
    if since is not None:
        if not budget.allows(1, step=f"merges of {entity.logical_name}"):
            return TableChanges(mode="modifiedon", complete=False)
        rows = ctx.client.query(
            entity.entity_set,
            filter=f"merged eq true and modifiedon gt {since}",
            select=[entity.primary_id, "merged", "_masterid_value"],
            page_size=500,
        )
        result = _apply(ctx, entity, ChangeSet(rows=rows))
        result.mode = "modifiedon"
    ctx.services.aliases.set_delta(ctx.workspace.id, entity.logical_name, mark)
    return result


def _apply(ctx: WorkspaceContext, entity: EntityKind, changes: ChangeSet) -> TableChanges:
    merges: dict[str, str] = {}
    for row in changes.rows:
        survivor = row.get("_masterid_value")
        record_id = row.get(entity.primary_id)
        if row.get("merged") is True and survivor and record_id:
            merges[str(record_id).lower()] = str(survivor).lower()
    deleted = list(dict.fromkeys(changes.deleted))
    if merges:
        ctx.services.aliases.add(ctx.workspace.id, entity.kind, merges)
        for old, survivor in merges.items():
            _note_merge(ctx, old, survivor)
    if deleted:
        when = datetime.now(UTC)
        ctx.services.aliases.mark_deleted(ctx.workspace.id, entity.kind, deleted, when)
        for record_id in deleted:
            _note_deletion(ctx, entity, record_id, when)
    if merges or deleted:
        log.info("workspace %s %s: %d merged, %d deleted in Dynamics", ctx.workspace.id, entity.logical_name,
                 len(merges), len(deleted))
    return TableChanges(changed=len(changes.rows), merged=len(merges), deleted=len(deleted))


def _note_merge(ctx: WorkspaceContext, old: str, survivor: str) -> None:
    note = f"merged into {survivor} in Dynamics"
    entries = [e for e in ctx.services.ledger.by_crm_id(ctx.workspace.id, old) if e.message != note]
    now = datetime.now(UTC)
    for entry in entries:
        if survivor not in entry.aliases:
            entry.aliases.append(survivor)
        entry.message = note
        entry.at = now
    if entries:
        ctx.services.ledger.record(entries)


def _note_deletion(ctx: WorkspaceContext, entity: EntityKind, record_id: str, when: datetime) -> None:
    entries = ctx.services.ledger.by_crm_id(ctx.workspace.id, record_id)
    for entry in entries:
        entry.status = "deleted_in_dynamics"
        entry.message = f"{entity.label} deleted in Dynamics (noticed {when.isoformat()})"
        entry.code = None
        entry.retry = None
        entry.at = when
    if entries:
        ctx.services.ledger.record(entries)
