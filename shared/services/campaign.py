"""The campaign worker's core: one `campaign-updates` event → stored state → the contact's campaign columns.

Per message: validate the event, resolve the contact id through the aliases, apply the event to the
stored state (ETag-checked), flag the contact as engaged, render every campaign of the contact into the
mapped columns and write them (`update_only`). Dataverse rejecting the values, or the contact not being
in Dynamics, is recorded in the ledger (kind `campaign`); transient failures raise so Service Bus
redelivers — the state is already applied, and the columns are re-rendered from it, so a redelivery
never double counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError, RecordNotFound, ValidationFailed
from shared.domain.campaign import CampaignEvent, CampaignState, render_columns
from shared.messaging.queue import OutgoingMessage
from shared.platform.correlation import correlation_scope
from shared.platform.errors import NotFound as WorkspaceNotFound
from shared.platform.logs import logger
from shared.services.root import Services, WorkspaceContext
from shared.storage.ledger import LedgerEntry, LedgerStatus

__all__ = [
    "CAMPAIGN_WAITING",
    "CampaignOutcome",
    "InvalidCampaignEvent",
    "campaign_columns",
    "campaign_message",
    "process_campaign_message",
    "send_campaign_events",
    "write_waiting_campaign",
]

log = logger("campaign")

_INTEGER_TYPES = frozenset({"Integer", "BigInt"})
# The ledger message of campaign values kept for a contact not (yet) in Dynamics; reconciliation finds them by it.
CAMPAIGN_WAITING = "is not in Dynamics; its campaign values are kept and written later"
_TEXT_TYPES = frozenset({"String", "Memo"})


def campaign_message(event: CampaignEvent) -> OutgoingMessage:
    """The Service Bus message for one event: session = workspace + contact, id derived from the event id."""
    digest = hashlib.sha256(f"{event.workspace_id}\x1f{event.event_id}".encode()).hexdigest()[:48]
    return OutgoingMessage(
        body=event.model_dump(mode="json", exclude_none=True),
        session_id=event.session_id,
        message_id=f"campaign-{digest}",
        application_properties={"event": event.event},
    )


def send_campaign_events(services: Services, events: Iterable[CampaignEvent]) -> None:
    messages = [campaign_message(e) for e in events]
    if messages:
        services.sender.send(services.settings.campaign_queue, messages)


@dataclass(frozen=True)
class CampaignOutcome:
    status: Literal["updated", "skipped", "failed", "dropped"]
    changed: bool = False
    columns: tuple[str, ...] = ()
    reason: str | None = None


def _entry(
    ctx: WorkspaceContext, event: CampaignEvent, target: str, status: LedgerStatus, delivery: int, **more: Any
) -> LedgerEntry:
    return LedgerEntry(
        workspace_id=ctx.workspace.id,
        kind="campaign",
        operation="update",
        key=f"{event.contact_id.lower()}|{event.campaign}",
        status=status,
        crm_id=target,
        external_id=event.contact_id,
        attempts=delivery,
        message_id=event.event_id,
        correlation_id=event.correlation_id,
        **more,
    )


def _render(
    ctx: WorkspaceContext, states: list[CampaignState], budget: Budget
) -> tuple[dict[str, str | int], list[str]]:
    """The contact's campaign columns (fitted to the live column metadata) and warnings about unusable ones."""
    mapping = ctx.mappings.campaign
    entity = ctx.contact
    if not mapping.enabled or not mapping.columns or not states:
        return {}, []
    metadata = ctx.client.entity_metadata(entity.logical_name, budget=budget)
    usable = {
        value: column
        for value, column in mapping.columns.items()
        if column in metadata.columns
        and metadata.columns[column].type in _TEXT_TYPES | _INTEGER_TYPES
        and metadata.columns[column].valid_for_update
    }
    skipped = sorted(set(mapping.columns.values()) - set(usable.values()))
    warnings = [f"column {c} is not a writable text or whole-number column of {entity.logical_name}" for c in skipped]
    body = render_columns(
        states,
        mapping.model_copy(update={"columns": usable}),
        {c: metadata.columns[c].max_length for c in usable.values()},
        integer_columns=[c for c in usable.values() if metadata.columns[c].type in _INTEGER_TYPES],
    )
    return body, warnings


def campaign_columns(ctx: WorkspaceContext, contact_id: str, *, budget: Budget | None = None) -> dict[str, str | int]:
    """The campaign columns for a contact from its stored state (e.g. for a contact created after its events)."""
    target = ctx.services.aliases.resolve(ctx.workspace.id, "contact", [contact_id])[contact_id.lower()]
    states = ctx.services.campaign_state.states(ctx.workspace.id, target)
    return _render(ctx, states, budget or Budget(ctx.settings.write_budget_seconds))[0]


