"""The writes worker: one `genesy-writes` message → Dataverse bulk writes → ledger rows.

Per message: load the mappings, re-check unmatched records against Dynamics (another export may have
created them meanwhile), read current values once, build every body with the pure mapping engine,
decide the writes and ledger entries (`shared.services.write_plan`, pure), write with one `$batch` per
entity (continue-on-error, so a bad record fails alone), and record each outcome. Transient failures past
the budget raise, so Service Bus redelivers; ids are fixed, so a redelivery rewrites the same records and
never duplicates them.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pydantic import ValidationError

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError, RecordNotFound
from shared.dataverse.throttling import fair_share, sharing_writers
from shared.domain.entities import issued_kind
from shared.domain.mapping_engine import UserDirectory, build_record, is_engaged, resolve_owner
from shared.domain.matching import Match, plan_id_queries, record_keys
from shared.domain.metadata import EntityMetadata
from shared.domain.record_types import RecordType
from shared.domain.write_messages import WriteItem, WriteMessage, must_wait_for
from shared.platform.correlation import correlation_scope
from shared.platform.logs import logger
from shared.platform.usage import RequestUsage, usage_scope
from shared.services.activities import write_queued_activity
from shared.services.campaign import campaign_columns
from shared.services.matcher import match_planned, recheck_queries, run_queries
from shared.services.root import Services, WorkspaceContext, enabled_users
from shared.services.tasks import write_queued_task
from shared.services.write_plan import (
    PlannedBatch,
    PlannedRecord,
    WriteReport,
    decide_associations,
    decide_records,
    redelivery_helps,
    retry_payload,
    set_error,
    settle_associations,
    settle_records,
)
from shared.storage.ledger import LedgerEntry

__all__ = [
    "Delivery",
    "PlannedBatch",
    "PlannedRecord",
    "RetryLater",
    "WriteReport",
    "plan_records",
    "process_write_batch",
    "process_write_message",
]

log = logger("worker")


class RetryLater(Exception):
    """Some records hit transient failures; raising lets Service Bus redeliver the message."""


@dataclass
class _Reads:
    """What the read phase found: the Dynamics id each item goes to, current rows, and re-check matches."""

    targets: list[str]
    existing: dict[str, dict[str, Any]]
    ambiguous: dict[int, list[str]]
    new_aliases: dict[str, str]


def _ids(ctx: WorkspaceContext, message: WriteMessage) -> list[str]:
    """Each item's Dynamics id: fixed at accept time for creates, alias-resolved for updates."""
    if message.operation == "create":
        return [item.crm_id for item in message.items]
    resolved = ctx.services.aliases.resolve(ctx.workspace.id, message.kind, [i.crm_id for i in message.items])
    return [resolved.get(item.crm_id.lower(), item.crm_id.lower()) for item in message.items]


def _read(ctx: WorkspaceContext, message: WriteMessage, record_type: RecordType, budget: Budget) -> _Reads:
    """One `$batch`: the re-check of records not matched at accept time, and every record's current values."""
    items, entity = list(message.items), record_type.entity
    columns = record_type.export.columns()
    unmatched = [i for i, item in enumerate(items) if not item.matched] if message.operation == "create" else []
    records = [{**items[i].fields, "externalId": items[i].external_id} for i in unmatched]
    ids = _ids(ctx, message)
    target = record_type.match_target(extra_select=columns)
    candidates = recheck_queries(target, records)
    found = run_queries(
        ctx.client, [*candidates, *plan_id_queries(entity.entity_set, entity.primary_id, ids, columns)], budget
    )
    existing = {str(row[entity.primary_id]).lower(): row for rows in found[len(candidates) :] for row in rows}
    rematched = match_planned(target, records, candidates, found[: len(candidates)])
    reads = _Reads(ids, existing, {i: list(item.ambiguous_ids) for i, item in enumerate(items)}, {})
    for i in unmatched:
        _adopt(reads, i, items[i], rematched.get(str(items[i].external_id)))
    return reads


def _adopt(reads: _Reads, index: int, item: WriteItem, found: Match | None) -> None:
    """A record accepted as new that now matches an existing one: write there, and alias the issued id."""
    if found is None or found.crm_id == item.crm_id:
        return
    reads.new_aliases[item.crm_id] = found.crm_id
    reads.ambiguous[index] = found.ambiguous_ids
    reads.existing[found.crm_id] = found.row
    reads.targets[index] = found.crm_id


