"""Genesy's conversation-events webhooks: the secret per workspace, receiving a delivery, processing it.

- **Secret**: Genesy sends the subscription's secret verbatim in `X-Webhook-Secret` (8 to 256 characters).
  We issue it (shown once), keep only its HMAC (`mapping_store.keys.hash_key` with `API_KEY_HASH_SECRET`)
  and compare in constant time; a rotation keeps the older secrets valid for a grace period, as for API
  keys. A wrong or missing secret, or an unknown workspace, is one 401 and nothing is stored.
- **Receiving**: the raw delivery is stored first (key = workspace + a delivery id derived from the
  parser's event id, so a retried delivery is the same row), then processed; a delivery already
  processed is answered `duplicate` without processing it again.
- **Processing**: `parse_webhook` → `actions_for`; the contact is the delivery's CRM id (through the
  aliases) or the one the matcher finds for its identity. No contact yet → the delivery waits (`waiting`)
  for a reprocess. Then: a campaign event (only when the delivery names a campaign; its id is the one
  `POST /activities` uses for the same message, so the two never count twice), a completed LinkedIn
  connection activity, or the engaged flag.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from mapping_store.keys import hash_key
from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.campaign import CampaignEvent
from shared.domain.entities import is_guid
from shared.domain.genesy_models import ActivityCreate
from shared.domain.webhooks import (
    ParsedWebhook,
    WebhookAction,
    WebhookParseError,
    actions_for,
    campaign_event_id,
    parse_webhook,
)
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import AppError, NotFound, Unauthorized, UpstreamUnavailable
from shared.platform.logs import logger
from shared.services.activities import log_activity
from shared.services.campaign import send_campaign_events
from shared.services.matcher import find_matches
from shared.services.root import Services, WorkspaceContext
from shared.storage.webhooks import Delivery, DeliveryStatus, ParseOutcome

__all__ = [
    "MAX_REPROCESS",
    "SECRET_HEADER",
    "DeliveriesQuery",
    "DeliveryView",
    "ReprocessReply",
    "ReprocessRequest",
    "WebhookAccepted",
    "WebhookBody",
    "WebhookDeliveries",
    "WebhookSecretIssued",
    "WebhookSecretRequest",
    "check_secret",
    "issue_secret",
    "list_deliveries",
    "receive_webhook",
    "reprocess_deliveries",
    "url_path",
]

log = logger("webhooks")

SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name
MIN_SECRET, MAX_SECRET = 8, 256
MAX_REPROCESS = 500
MAX_GRACE_SECONDS = 30 * 86_400  # functions.admin_workspaces.MAX_GRACE_SECONDS
_DONE: frozenset[str] = frozenset({"processed", "ignored"})
_REPROCESSABLE = Literal["unparsed", "waiting", "failed"]


def url_path(workspace_id: str) -> str:
    return f"/api/webhooks/genesy/{workspace_id}"


# ---------------------------------------------------------------------------------------------
# Bodies and replies


class WebhookSecretRequest(BaseModel):
    """Optional body of `POST …/webhook-secret`: how long older secrets stay valid (default: the key grace)."""

    model_config = ConfigDict(extra="forbid")
    grace_seconds: float | None = Field(default=None, ge=0, le=MAX_GRACE_SECONDS)


class WebhookSecretIssued(BaseModel):
    """A new webhook secret, shown this once; give it to Genesy as the subscription's `secret`."""

    secret: str
    url_path: str
    header: str = SECRET_HEADER
    previous_secrets_expire_at: datetime | None = None
    note: str = "shown once: give it to Genesy as the webhook subscription's secret; only its hash is kept"


class WebhookAccepted(BaseModel):
    """`POST /webhooks/genesy/{workspace_id}` reply (202)."""

    accepted: bool = True
    duplicate: bool = False
    status: str


class DeliveryView(BaseModel):
    """One stored delivery (its body is kept, not shown)."""

    id: str
    event_type: str | None = None
    event_id: str | None = None
    outcome: Literal["parsed", "unparsed", "ignored"] | None = None
    status: str
    reason: str | None = None
    contact_id: str | None = None
    received_at: datetime
    processed_at: datetime | None = None
    attempts: int = 0
    truncated: bool = False


