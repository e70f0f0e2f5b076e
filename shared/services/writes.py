"""The writes worker: one `genesy-writes` message → Dataverse bulk writes → ledger rows.

Per message: load the mappings, re-check unmatched records against Dynamics (another export may have
created them meanwhile), read current values once, build every body with the pure mapping engine,
write with one `$batch` per entity (continue-on-error, so a bad record fails alone), and record each
outcome. Transient failures past the budget raise, so Service Bus redelivers; ids are fixed, so a
redelivery rewrites the same records and never duplicates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.dataverse import AuthFailed, Budget, DataverseError, RecordResult, ValidationFailed, WriteMode
from shared.dataverse import NotFound as RecordNotFound
from shared.dataverse import WriteItem as WriteItemSpec
from shared.domain.entities import issued_kind
from shared.domain.mapping_engine import RecordPlan, build_record, is_engaged, resolve_owner
from shared.domain.matching import match_records, plan_candidate_queries, plan_fallback_queries, plan_id_queries
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.platform.correlation import correlation_scope
from shared.platform.logs import logger
from shared.platform.settings import Settings
from shared.services.campaign import campaign_columns
from shared.services.context import WorkspaceContext, enabled_users, workspace_context
from shared.services.export import alias_store, match_target, run_queries
from shared.storage.campaign_state import campaign_activity_seen
from shared.storage.ledger import LedgerEntry, LedgerStatus, ledger_for
from shared.storage.recent import recent_records

__all__ = ["PlannedBatch", "PlannedRecord", "RetryLater", "WriteReport", "plan_records", "process_write_message"]

log = logger("worker")


class RetryLater(Exception):
    """Some records hit transient failures; raising lets Service Bus redeliver the message."""


@dataclass
class WriteReport:
    operation: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    retryable: int = 0

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def redelivery_helps(error: DataverseError) -> bool:
    """Transient failures (429, 5xx, timeouts, a token that could not be had or was refused) are worth
    another delivery; permanent ones (an unknown column or property, bad key syntax, validation, a missing
    privilege, a missing record) fail the same way every time."""
    if isinstance(error, AuthFailed):
        return error.status != 403
    return error.retryable


def remedy(error: DataverseError) -> str:
    """What it takes to fix a permanent failure, for the ledger."""
    code = (error.code or "").lower()
    text = error.message.lower()
    column = f" '{error.column}'" if error.column else ""
    if code == "0x80060888" or "could not find a property" in text or "property named" in text:
        return (
            f"the mapping names a column{column} Dynamics does not have: fix the mapping (check it with "
            "POST /api/manage/workspaces/{id}/validate), then retry from the sync log"
        )
    if isinstance(error, AuthFailed):
        return "give the app's Dynamics user a security role with the privilege Dataverse names, then retry"
    if isinstance(error, RecordNotFound):
        return "the record does not exist in Dynamics (deleted, or never written: see its ledger row)"
    if isinstance(error, ValidationFailed):
        return f"Dynamics refused the value{column}: fix it in Genesy or change the mapping, then retry"
    return "fix the cause Dataverse names, then retry from the sync log"


def _error_fields(error: DataverseError | None) -> dict[str, Any]:
    if error is None:
        return {}
    message = error.message
    if isinstance(error, ValidationFailed) and error.column and error.column not in message:
        message = f"{error.column}: {message}"
    if not redelivery_helps(error):
        message = f"{message} — to fix: {remedy(error)}"
    return {"code": error.code or type(error).__name__, "message": message}


def _set_error(entry: LedgerEntry, error: DataverseError | None) -> None:
    fields = _error_fields(error)
    if fields:
        entry.code, entry.message = fields["code"], fields["message"]


def _retry_payload(message: WriteMessage, item: WriteItem) -> dict[str, Any]:
    """Enough to queue this one record again (admin retry, reconciliation)."""
    return {
        "operation": message.operation,
        "kind": message.kind,
        "item": item.model_dump(mode="json"),
        "export_values": message.export_values,
    }


@dataclass
class PlannedRecord:
    """One record of a message after the read phase: where it goes and what will be written."""

    index: int
    item: WriteItem
    target: str  # the Dynamics id written to
    current: dict[str, Any] | None  # its current values (None: it will be created)
    plan: RecordPlan | None  # None when the record cannot be written (e.g. an update of a missing record)
    ambiguous_ids: list[str]
    error: tuple[str, str] | None = None  # (code, message) decided before writing


@dataclass
class PlannedBatch:
    records: list[PlannedRecord]
    new_aliases: dict[str, str]


def plan_records(ctx: WorkspaceContext, message: WriteMessage, budget: Budget) -> PlannedBatch:
    """The read phase and the pure mapping of a create/update message; writes nothing.

    Shared by the worker and the export preview, so a preview shows exactly what an export would do.
    """
    kind = message.kind
    entity = ctx.entity(kind)
    mapping = ctx.mappings.export.company if kind == "company" else ctx.mappings.export.contact
    items = list(message.items)
    ambiguous: dict[int, list[str]] = {i: list(item.ambiguous_ids) for i, item in enumerate(items)}
    new_aliases: dict[str, str] = {}
    columns = mapping.columns()
    records: list[dict[str, Any]] = []
    unmatched: list[int] = []
    if message.operation == "create":
        unmatched = [i for i, item in enumerate(items) if not item.matched]
        records = [{**items[i].fields, "externalId": items[i].external_id} for i in unmatched]
        ids = [item.crm_id for item in items]
    else:
        resolved = alias_store(ctx).resolve(ctx.workspace.id, kind, [item.crm_id for item in items])
        ids = [resolved.get(item.crm_id.lower(), item.crm_id.lower()) for item in items]
    # One $batch: the re-check of records not matched at accept time, and every record's current values.
    target_spec = match_target(ctx, kind, extra_select=columns)
    # Every record here missed the exact lookup when it was accepted: its LinkedIn URL may be stored in a
    # form only the slug fallback finds (a country subdomain, a query string), asked in the same $batch.
    candidate_queries = (
        [*plan_candidate_queries(target_spec, records), *plan_fallback_queries(target_spec, records, {})]
        if records
        else []
    )
    id_queries = plan_id_queries(entity.entity_set, entity.primary_id, ids, columns)
    found_rows = run_queries(ctx.client, [*candidate_queries, *id_queries], budget)
    split = len(candidate_queries)
    existing = {str(row[entity.primary_id]).lower(): row for rows in found_rows[split:] for row in rows}
    rematched = match_records(target_spec, records, candidate_queries, found_rows[:split]) if records else {}
    for i in unmatched:
        found = rematched.get(str(items[i].external_id))
        if found and found.crm_id != items[i].crm_id:
            new_aliases[items[i].crm_id] = found.crm_id
            ambiguous[i] = found.ambiguous_ids
            existing[found.crm_id] = found.row
    targets = [new_aliases.get(item.crm_id, ids[i]) for i, item in enumerate(items)]

    metadata = ctx.client.entity_metadata(entity.logical_name, budget=budget)
    users = {u.id.lower() for u in enabled_users(ctx)}
    # Contacts seen in campaign-updates: engaged even when Genesy sent no `campaigns`, and a contact
    # created after its campaign events gets its campaign columns with the create.
    seen: set[str] = set()
    if kind == "contact" and (mapping.engagement or ctx.mappings.campaign.enabled):
        seen = campaign_activity_seen(ctx.settings, ctx.workspace.id, [*(item.crm_id for item in items), *targets])
    planned: list[PlannedRecord] = []
    for i, item in enumerate(items):
        target = targets[i]
        current = existing.get(target)
        if message.operation == "update" and current is None:
            error = ("0x80040217", f"{entity.label} {target} does not exist in Dynamics")
            planned.append(PlannedRecord(i, item, target, None, None, ambiguous[i], error))
            continue
        in_campaign = bool({item.crm_id, target} & seen)
        plan = build_record(
            mapping,
            item.fields,
            export_values=message.export_values,
            existing=current,
            metadata=metadata,
            engaged=is_engaged(item.fields, campaign_activity_seen=in_campaign),
            owner=resolve_owner(item.fields, ctx.mappings.users, users, creating=current is None),
        )
        if current is None and in_campaign and ctx.mappings.campaign.enabled:
            for column, value in campaign_columns(ctx, item.crm_id, budget=budget).items():
                plan.body.setdefault(column, value)
        planned.append(PlannedRecord(i, item, target, current, plan, ambiguous[i]))
    return PlannedBatch(planned, new_aliases)


_AMBIGUOUS = "several Dynamics records match; wrote to the most recently modified active one"


def _write_records(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    kind = message.kind
    entity = ctx.entity(kind)
    report = WriteReport(message.operation, kind)
    batch = plan_records(ctx, message, budget)
    if batch.new_aliases:
        alias_store(ctx).add(ctx.workspace.id, kind, batch.new_aliases)
    passed_over = {r.target: r.ambiguous_ids for r in batch.records if r.ambiguous_ids}
    if passed_over and kind == "company":
        # Associations must not move a contact away from one of these to the chosen record.
        alias_store(ctx).add_alternatives(ctx.workspace.id, kind, passed_over)
    entries: list[LedgerEntry] = []
    writes: list[tuple[PlannedRecord, LedgerEntry, WriteItemSpec]] = []
    written: dict[str, LedgerEntry] = {}
    followers: list[tuple[LedgerEntry, LedgerEntry]] = []
    for record in batch.records:
        item = record.item
        entry = LedgerEntry(
            workspace_id=ctx.workspace.id,
            kind=kind,
            operation="create" if message.operation == "create" else "update",
            key=str(item.external_id if message.operation == "create" else item.crm_id),
            status="failed",
            crm_id=record.target,
            external_id=item.external_id,
            aliases=[item.crm_id] if item.crm_id != record.target else [],
            attempts=delivery,
            correlation_id=message.correlation_id,
        )
        entries.append(entry)
        if record.ambiguous_ids:
            entry.aliases = sorted({*entry.aliases, *record.ambiguous_ids})
        if record.plan is None:
            entry.code, entry.message = record.error or ("error", "not written")
            entry.retry = _retry_payload(message, item)
            report.count("failed")
            continue
        entry.warnings = record.plan.warnings
        if not record.plan.body:
            entry.status = "ambiguous" if record.ambiguous_ids else "skipped"
            entry.message = "nothing to write (every mapped value was empty or kept)"
            if record.ambiguous_ids:
                entry.message = f"{_AMBIGUOUS}; {entry.message}"
            report.count(entry.status)
            continue
        if record.target in written:
            # Another copy of this record in the message is written already: one write, same outcome.
            followers.append((entry, written[record.target]))
            continue
        mode: WriteMode = "upsert" if record.current is None else "update_only"
        writes.append((record, entry, (record.target, record.plan.body, mode)))
        written[record.target] = entry

    results: list[RecordResult] = ctx.client.write_many(entity.entity_set, [w for _, _, w in writes], budget=budget)
    for (record, entry, (_, _, mode)), result in zip(writes, results, strict=True):
        status: LedgerStatus
        if result.ok:
            created = result.created if result.created is not None else mode == "upsert"
            status = "created" if created else "updated"
            if record.ambiguous_ids:
                status, entry.message = "ambiguous", _AMBIGUOUS
        elif result.retryable and not final_attempt:
            status = "retrying"
            report.retryable += 1
        else:
            status = "failed"
        entry.status = status
        _set_error(entry, result.error)
        if status in ("failed", "retrying"):
            entry.retry = _retry_payload(message, record.item)
        report.count(status)
    _remember_writes(
        ctx, kind, [(record, entry) for (record, entry, _), r in zip(writes, results, strict=True) if r.ok]
    )
    for entry, leader in followers:
        entry.status, entry.code, entry.retry = leader.status, leader.code, leader.retry
        entry.message = f"same Dynamics record as '{leader.key}' in this call" + (
            f"; {leader.message}" if leader.message else ""
        )
        report.count(entry.status)
    ledger_for(ctx.settings).record(entries)
    return report


def _remember_writes(ctx: WorkspaceContext, kind: str, written: list[tuple[PlannedRecord, LedgerEntry]]) -> None:
    """Ids we issued are no longer pending; what this process just wrote is known to exist (a new contact
    has no parent account yet)."""
    recent = recent_records()
    for record, _ in written:
        recent.saw(ctx.workspace.id, kind, record.target, "" if record.current is None else None)
    ours = [r.target for r, _ in written if issued_kind(ctx.workspace.id, r.target) == kind]
    alias_store(ctx).mark_written(ctx.workspace.id, kind, ours)


def _association_error(error: DataverseError | None, contact_entity: str) -> tuple[str, str] | None:
    """Genesy's wording for a link that failed because one side does not exist in Dynamics."""
    if not isinstance(error, RecordNotFound):
        return None
    missing = "Company" if error.message.lower().startswith("account") else "Contact"
    if error.message.lower().startswith(contact_entity):
        missing = "Contact"
    return "not_found", f"{missing} not found ({error.message})"