def _campaign_seen(
    ctx: WorkspaceContext, record_type: RecordType, items: list[WriteItem], targets: list[str]
) -> set[str]:
    """Contacts seen in campaign-updates: engaged even when Genesy sent no `campaigns`, and a contact
    created after its campaign events gets its campaign columns with the create."""
    if record_type.is_company or not (record_type.export.engagement or ctx.mappings.campaign.enabled):
        return set()
    return ctx.services.campaign_state.engaged(ctx.workspace.id, [*(i.crm_id for i in items), *targets])


def _plan_one(
    ctx: WorkspaceContext,
    message: WriteMessage,
    record_type: RecordType,
    context: tuple[EntityMetadata, UserDirectory, set[str]],
    reads: _Reads,
    index: int,
) -> PlannedRecord:
    item, target = message.items[index], reads.targets[index]
    metadata, users, seen = context
    current = reads.existing.get(target)
    if message.operation == "update" and current is None:
        error = ("0x80040217", f"{record_type.entity.label} {target} does not exist in Dynamics")
        return PlannedRecord(index, item, target, None, None, reads.ambiguous[index], error)
    in_campaign = bool({item.crm_id, target} & seen)
    plan = build_record(
        record_type.export,
        item.fields,
        export_values=message.export_values,
        existing=current,
        metadata=metadata,
        engaged=is_engaged(item.fields, campaign_activity_seen=in_campaign),
        owner=resolve_owner(item.fields, ctx.mappings.users, users, creating=current is None),
    )
    if current is None and in_campaign and ctx.mappings.campaign.enabled:
        for column, value in campaign_columns(ctx, item.crm_id).items():
            plan.body.setdefault(column, value)
    return PlannedRecord(index, item, target, current, plan, reads.ambiguous[index])


def plan_records(ctx: WorkspaceContext, message: WriteMessage, budget: Budget) -> PlannedBatch:
    """The read phase and the pure mapping of a create/update message; writes nothing.

    Shared by the worker and the export preview, so a preview shows exactly what an export would do.
    """
    record_type = ctx.record(message.kind)
    reads = _read(ctx, message, record_type, budget)
    metadata = ctx.client.entity_metadata(record_type.entity.logical_name, budget=budget)
    users = UserDirectory.of(enabled_users(ctx))
    seen = _campaign_seen(ctx, record_type, list(message.items), reads.targets)
    context = (metadata, users, seen)
    planned = [_plan_one(ctx, message, record_type, context, reads, i) for i in range(len(message.items))]
    return PlannedBatch(planned, reads.new_aliases)


def _remember_aliases(ctx: WorkspaceContext, kind: str, batch: PlannedBatch) -> None:
    if batch.new_aliases:
        ctx.services.aliases.add(ctx.workspace.id, kind, batch.new_aliases)
    passed_over = {r.target: r.ambiguous_ids for r in batch.records if r.ambiguous_ids}
    if passed_over and kind == "company":
        # Associations must not move a contact away from one of these to the chosen record.
        ctx.services.aliases.add_alternatives(ctx.workspace.id, kind, passed_over)


def _remember_writes(ctx: WorkspaceContext, kind: str, written: list[PlannedRecord]) -> None:
    """Ids we issued are no longer pending; what this process just wrote is known to exist (a new contact
    has no parent account yet)."""
    for record in written:
        ctx.services.recent.saw(ctx.workspace.id, kind, record.target, "" if record.current is None else None)
    ours = [r.target for r in written if issued_kind(ctx.workspace.id, r.target) == kind]
    ctx.services.aliases.mark_written(ctx.workspace.id, kind, ours)