class WebhookDeliveries(BaseModel):
    """`GET …/webhook-deliveries` reply: newest first."""

    workspace_id: str
    deliveries: list[DeliveryView]


class DeliveriesQuery(BaseModel):
    """`GET …/webhook-deliveries` query."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["received", "processed", "waiting", "unparsed", "ignored", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class ReprocessRequest(BaseModel):
    """Which stored deliveries to run through the current parser again: by id, or every one in a status."""

    model_config = ConfigDict(extra="forbid")
    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_REPROCESS)
    status: _REPROCESSABLE | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ReprocessRequest:
        if (self.ids is None) == (self.status is None):
            raise ValueError("give either ids or status")
        return self


class ReprocessResult(BaseModel):
    id: str
    status: str
    reason: str | None = None


class ReprocessReply(BaseModel):
    """`POST …/webhook-deliveries/reprocess` reply."""

    reprocessed: int
    results: list[ReprocessResult]


# ---------------------------------------------------------------------------------------------
# The secret


def _digest(services: Services, secret: str) -> str:
    return hash_key(services.settings.api_key_hash_secret, secret)


def issue_secret(services: Services, workspace_id: str, grace_seconds: float | None) -> WebhookSecretIssued:
    """A new secret for the workspace (404 for an unknown one); older secrets expire after the grace."""
    workspace = services.store.get_workspace(workspace_id)
    secret = "gdw_" + secrets.token_urlsafe(32)
    grace = services.settings.key_grace_seconds if grace_seconds is None else grace_seconds
    expire = services.webhooks.rotate_secret(workspace.id, _digest(services, secret), grace)
    log.info("issued a webhook secret for workspace %s", workspace.id)
    return WebhookSecretIssued(secret=secret, url_path=url_path(workspace.id), previous_secrets_expire_at=expire)


def check_secret(services: Services, workspace_id: str, headers: Mapping[str, str]) -> WorkspaceContext:
    """The workspace of a delivery carrying one of its secrets; one `Unauthorized` otherwise."""
    refused = Unauthorized("invalid webhook secret")
    secret = headers.get(SECRET_HEADER) or headers.get(SECRET_HEADER.lower()) or ""
    if not (MIN_SECRET <= len(secret) <= MAX_SECRET) or not workspace_id:
        raise refused
    if not services.webhooks.verify_secret(workspace_id, _digest(services, secret)):
        log.info("refused a webhook delivery for workspace %s: wrong or missing secret", workspace_id[:64])
        raise refused
    try:
        return services.workspace(workspace_id)
    except NotFound:
        raise refused from None


# ---------------------------------------------------------------------------------------------
# Parsing and processing


@dataclass(frozen=True)
class _Parse:
    parsed: ParsedWebhook | None
    reason: str | None


def _parse(text: str) -> _Parse:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _Parse(None, f"not JSON: {exc}"[:300])
    try:
        return _Parse(parse_webhook(data), None)
    except WebhookParseError as exc:
        return _Parse(None, str(exc)[:300] or "not a webhook Genesy documents")


def _delivery_id(text: str, parsed: ParsedWebhook | None) -> str:
    if parsed is not None:
        return "e" + hashlib.sha256(parsed.event_id.encode()).hexdigest()[:40]
    return "b" + hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class _Result:
    status: DeliveryStatus
    outcome: ParseOutcome
    reason: str | None = None
    contact_id: str | None = None


def _campaign(parsed: ParsedWebhook) -> str | None:
    for value in (parsed.campaign_name, parsed.campaign_id):
        text = str(value).strip() if value is not None else ""
        if text:
            return text[:200]
    return None


def _nothing_to_do(parsed: ParsedWebhook, action: WebhookAction) -> str | None:
    """Why the delivery changes nothing (None when it does)."""
    campaign = action.campaign_event is not None and _campaign(parsed) is not None
    if campaign or action.activity_type is not None or action.engagement:
        return None
    if action.campaign_event is not None:
        return f"{parsed.event_type} names no campaign: no campaign value to change"
    return f"{parsed.event_type} changes nothing in Dynamics"


def _contact(ctx: WorkspaceContext, parsed: ParsedWebhook) -> str | None:
    """The contact the delivery is about: its CRM id (through the aliases), else the identity's match."""
    crm_id = (parsed.identity.crm_id or "").strip()
    if crm_id and is_guid(crm_id):
        return ctx.services.aliases.resolve(ctx.workspace.id, "contact", [crm_id])[crm_id.lower()]
    record = parsed.identity.as_record()
    if not record:
        return None
    external_id = f"webhook:{parsed.event_id}"
    target = ctx.record("contact").match_target()
    matches = find_matches(
        ctx.client, target, [{**record, "externalId": external_id}], Budget(ctx.settings.match_timeout_seconds)
    )
    match = matches.get(external_id)
    return match.crm_id if match is not None else None