def write_waiting_campaign(ctx: WorkspaceContext, entry: LedgerEntry, target: str) -> bool:
    """Reconciliation: write the campaign values a ledger row kept waiting, now that `target` (the contact, or
    the record its id became an alias of) exists; the row becomes `updated`. Whether anything was written."""
    ws = ctx.workspace.id
    contact_id = str(entry.crm_id).lower()
    states = {s.key: s for s in ctx.services.campaign_state.states(ws, contact_id)}
    if target != contact_id:  # events may also have come under the survivor's id: those are newer
        states.update({s.key: s for s in ctx.services.campaign_state.states(ws, target)})
    budget = Budget(ctx.settings.write_budget_seconds)
    body, warnings = _render(ctx, list(states.values()), budget)
    if not body:
        return False
    ctx.client.update(ctx.contact.entity_set, target, body, budget=budget)
    entry.status, entry.code, entry.crm_id, entry.warnings = "updated", None, target, warnings
    entry.message = "campaign values written by reconciliation once the contact existed"
    entry.at = datetime.now(UTC)
    ctx.services.ledger.record([entry])
    return True


def _write_columns(
    ctx: WorkspaceContext, event: CampaignEvent, target: str, states: list[CampaignState], delivery: int
) -> CampaignOutcome:
    mapping = ctx.mappings.campaign
    entity = ctx.contact
    if not mapping.enabled or not mapping.columns:
        return CampaignOutcome("skipped", reason="campaign mapping is disabled or maps no column")
    budget = Budget(ctx.settings.write_budget_seconds)
    body, warnings = _render(ctx, states, budget)
    ledger = ctx.services.ledger
    if not body:
        ledger.record([_entry(ctx, event, target, "skipped", delivery, warnings=warnings, message="no usable column")])
        return CampaignOutcome("skipped", reason="no usable column")
    try:
        ctx.client.update(entity.entity_set, target, body, budget=budget)
    except (RecordNotFound, ValidationFailed) as exc:
        if isinstance(exc, RecordNotFound):
            reason = f"{entity.label} {target} {CAMPAIGN_WAITING}"
        else:
            reason = f"{exc.column}: {exc.message}" if exc.column and exc.column not in exc.message else exc.message
        ledger.record(
            [
                _entry(
                    ctx,
                    event,
                    target,
                    "failed",
                    delivery,
                    code=exc.code or type(exc).__name__,
                    message=reason,
                    warnings=warnings,
                )
            ]
        )
        return CampaignOutcome("failed", columns=tuple(body), reason=reason)
    ledger.record([_entry(ctx, event, target, "updated", delivery, warnings=warnings)])
    return CampaignOutcome("updated", columns=tuple(body))


class InvalidCampaignEvent(ValueError):
    """The message is not a campaign event (a poison message)."""


def process_campaign_message(
    services: Services, body: Mapping[str, Any], *, delivery_count: int = 1
) -> CampaignOutcome:
    """Apply one event and write the contact's campaign columns; raises when it should be redelivered."""
    try:
        event = CampaignEvent.model_validate(body)
    except ValidationError as exc:
        # A malformed event never becomes valid: it ends in the dead-letter queue with this reason
        # (after the queue's deliveries), where an operator can see, fix and replay it.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)[:5]
        )
        raise InvalidCampaignEvent(f"invalid campaign event: {problems}") from None
    try:
        ctx = services.workspace(event.workspace_id)
    except WorkspaceNotFound:
        log.error("campaign event %s dropped: workspace %s does not exist", event.event_id, event.workspace_id)
        return CampaignOutcome("dropped", reason="unknown workspace")
    with correlation_scope(event.correlation_id):
        target = ctx.services.aliases.resolve(ctx.workspace.id, "contact", [event.contact_id])[event.contact_id.lower()]
        store = services.campaign_state
        changed, states = store.apply(ctx.workspace.id, target, event)
        store.mark_engaged(ctx.workspace.id, [event.contact_id, target])
        try:
            outcome = _write_columns(ctx, event, target, states, delivery_count)
        except DataverseError as exc:
            log.warning("campaign columns of %s not written (%s); redelivering", target, exc.code or type(exc).__name__)
            raise
    log.info("campaign event %s %s: %s", event.event, event.event_id, outcome.status)
    return CampaignOutcome(outcome.status, changed, outcome.columns, outcome.reason)