def _write_records(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    batch = plan_records(ctx, message, budget)
    _remember_aliases(ctx, message.kind, batch)
    decision = decide_records(ctx.workspace.id, message, batch, delivery)
    results = ctx.client.write_many(ctx.entity(message.kind).entity_set, decision.specs(), budget=budget)
    report = settle_records(decision, message, results, final_attempt)
    _remember_writes(ctx, message.kind, [r for (r, _, _), res in zip(decision.writes, results, strict=True) if res.ok])
    ctx.services.ledger.record(decision.entries)
    return report


def _parents_to_keep(
    ctx: WorkspaceContext, message: WriteMessage, resolved: tuple[dict[str, str], dict[str, str]], budget: Budget
) -> dict[tuple[str, str], str]:
    """Pairs whose contact is already under one of the records the ambiguous match of that company passed
    over (one read, only when a pair involves such a company): (contact, company) → the parent it keeps."""
    contacts, companies = resolved
    alternatives = ctx.services.aliases.alternatives(ctx.workspace.id, "company", companies.values())
    if not alternatives:
        return {}
    pairs = [
        (contacts.get(i.crm_id, i.crm_id), companies.get(str(i.company_id), str(i.company_id))) for i in message.items
    ]
    entity, parent = ctx.contact, str(ctx.contact.parent_value)
    at_stake = [contact for contact, company in pairs if company in alternatives]
    queries = plan_id_queries(entity.entity_set, entity.primary_id, at_stake, [parent])
    parents = {
        str(row[entity.primary_id]).lower(): str(row.get(parent) or "").lower()
        for rows in run_queries(ctx.client, queries, budget)
        for row in rows
    }
    return {
        (contact, company): parents[contact]
        for contact, company in pairs
        if parents.get(contact) in alternatives.get(company, ())
    }


def _associate(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    """Set each contact's parent account: one `$batch` of updates, no read first.

    A missing contact or account comes back as that record's 404 (reported as Genesy words it);
    setting a parent the contact already has changes nothing in Dynamics.
    """
    aliases = ctx.services.aliases
    resolved = (
        aliases.resolve(ctx.workspace.id, "contact", [i.crm_id for i in message.items]),
        aliases.resolve(ctx.workspace.id, "company", [str(i.company_id) for i in message.items]),
    )
    keep = _parents_to_keep(ctx, message, resolved, budget)
    decision = decide_associations(ctx.workspace.id, message, delivery, resolved, keep)
    results = ctx.client.write_many(ctx.contact.entity_set, decision.specs(ctx.contact), budget=budget)
    report = settle_associations(decision, message, results, final_attempt, ctx.contact.logical_name)
    for contact_id, (_, company_id, entry) in decision.links.items():
        if entry.status == "updated":
            ctx.services.recent.saw(ctx.workspace.id, "contact", contact_id, company_id)
    ctx.services.ledger.record(decision.entries)
    return report


def _write_queued(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    """Tasks and activities Genesy sent for a record that was not written yet; they come after it."""
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
            set_error(entry, exc)
            if isinstance(exc, RecordNotFound):
                entry.message = (
                    f"the record this {message.kind} is about is not in Dynamics ({exc.message}); its own "
                    "export failed or it was deleted — see its ledger row"
                )
            entry.retry = retry_payload(message, item)
        report.count(entry.status)
        entries.append(entry)
    ctx.services.ledger.record(entries)
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
            retry=retry_payload(message, item),
        )
        set_error(entry, error)
        entries.append(entry)
    ctx.services.ledger.record(entries)


METRICS_PREFIX = "genesy_metrics "


def _metrics(message: WriteMessage, report: WriteReport, usage: RequestUsage, delivery: int) -> str:
    """One line per message for Application Insights (a `traces` row): what was written, skipped and
    failed in which workspace, what it cost in Dataverse requests and 429s, and how long it queued.
    The alerts and the workbook in infra/ parse it with `parse_json(substring(message, 15))`."""
    counts = report.counts
    lag = (datetime.now(UTC) - message.accepted_at).total_seconds()
    return METRICS_PREFIX + json.dumps(
        {
            "workspace_id": message.workspace_id,
            "operation": message.operation,
            "kind": message.kind,
            "written": sum(counts.get(s, 0) for s in ("created", "updated", "ambiguous")),
            "skipped": counts.get("skipped", 0),
            "failed": counts.get("failed", 0),
            "retrying": counts.get("retrying", 0),
            "dataverse_requests": usage.requests,
            "throttled": usage.throttled,
            "queue_lag_ms": max(0, round(lag * 1000)),
            "delivery": delivery,
        },
        separators=(",", ":"),
    )


def _process(
    ctx: WorkspaceContext, message: WriteMessage, budget: Budget, final_attempt: bool, delivery: int
) -> WriteReport:
    try:
        if message.operation == "associate":
            return _associate(ctx, message, budget, final_attempt, delivery)
        if message.kind in ("task", "activity"):
            return _write_queued(ctx, message, budget, final_attempt, delivery)
        return _write_records(ctx, message, budget, final_attempt, delivery)
    except DataverseError as exc:
        # The whole message failed. Transient (Dynamics unavailable past the budget, throttled, a
        # token error): every record goes in the ledger as `retrying` and the message is redelivered
        # (`failed` on the last delivery). Permanent (a query Dynamics refuses, a missing privilege):
        # every record is `failed` at once with the reason and the fix, and the message is done.
        transient = redelivery_helps(exc)
        _record_message_failure(ctx, message, exc, final_attempt or not transient, delivery)
        if transient:
            raise
        log.warning("write message %s %s failed for good: %s", message.operation, message.kind, exc.code)
        return WriteReport(message.operation, message.kind, {"failed": len(message.items)})


def process_write_message(
    services: Services, body: Mapping[str, Any], *, delivery_count: int = 1, max_delivery_count: int = 10
) -> WriteReport:
    """Process one message; raises `RetryLater` (or a Dataverse error) when it should be redelivered."""
    message = WriteMessage.model_validate(body)
    return _process_message(services, message, delivery_count, delivery_count >= max_delivery_count)


def _process_message(
    services: Services, message: WriteMessage, delivery_count: int, final_attempt: bool, budget: Budget | None = None
) -> WriteReport:
    ctx = services.workspace(message.workspace_id)
    budget = budget or Budget(services.settings.write_budget_seconds)
    with correlation_scope(message.correlation_id), usage_scope() as usage, fair_share(message.workspace_id):
        try:
            report = _process(ctx, message, budget, final_attempt, delivery_count)
        except DataverseError:
            outcome = "failed" if final_attempt else "retrying"
            failed = WriteReport(message.operation, message.kind, {outcome: len(message.items)})
            log.info("%s", _metrics(message, failed, usage, delivery_count))
            raise
    log.info("write message %s %s: %s (delivery %d)", message.operation, message.kind, report.counts, delivery_count)
    log.info("%s", _metrics(message, report, usage, delivery_count))
    if report.retryable:
        raise RetryLater(f"{report.retryable} records hit transient Dataverse failures; redelivering")
    return report


@dataclass(frozen=True)
class Delivery:
    """One message of a batch as the trigger hands it over."""

    body: bytes
    delivery_count: int
    session_id: str
    message_id: str


def _conflict_keys(ctx: WorkspaceContext, message: WriteMessage) -> frozenset[str]:
    """What a message may touch: the Dynamics ids it writes (alias-resolved) and, for creates, every
    identity its records could be matched by in the worker's re-check."""
    if message.operation == "associate":
        contacts = [i.crm_id for i in message.items]
        resolved = ctx.services.aliases.resolve(ctx.workspace.id, "contact", contacts)
        return frozenset(f"id:{resolved.get(c.lower(), c.lower())}" for c in contacts)
    if message.operation not in ("create", "update"):
        return frozenset(f"id:{i.crm_id.lower()}" for i in message.items)
    keys = {f"id:{target}" for target in _ids(ctx, message)}
    if message.operation == "create":
        target = ctx.record(message.kind).match_target()
        for item in message.items:
            for rule, values in record_keys(target, {**item.fields, "externalId": item.external_id}):
                keys.add(f"key:{rule}:" + "\x1f".join(values))
    return frozenset(keys)


def _unreadable(services: Services, delivery: Delivery, error: Exception, final_attempt: bool) -> None:
    """A message this worker cannot read (a bug, or a newer version's message during a deployment): the
    batch is redelivered like a single message would be; on the last delivery it goes in the ledger of
    its session's workspace with the reason instead of taking the batch's other messages to the
    dead-letter queue with it."""
    if isinstance(error, ValidationError):  # fields and what is wrong, never the values
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]]
        reason = "; ".join(problems)[:500]
    else:
        reason = type(error).__name__
    if not final_attempt:
        raise RetryLater(f"message {delivery.message_id} cannot be read ({reason}); redelivering the batch")
    log.error("write message %s cannot be read, recorded in the ledger: %s", delivery.message_id, reason)
    services.ledger.record(
        [
            LedgerEntry(
                workspace_id=delivery.session_id,
                kind="message",
                operation="create",
                key=delivery.message_id,
                status="failed",
                code="UnreadableMessage",
                message=(
                    f"a genesy-writes message could not be read after {delivery.delivery_count} deliveries "
                    f"({reason}); its records were not written — export them again from Genesy"
                ),
                attempts=delivery.delivery_count,
                message_id=delivery.message_id,
            )
        ]
    )