def _occurred_at(parsed: ParsedWebhook, received: datetime) -> datetime:
    at = parsed.occurred_at
    return at if isinstance(at, datetime) else received


def _apply(ctx: WorkspaceContext, parsed: ParsedWebhook, action: WebhookAction, contact_id: str, at: datetime) -> None:
    campaign = _campaign(parsed)
    if action.campaign_event is not None and campaign is not None:
        reply = action.campaign_event == "reply"
        event = CampaignEvent(
            workspace_id=ctx.workspace.id,
            contact_id=contact_id,
            campaign=campaign,
            event=action.campaign_event,
            step=None if reply else parsed.step,
            step_count=parsed.step_count,
            occurred_at=at,
            event_id=campaign_event_id(parsed),
            detail={"source": "webhook", "channel": parsed.channel},
            correlation_id=current_correlation_id(),
        )
        send_campaign_events(ctx.services, [event])
    if action.activity_type is not None:
        log_activity(
            ctx,
            ActivityCreate(
                type=action.activity_type,
                direction=action.activity_direction or "INBOUND",
                contactId=contact_id,
                occurredAt=at,
                metadata={"messageId": parsed.message_id or f"webhook:{parsed.event_id}"},
            ),
        )
    if action.engagement:
        ctx.services.campaign_state.mark_engaged(ctx.workspace.id, [contact_id])


def _process(ctx: WorkspaceContext, parsed: ParsedWebhook, received: datetime) -> _Result:
    action = actions_for(parsed, engagement_events=ctx.settings.engagement_events())
    idle = _nothing_to_do(parsed, action)
    if idle is not None:
        return _Result("ignored", "ignored", idle)
    contact_id = _contact(ctx, parsed)
    if contact_id is None:
        reason = "no contact in Dynamics matches the delivery yet; reprocess it once the contact is exported"
        return _Result("waiting", "parsed", reason)
    try:
        _apply(ctx, parsed, action, contact_id, _occurred_at(parsed, received))
    except UpstreamUnavailable:
        raise
    except AppError as exc:
        return _Result("failed", "parsed", exc.message, contact_id)
    return _Result("processed", "parsed", None, contact_id)


def _run(ctx: WorkspaceContext, delivery: Delivery, parse: _Parse) -> Delivery:
    """Process a stored delivery and record the outcome; a Dataverse outage is recorded, then raised."""
    store = ctx.services.webhooks
    parsed = parse.parsed
    if parsed is None:
        return store.settle(delivery, status="unparsed", outcome="unparsed", reason=parse.reason)
    try:
        result = _process(ctx, parsed, delivery.received_at)
    except (DataverseError, UpstreamUnavailable) as exc:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        store.settle(
            delivery,
            status="failed",
            outcome="parsed",
            reason=reason,
            event_type=parsed.event_type,
            event_id=parsed.event_id,
        )
        if isinstance(exc, DataverseError):
            raise UpstreamUnavailable.from_error(exc) from None
        raise
    log.info("webhook %s %s: %s", parsed.event_type, parsed.event_id, result.status)
    return store.settle(
        delivery,
        status=result.status,
        outcome=result.outcome,
        reason=result.reason,
        event_type=parsed.event_type,
        event_id=parsed.event_id,
        contact_id=result.contact_id,
    )