def _associate(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    """Set each contact's parent account: one `$batch` of updates, no read first.

    A missing contact or account comes back as that record's 404 (reported as Genesy words it);
    setting a parent the contact already has changes nothing in Dynamics.
    """
    entity = ctx.contact
    report = WriteReport("associate", "association")
    aliases = alias_store(ctx)
    contacts = aliases.resolve(ctx.workspace.id, "contact", [i.crm_id for i in message.items])
    companies = aliases.resolve(ctx.workspace.id, "company", [str(i.company_id) for i in message.items])
    # A company Genesy named was matched ambiguously: a contact already under one of the records that
    # match passed over keeps its parent (one read, only then).
    alternatives = aliases.alternatives(ctx.workspace.id, "company", companies.values())
    parents: dict[str, str] = {}
    if alternatives:
        at_stake = [
            contacts.get(i.crm_id, i.crm_id) for i in message.items if companies.get(str(i.company_id)) in alternatives
        ]
        queries = plan_id_queries(entity.entity_set, entity.primary_id, at_stake, [str(entity.parent_value)])
        for rows in run_queries(ctx.client, queries, budget):
            for row in rows:
                parents[str(row[entity.primary_id]).lower()] = str(row.get(str(entity.parent_value)) or "").lower()
    # One parent per contact: the last pair for a contact wins (set-or-replace).
    last_pair: dict[str, tuple[WriteItem, str, LedgerEntry]] = {}
    entries: list[LedgerEntry] = []
    for item in message.items:
        contact_id = contacts.get(item.crm_id, item.crm_id)
        company_id = companies.get(str(item.company_id), str(item.company_id))
        entry = LedgerEntry(
            workspace_id=ctx.workspace.id,
            kind="association",
            operation="associate",
            key=f"{item.crm_id}>{item.company_id}",
            status="skipped",
            crm_id=contact_id,
            attempts=delivery,
            correlation_id=message.correlation_id,
        )
        entries.append(entry)
        if parents.get(contact_id) in alternatives.get(company_id, ()):
            entry.message = (
                "kept the contact's parent account: it is one of the records the ambiguous company match "
                f"passed over ({parents[contact_id]})"
            )
            continue
        if contact_id in last_pair:
            last_pair[contact_id][2].message = "replaced by a later company for the same contact in this call"
        last_pair[contact_id] = (item, company_id, entry)
    writes: list[WriteItemSpec] = [
        (contact_id, {f"{entity.parent_bind}@odata.bind": f"/accounts({company_id})"}, "update_only")
        for contact_id, (_, company_id, _) in last_pair.items()
    ]
    results = ctx.client.write_many(entity.entity_set, writes, budget=budget)
    for (item, company_id, entry), result in zip(last_pair.values(), results, strict=True):
        not_found = _association_error(result.error, entity.logical_name)
        if result.ok:
            entry.status = "updated"
            recent_records().saw(ctx.workspace.id, "contact", str(entry.crm_id), company_id)
        elif not_found:
            entry.status = "failed"
            entry.code, entry.message = not_found
        elif result.retryable and not final_attempt:
            entry.status = "retrying"
            report.retryable += 1
        else:
            entry.status = "failed"
            _set_error(entry, result.error)
        if entry.status in ("failed", "retrying"):
            entry.retry = _retry_payload(message, item)
    for entry in entries:
        report.count(entry.status)
    ledger_for(ctx.settings).record(entries)
    return report


def _write_queued(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    """Tasks and activities Genesy sent for a record that was not written yet; they come after it."""
    from shared.services.activities import write_queued_activity
    from shared.services.tasks import write_queued_task

    report = WriteReport(message.operation, message.kind)
    entries: list[LedgerEntry] = []
    for item in message.items:
        entry = LedgerEntry(
            workspace_id=ctx.workspace.id,
            kind=message.kind,
            operation="update" if message.operation == "task_update" else "create",
            key=item.crm_id,
            status="created" if message.operation != "task_update" else "updated",
            crm_id=item.crm_id,
            attempts=delivery,
            correlation_id=message.correlation_id,
        )
        try:
            if message.kind == "task":
                write_queued_task(ctx, message.operation, item.crm_id, item.fields, budget)
            else:
                write_queued_activity(ctx, item.crm_id, item.fields, budget)
        except DataverseError as exc:
            retry = redelivery_helps(exc) and not final_attempt
            entry.status = "retrying" if retry else "failed"
            report.retryable += int(retry)
            _set_error(entry, exc)
            if isinstance(exc, RecordNotFound):
                entry.message = (
                    f"the record this {message.kind} is about is not in Dynamics ({exc.message}); its own "
                    "export failed or it was deleted — see its ledger row"
                )
            entry.retry = _retry_payload(message, item)
        report.count(entry.status)
        entries.append(entry)
    ledger_for(ctx.settings).record(entries)
    return report


def _record_message_failure(
    ctx: WorkspaceContext, message: WriteMessage, error: DataverseError, final_attempt: bool, delivery: int
) -> None:
    entries = []
    for item in message.items:
        if message.operation == "associate":
            kind, operation, key = "association", "associate", f"{item.crm_id}>{item.company_id}"
        else:
            kind = message.kind
            operation = "create" if message.operation == "create" else "update"
            key = str(item.external_id if message.operation == "create" else item.crm_id)
        entry = LedgerEntry(
            workspace_id=ctx.workspace.id,
            kind=kind,
            operation=operation,  # type: ignore[arg-type]
            key=key,
            status="failed" if final_attempt else "retrying",
            crm_id=item.crm_id,
            external_id=item.external_id,
            attempts=delivery,
            correlation_id=message.correlation_id,
            retry=_retry_payload(message, item),
        )
        _set_error(entry, error)
        entries.append(entry)
    ledger_for(ctx.settings).record(entries)


def process_write_message(
    settings: Settings, body: Mapping[str, Any], *, delivery_count: int = 1, max_delivery_count: int = 10
) -> WriteReport:
    """Process one message; raises `RetryLater` (or a Dataverse error) when it should be redelivered."""
    message = WriteMessage.model_validate(body)
    ctx = workspace_context(settings, message.workspace_id)
    final_attempt = delivery_count >= max_delivery_count
    budget = Budget(settings.write_budget_seconds)
    with correlation_scope(message.correlation_id):
        try:
            if message.operation == "associate":
                report = _associate(ctx, message, budget, final_attempt, delivery_count)
            elif message.kind in ("task", "activity"):
                report = _write_queued(ctx, message, budget, final_attempt, delivery_count)
            else:
                report = _write_records(ctx, message, budget, final_attempt, delivery_count)
        except DataverseError as exc:
            # The whole message failed. Transient (Dynamics unavailable past the budget, throttled, a
            # token error): every record goes in the ledger as `retrying` and the message is redelivered
            # (`failed` on the last delivery). Permanent (a query Dynamics refuses, a missing privilege):
            # every record is `failed` at once with the reason and the fix, and the message is done.
            transient = redelivery_helps(exc)
            _record_message_failure(ctx, message, exc, final_attempt or not transient, delivery_count)
            if transient:
                raise
            log.warning("write message %s %s failed for good: %s", message.operation, message.kind, exc.code)
            return WriteReport(message.operation, message.kind, {"failed": len(message.items)})
    log.info("write message %s %s: %s (delivery %d)", message.operation, message.kind, report.counts, delivery_count)
    if report.retryable:
        raise RetryLater(f"{report.retryable} records hit transient Dataverse failures; redelivering")
    return report