class _Schedule:
    """Start each message once every message it must wait for is done, at most `parallel` at a time, in
    session order. After a failure nothing more starts; the messages in flight finish; `run` returns the
    reports and the first failure. Messages started together share the environment's concurrency: each
    writes in fewer, larger requests."""

    def __init__(
        self,
        services: Services,
        parsed: Sequence[tuple[WriteMessage, int]],
        waits: Sequence[frozenset[int]],
        final_attempt: bool,
        budget: Budget,
    ) -> None:
        self.services, self.parsed, self.waits = services, parsed, waits
        self.final_attempt, self.budget = final_attempt, budget
        self.cond = threading.Condition()
        self.done: set[int] = set()
        self.started: set[int] = set()
        self.reports: dict[int, WriteReport] = {}
        self.failures: list[BaseException] = []
        self.in_flight = 0

    def _process(self, position: int, sharing: int) -> tuple[WriteReport | None, BaseException | None]:
        message, delivery_count = self.parsed[position]
        try:
            with sharing_writers(sharing):
                return _process_message(self.services, message, delivery_count, self.final_attempt, self.budget), None
        except DataverseError as exc:
            if not self.final_attempt:
                return None, exc
            # On the last attempt a Dataverse failure is in the ledger as `failed` already: done.
            return WriteReport(message.operation, message.kind, {"failed": len(message.items)}), None
        except BaseException as exc:
            return None, exc

    def _work(self, position: int, sharing: int) -> None:
        report, error = self._process(position, sharing)
        with self.cond:
            self.in_flight -= 1
            if report is not None:
                self.done.add(position)
                self.reports[position] = report
            if error is not None:
                self.failures.append(error)
            self.cond.notify_all()

    def _ready(self, room: int) -> list[int]:
        ready = (p for p in range(len(self.parsed)) if p not in self.started and self.waits[p] <= self.done)
        return list(islice(ready, max(0, room)))

    def run(self, parallel: int) -> tuple[list[WriteReport], BaseException | None]:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="writes-message") as pool, self.cond:
            while True:
                chosen = [] if self.failures else self._ready(parallel - self.in_flight)
                self.in_flight += len(chosen)
                for position in chosen:
                    self.started.add(position)
                    pool.submit(contextvars.copy_context().run, self._work, position, self.in_flight)
                if self.in_flight == 0 and (self.failures or len(self.done) == len(self.parsed)):
                    break
                self.cond.wait()
        return [self.reports[p] for p in sorted(self.reports)], (self.failures[0] if self.failures else None)