def receive_webhook(services: Services, workspace_id: str, headers: Mapping[str, str], body: bytes) -> WebhookAccepted:
    """Authenticate, store the raw delivery, process it once; the 202 reply."""
    ctx = check_secret(services, workspace_id, headers)
    text = body.decode("utf-8", errors="replace")
    parse = _parse(text)
    delivery_id = _delivery_id(text, parse.parsed)
    store = services.webhooks
    existing = store.get(ctx.workspace.id, delivery_id)
    if existing is not None and existing.status in _DONE:
        return WebhookAccepted(duplicate=True, status=existing.status)
    parsed = parse.parsed
    delivery = existing or store.create(
        ctx.workspace.id,
        delivery_id,
        text,
        event_type=parsed.event_type if parsed else None,
        event_id=parsed.event_id if parsed else None,
    )
    if delivery is None:  # created meanwhile by a concurrent retry: that one processes it
        return WebhookAccepted(duplicate=True, status="received")
    settled = _run(ctx, delivery, parse)
    return WebhookAccepted(duplicate=existing is not None, status=settled.status)


# ---------------------------------------------------------------------------------------------
# Admin


def list_deliveries(services: Services, workspace_id: str, query: DeliveriesQuery) -> WebhookDeliveries:
    workspace = services.store.get_workspace(workspace_id)
    found = services.webhooks.recent(workspace.id, status=query.status, limit=query.limit)
    return WebhookDeliveries(
        workspace_id=workspace.id, deliveries=[DeliveryView.model_validate(d.view()) for d in found]
    )


def _selected(services: Services, workspace_id: str, request: ReprocessRequest) -> list[Delivery]:
    store = services.webhooks
    if request.ids is not None:
        return store.get_many(workspace_id, request.ids)
    listed = store.recent(workspace_id, status=request.status, limit=MAX_REPROCESS)
    return store.get_many(workspace_id, [d.id for d in reversed(listed)])  # oldest first


def reprocess_deliveries(services: Services, workspace_id: str, request: ReprocessRequest) -> ReprocessReply:
    """Run stored deliveries through the current parser again (oldest first when chosen by status)."""
    ctx = services.workspace(services.store.get_workspace(workspace_id).id)
    results: list[ReprocessResult] = []
    for delivery in _selected(services, ctx.workspace.id, request):
        try:
            settled = _run(ctx, delivery, _parse(delivery.body or ""))
        except UpstreamUnavailable as exc:
            results.append(ReprocessResult(id=delivery.id, status="failed", reason=exc.message))
            continue
        results.append(ReprocessResult(id=settled.id, status=settled.status, reason=settled.reason))
    return ReprocessReply(reprocessed=len(results), results=results)


def reprocess_waiting(services: Services, workspace_id: str, limit: int) -> dict[str, int]:
    """Reconciliation: the oldest `limit` deliveries still waiting for their contact, tried again (a contact
    exported since is found now): `{"tried": n, "processed": n}`."""
    if limit <= 0:
        return {"tried": 0, "processed": 0}
    waiting = services.webhooks.recent(workspace_id, status="waiting", limit=MAX_REPROCESS)[-limit:]
    if not waiting:
        return {"tried": 0, "processed": 0}
    ids = [d.id for d in reversed(waiting)]  # oldest first
    reply = reprocess_deliveries(services, workspace_id, ReprocessRequest(ids=ids))
    return {"tried": reply.reprocessed, "processed": sum(r.status == "processed" for r in reply.results)}


class WebhookBody(RootModel[dict[str, Any]]):
    """One Genesy webhook delivery: a JSON object, read tolerantly (`shared.domain.webhooks`). Its field names
    are not published; the event type (`eventType`/`event`/`type`), the contact (`contact`/`lead`/… or the
    event's own level: `crmId`, `email`, `linkedinUrl`, names) and the campaign, step and message id are
    looked for under their plausible names, at top level or wrapped in `data`/`payload`."""
