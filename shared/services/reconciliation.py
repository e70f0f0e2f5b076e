"""Merges and deletions done in Dynamics, found by change tracking.

Per workspace and table (the contact entity — contact or lead — and account) the delta link of the last
round is kept in the alias store. The first round only establishes the link (every row would come back:
none of them is a change). Later rounds read what changed since, selecting only the primary id, `merged`
and `_masterid_value`:

- a row merged into another (`merged` true, `_masterid_value` set) makes its id an alias of the
  survivor, so every later call with the old id reaches the survivor, and its ledger rows get a note;
- a deleted row is marked deleted (calls with its id answer that it was deleted) and its ledger rows
  move to `deleted_in_dynamics`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.dataverse.errors import DataverseError
from shared.dataverse.models import ChangeSet
from shared.domain.entities import EntityKind
from shared.platform.logs import logger
from shared.platform.usage import usage_scope
from shared.services.root import WorkspaceContext

__all__ = ["reconcile_changes"]

log = logger("reconciliation")


def reconcile_changes(ctx: WorkspaceContext) -> dict[str, Any]:
    """Apply the merges and deletions done in Dynamics since the last round:
    `{"tables": {table: {"changed", "merged", "deleted"}}, "dataverse_requests": n}`."""
    tables: dict[str, dict[str, Any]] = {}
    with usage_scope() as usage:
        for entity in (ctx.entity("contact"), ctx.entity("company")):
            try:
                tables[entity.logical_name] = _reconcile_table(ctx, entity)
            except DataverseError as exc:  # one table failing (tracking off, Dynamics down) spoils no other
                log.warning("workspace %s %s: change tracking failed: %s", ctx.workspace.id, entity.logical_name, exc)
                tables[entity.logical_name] = {"changed": 0, "merged": 0, "deleted": 0, "error": str(exc)}
    return {"tables": tables, "dataverse_requests": usage.requests}


def _reconcile_table(ctx: WorkspaceContext, entity: EntityKind) -> dict[str, int]:
    aliases, ws = ctx.services.aliases, ctx.workspace.id
    link = aliases.delta(ws, entity.logical_name)
    select = [entity.primary_id, "merged", "_masterid_value"]
    try:
        changes = ctx.client.track_changes(entity.entity_set, select, link)
    except DataverseError as exc:
        if link is None or exc.status != 400:
            raise
        # The delta link expired (Dataverse keeps changes for a limited time): start over from a full sync.
        log.warning("workspace %s %s: delta link refused (%s); tracking again from now", ctx.workspace.id,
                    entity.logical_name, exc)
        link = None
        changes = ctx.client.track_changes(entity.entity_set, select)
    report = {"changed": 0, "merged": 0, "deleted": 0}
    if link is not None:
        report = _apply(ctx, entity, changes)
    if changes.delta_link:
        aliases.set_delta(ws, entity.logical_name, changes.delta_link)
    return report


def _apply(ctx: WorkspaceContext, entity: EntityKind, changes: ChangeSet) -> dict[str, int]:
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
    return {"changed": len(changes.rows), "merged": len(merges), "deleted": len(deleted)}


def _note_merge(ctx: WorkspaceContext, old: str, survivor: str) -> None:
    entries = ctx.services.ledger.by_crm_id(ctx.workspace.id, old)
    now = datetime.now(UTC)
    for entry in entries:
        if survivor not in entry.aliases:
            entry.aliases.append(survivor)
        entry.message = f"merged into {survivor} in Dynamics"
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