def process_write_batch(
    services: Services, deliveries: Sequence[Delivery], *, max_delivery_count: int = 10, parallel: int = 8
) -> list[WriteReport]:
    """A batch of one session's messages (the trigger's `cardinality: many`), in session order.

    Messages that commute (`shared.domain.write_messages.commute`: same operation and kind, no record or
    identity in common) are processed at the same time, up to `parallel`: each message starts once every
    earlier message it does not commute with is done (`must_wait_for`), so one message's reads and ledger
    rows overlap others' Dataverse writes while companies still come before contacts, contacts before
    their associations, one record's writes in Genesy's order. The Functions binding settles a batch as
    a whole, so: a message that must be redelivered (transient failures) ends the batch with an
    exception once the messages in flight finish — nothing more starts, every message comes again, and
    those already written rewrite the same records (ids are fixed); and when any message of the batch is
    on its last delivery the whole batch is processed as a last attempt — what still fails goes in the
    ledger as `failed` with Dataverse's reason (retried by the reconciliation when it is transient) and
    the batch completes, so no message that was written ends in the dead-letter queue.
    The batch shares one `WRITE_BUDGET_SECONDS` budget, so it stays within the function's timeout.
    """
    budget = Budget(services.settings.write_budget_seconds)
    final_attempt = any(d.delivery_count >= max_delivery_count for d in deliveries)
    parsed: list[tuple[WriteMessage, int]] = []
    for delivery in deliveries:
        try:
            parsed.append((WriteMessage.model_validate_json(delivery.body), delivery.delivery_count))
        except (ValidationError, ValueError) as exc:
            _unreadable(services, delivery, exc, final_attempt)
    if not parsed:
        return []
    parallel = max(1, parallel)
    ctx = services.workspace(parsed[0][0].workspace_id)
    messages = [message for message, _ in parsed]
    keys = [
        _conflict_keys(ctx, m) if m.workspace_id == ctx.workspace.id else frozenset({"workspace:" + m.workspace_id})
        for m in messages
    ]
    schedule = _Schedule(services, parsed, must_wait_for(messages, keys), final_attempt, budget)
    reports, failure = schedule.run(parallel)
    log.info("write batch: %d messages in %.2f s%s", len(messages), budget.seconds - budget.remaining(),
             "" if failure is None else f", redelivered: {type(failure).__name__}")  # fmt: skip
    if failure is not None:
        raise failure
    return reports
