"""Operating the sync: health, the log of outcomes, retries, dead-letter replay, reconciliation,
export preview (dry run) and validation of mappings against live Dynamics metadata."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.mapping_engine import convert_value
from shared.domain.mappings import ExportMapping, SyncMapping, UserMapping
from shared.domain.metadata import EntityMetadata
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.messaging.outgoing import to_outgoing
from shared.platform.errors import UpstreamUnavailable
from shared.platform.logs import logger
from shared.services.export import export_message
from shared.services.root import Services, WorkspaceContext, enabled_users
from shared.services.writes import plan_records
from shared.storage.ledger import LedgerEntry

__all__ = [
    "preview_export",
    "reconcile",
    "replay_dead_letters",
    "retry_failed",
    "sync_health",
    "sync_log",
    "validate_mappings",
]

log = logger("operations")


def sync_health(services: Services, workspace_id: str) -> dict[str, Any]:
    """Counts by kind and status, and the records that need attention, with Dataverse's reasons."""
    services.store.get_workspace(workspace_id)
    return {"workspace_id": workspace_id, **services.ledger.summary(workspace_id)}


def sync_log(
    services: Services, workspace_id: str, *, status: str | None = None, kind: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    services.store.get_workspace(workspace_id)
    entries = services.ledger.entries(workspace_id, status=status, kind=kind, limit=limit)
    return [e.as_dict() for e in sorted(entries, key=lambda e: e.at, reverse=True)]


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
    report: dict[str, Any] = {}
    for workspace in services.store.list_workspaces():
        outcome = retry_failed(services, workspace.id, statuses=("retrying",), older_than=stale_after)
        health = services.ledger.summary(workspace.id)
        failed = sum(c.get("failed", 0) for c in health["counts"].values())
        report[workspace.id] = {"requeued": outcome["requeued"], "failed": failed}
        if outcome["requeued"] or failed:
            log.warning(
                "workspace %s: %d stale records re-queued, %d records failed (see sync health)",
                workspace.id,
                outcome["requeued"],
                failed,
            )
    return report


def preview_export(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], export_values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A dry run of an export: the match and the exact body each record would get. Writes nothing."""
    message = export_message(ctx, kind, records, export_values)
    try:
        batch = plan_records(ctx, message, Budget(ctx.settings.match_timeout_seconds * 3))
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    out = []
    for planned in batch.records:
        item = planned.item
        result: dict[str, Any] = {
            "externalId": item.external_id,
            "crmId": item.crm_id,
            "writesTo": planned.target,
            "matched": item.matched or planned.target != item.crm_id,
            "ambiguousIds": planned.ambiguous_ids,
        }
        if planned.plan is not None:
            result.update(planned.plan.as_dict())
        if planned.error:
            result["error"] = {"code": planned.error[0], "message": planned.error[1]}
        out.append(result)
    return out


def _problem(section: str, path: str, message: str) -> dict[str, str]:
    return {"section": section, "field": path, "message": message}


def validate_mappings(services: Services, workspace_id: str) -> dict[str, Any]:
    """Check every mapped column against the environment's live metadata; list what would not work."""
    ctx = services.workspace(workspace_id)
    try:
        metadata = {
            "contact": ctx.client.entity_metadata(ctx.contact.logical_name),
            "company": ctx.client.entity_metadata("account"),
        }
        users = {u.id.lower() for u in enabled_users(ctx)}
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    problems = [
        *_export_problems(ctx.mappings.export, metadata),
        *_campaign_problems(ctx, metadata["contact"]),
        *_sync_problems(ctx.mappings.sync, metadata),
        *_user_problems(ctx.mappings.users, users),
    ]
    return {"valid": not problems, "problems": problems}


def _export_problems(export: ExportMapping, metadata: Mapping[str, EntityMetadata]) -> list[dict[str, str]]:
    """Export columns that do not exist, cannot be written, or cannot hold their constant values."""
    problems: list[dict[str, str]] = []
    for kind, entity_mapping in (("contact", export.contact), ("company", export.company)):
        groups: list[tuple[str, Sequence[Any]]] = [
            ("fields", entity_mapping.fields),
            ("fixed", entity_mapping.fixed),
            ("export_fields", entity_mapping.export_fields),
            ("engagement", entity_mapping.engagement),
        ]
        for group, items in groups:
            for index, item in enumerate(items):
                path = f"{kind}.{group}[{index}].column"
                problems += _export_column_problems(metadata[kind], path, item)
    return problems


def _export_column_problems(entity: EntityMetadata, path: str, item: Any) -> list[dict[str, str]]:
    """What is wrong with one mapped export column: missing, read-only, or a constant it cannot take."""
    column = entity.columns.get(item.column)
    if column is None:
        return [_problem("export", path, f"{entity.logical_name} has no column '{item.column}'")]
    problems: list[dict[str, str]] = []
    if not (column.valid_for_create or column.valid_for_update):
        problems.append(_problem("export", path, f"'{item.column}' cannot be written"))
    constants = [getattr(item, "value", None), *getattr(item, "options", []), getattr(item, "default", None)]
    for constant in constants:
        if constant is None:
            continue
        try:
            convert_value(constant, column)
        except ValueError as exc:
            problems.append(_problem("export", path, str(exc)))
    return problems


def _campaign_problems(ctx: WorkspaceContext, contact: EntityMetadata) -> list[dict[str, str]]:
    """Campaign values mapped to columns that do not exist or do not hold text."""
    problems: list[dict[str, str]] = []
    for value, column_name in ctx.mappings.campaign.columns.items():
        column = contact.columns.get(column_name)
        path = f"columns.{value.value}"
        if column is None:
            problems.append(_problem("campaign", path, f"{ctx.contact.logical_name} has no column '{column_name}'"))
        elif column.type not in ("String", "Memo", "Integer"):
            problems.append(_problem("campaign", path, f"'{column_name}' is a {column.type} column, not text"))
    return problems


def _sync_problems(sync: SyncMapping, metadata: Mapping[str, EntityMetadata]) -> list[dict[str, str]]:
    """Match conditions and sync-back fields naming columns the entity does not have."""
    problems: list[dict[str, str]] = []
    for kind, rules in (("contact", sync.contact.effective_rules()), ("company", sync.company.effective_rules())):
        for r, rule in enumerate(rules):
            for c, condition in enumerate(rule.all_of):
                if "/" in condition.column:
                    continue
                if condition.column not in metadata[kind].columns:
                    path = f"{kind}.rules[{r}].all_of[{c}].column"
                    problems.append(_problem("sync", path, f"no column '{condition.column}'"))
    for kind, sync_back in (("contact", sync.contact_sync_back), ("company", sync.company_sync_back)):
        for name, column_name in sync_back.items():
            if column_name not in metadata[kind].columns:
                problems.append(_problem("sync", f"{kind}_sync_back.{name}", f"no column '{column_name}'"))
    return problems


def _user_problems(user_mapping: UserMapping, users: set[str]) -> list[dict[str, str]]:
    """Mapped Dynamics users that are not enabled users of the environment."""
    problems: list[dict[str, str]] = []
    for index, identity in enumerate(user_mapping.identities):
        if identity.systemuser_id not in users:
            problems.append(_problem("users", f"identities[{index}]", "not an enabled Dynamics user"))
    for index, user in enumerate(user_mapping.users):
        if user.systemuser_id not in users:
            problems.append(_problem("users", f"users[{index}]", "not an enabled Dynamics user"))
    if user_mapping.default_owner_id and user_mapping.default_owner_id not in users:
        problems.append(_problem("users", "default_owner_id", "not an enabled Dynamics user"))
    return problems
