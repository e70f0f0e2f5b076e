"""Operating the sync: health, the log of outcomes, retries, dead-letter replay, reconciliation,
export preview (dry run) and validation of mappings against live Dynamics metadata."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mapping_store import get_store
from shared.dataverse import Budget, DataverseError
from shared.domain.mapping_engine import convert_value
from shared.domain.write_messages import WriteItem, WriteMessage, to_outgoing
from shared.messaging.queue import get_sender, in_process_queue
from shared.platform.errors import UpstreamUnavailable
from shared.platform.logs import logger
from shared.platform.settings import Settings
from shared.services.context import WorkspaceContext, enabled_users, workspace_context
from shared.services.export import export_message
from shared.services.writes import plan_records
from shared.storage.ledger import LedgerEntry, ledger_for

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


def sync_health(settings: Settings, workspace_id: str) -> dict[str, Any]:
    """Counts by kind and status, and the records that need attention, with Dataverse's reasons."""
    get_store(settings).get_workspace(workspace_id)
    return {"workspace_id": workspace_id, **ledger_for(settings).summary(workspace_id)}


def sync_log(
    settings: Settings, workspace_id: str, *, status: str | None = None, kind: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    get_store(settings).get_workspace(workspace_id)
    entries = ledger_for(settings).entries(workspace_id, status=status, kind=kind, limit=limit)
    return [e.as_dict() for e in sorted(entries, key=lambda e: e.at, reverse=True)]


def retry_failed(
    settings: Settings,
    workspace_id: str,
    *,
    statuses: Sequence[str] = ("failed", "retrying"),
    kind: str | None = None,
    keys: Iterable[str] | None = None,
    older_than: timedelta | None = None,
) -> dict[str, int]:
    """Queue failed records again, in their original order of operations (creates, updates, links)."""
    get_store(settings).get_workspace(workspace_id)
    ledger = ledger_for(settings)
    wanted = set(keys) if keys is not None else None
    cutoff = datetime.now(UTC) - older_than if older_than else None
    groups: dict[tuple[str, str, str], list[tuple[LedgerEntry, WriteItem]]] = {}
    not_retryable = 0
    for status in statuses:
        for entry in ledger.entries(workspace_id, status=status, kind=kind):
            if wanted is not None and entry.key not in wanted:
                continue
            if cutoff and entry.at > cutoff:
                continue
            if not entry.retry:
                not_retryable += 1
                continue
            retry = entry.retry
            group = (str(retry["operation"]), str(retry["kind"]), json.dumps(retry.get("export_values") or {}))
            groups.setdefault(group, []).append((entry, WriteItem.model_validate(retry["item"])))
    order = {"create": 0, "update": 1, "associate": 2}
    nonce = uuid.uuid4().hex
    sender = get_sender(settings)
    requeued = 0
    for (operation, record_kind, values), pairs in sorted(groups.items(), key=lambda g: order.get(g[0][0], 3)):
        message = WriteMessage(
            operation=operation,
            workspace_id=workspace_id,
            kind=record_kind,
            items=[item for _, item in pairs],
            export_values=json.loads(values),
            correlation_id=f"retry-{nonce}",
            retry_of=nonce,
        )
        sender.send(settings.writes_queue, to_outgoing(message))
        for entry, _ in pairs:
            entry.status = "accepted"
            entry.message = f"queued again by retry {nonce} (was: {entry.message or entry.status})"
            entry.at = datetime.now(UTC)
        ledger.record(entry for entry, _ in pairs)
        requeued += len(pairs)
    return {"requeued": requeued, "not_retryable": not_retryable}


def replay_dead_letters(settings: Settings, queue: str, *, limit: int = 1000) -> int:
    """Move dead-lettered messages back onto their queue (same session, fresh message id)."""
    if queue not in (settings.writes_queue, settings.campaign_queue):
        raise ValueError(f"unknown queue {queue!r}")
    if settings.queue_backend == "inprocess":
        return in_process_queue().replay_dead_letters(queue)
    from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

    if settings.servicebus_connection_string:
        client = ServiceBusClient.from_connection_string(settings.servicebus_connection_string)
    else:
        from azure.identity import DefaultAzureCredential

        client = ServiceBusClient(str(settings.servicebus_namespace), DefaultAzureCredential())
    replayed = 0
    with client, client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
        sender = client.get_queue_sender(queue)
        with sender:
            while replayed < limit:
                batch = receiver.receive_messages(max_message_count=min(100, limit - replayed), max_wait_time=5)
                if not batch:
                    break
                for dead in batch:
                    copy = ServiceBusMessage(
                        b"".join(dead.body),
                        session_id=dead.session_id,
                        message_id=f"{dead.message_id}-replay-{uuid.uuid4().hex[:8]}",
                        content_type=dead.content_type,
                        application_properties=dead.application_properties,
                    )
                    sender.send_messages(copy)
                    receiver.complete_message(dead)
                    replayed += 1
    return replayed


def reconcile(settings: Settings, *, stale_after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """Timer job: re-queue records left `retrying` (their message died) and log each workspace's health."""
    report: dict[str, Any] = {}
    for workspace in get_store(settings).list_workspaces():
        outcome = retry_failed(settings, workspace.id, statuses=("retrying",), older_than=stale_after)
        health = ledger_for(settings).summary(workspace.id)
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


def validate_mappings(settings: Settings, workspace_id: str) -> dict[str, Any]:
    """Check every mapped column against the environment's live metadata; list what would not work."""
    ctx = workspace_context(settings, workspace_id)
    problems: list[dict[str, str]] = []
    try:
        metadata = {
            "contact": ctx.client.entity_metadata(ctx.contact.logical_name),
            "company": ctx.client.entity_metadata("account"),
        }
        users = {u.id.lower() for u in enabled_users(ctx)}
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    export = ctx.mappings.export
    for kind, entity_mapping in (("contact", export.contact), ("company", export.company)):
        columns = metadata[kind].columns
        entity_name = metadata[kind].logical_name
        groups: list[tuple[str, Sequence[Any]]] = [
            ("fields", entity_mapping.fields),
            ("fixed", entity_mapping.fixed),
            ("export_fields", entity_mapping.export_fields),
            ("engagement", entity_mapping.engagement),
        ]
        for group, items in groups:
            for index, item in enumerate(items):
                path = f"{kind}.{group}[{index}].column"
                column = columns.get(item.column)
                if column is None:
                    problems.append(_problem("export", path, f"{entity_name} has no column '{item.column}'"))
                    continue
                if not (column.valid_for_create or column.valid_for_update):
                    problems.append(_problem("export", path, f"'{item.column}' cannot be written"))
                constants = [
                    getattr(item, "value", None),
                    *getattr(item, "options", []),
                    getattr(item, "default", None),
                ]
                for constant in constants:
                    if constant is None:
                        continue
                    try:
                        convert_value(constant, column)
                    except ValueError as exc:
                        problems.append(_problem("export", path, str(exc)))
    contact_columns = metadata["contact"].columns
    for value, column_name in ctx.mappings.campaign.columns.items():
        column = contact_columns.get(column_name)
        path = f"columns.{value.value}"
        if column is None:
            problems.append(_problem("campaign", path, f"{ctx.contact.logical_name} has no column '{column_name}'"))
        elif column.type not in ("String", "Memo", "Integer"):
            problems.append(_problem("campaign", path, f"'{column_name}' is a {column.type} column, not text"))
    sync = ctx.mappings.sync
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
    user_mapping = ctx.mappings.users
    for index, identity in enumerate(user_mapping.identities):
        if identity.systemuser_id not in users:
            problems.append(_problem("users", f"identities[{index}]", "not an enabled Dynamics user"))
    for index, user in enumerate(user_mapping.users):
        if user.systemuser_id not in users:
            problems.append(_problem("users", f"users[{index}]", "not an enabled Dynamics user"))
    if user_mapping.default_owner_id and user_mapping.default_owner_id not in users:
        problems.append(_problem("users", "default_owner_id", "not an enabled Dynamics user"))
    return {"valid": not problems, "problems": problems}
