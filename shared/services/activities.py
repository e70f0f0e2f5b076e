"""Genesy activities → Dataverse activities, logged once each.

- EMAIL → an `email` activity: `directioncode` true for OUTBOUND, the body (HTML kept) as
  `description`, regarding the contact (or lead) else the account, parties from = our user and
  to = the contact for OUTBOUND (reversed for INBOUND); created completed (statecode 1, statuscode 2,
  "Completed") — it records a message Genesy sent, Dynamics never sends it.
- LINKEDIN, LINKEDIN_INMAIL, LINKEDIN_CONNECTION → a completed `task` whose subject starts with
  "[LinkedIn message sent]" and the like: a stock environment has no LinkedIn activity table, and a
  closed task shows in the record's timeline with the right date (`actualend` = occurredAt).
- Idempotent: the message key is `metadata.messageId` (else a hash of type, direction, contact,
  occurredAt and subject). A Table row per workspace and key holds the activity id, so a repeat
  returns the first activity; the Dataverse id itself is uuid5(workspace, key), so two racing calls
  still end in one record (the loser's create gets 412 and reads the winner's).
- Any other type Genesy may send (CALL, MEETING, NOTE, …) → a completed `task` labelled with it
  ("[Call]", "[Meeting]"): logged, never refused.
- An activity about a contact or company we accepted but have not written yet is accepted with its
  final id and queued behind that record in the workspace's ordered session (the worker writes it);
  the index answers for it meanwhile, so a repeat or `GET /activities/{id}` sees it at once.
- Every activity with a contact and a named campaign also goes to `campaign-updates` (OUTBOUND →
  `step` when the sequence position is known, else `sent`; INBOUND → `reply`, except an accepted
  connection request, which is no reply). An activity that names no campaign invents none: it is
  logged, and no campaign column changes. See `shared.domain.campaign` for the message contract.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.dataverse.activities import bind
from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError, RecordConflict, RecordNotFound, ValidationFailed
from shared.domain.campaign import CampaignEvent
from shared.domain.entities import is_guid
from shared.domain.genesy_models import ActivityCreate
from shared.domain.mapping_engine import resolve_sender
from shared.domain.write_messages import WriteItem as QueuedItem
from shared.domain.write_messages import WriteMessage
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import BadRequest, NotFound, UpstreamUnavailable, regarding_not_found
from shared.services.campaign import send_campaign_events
from shared.services.export import enqueue, is_pending, refuse_deleted
from shared.services.root import WorkspaceContext, enabled_users

__all__ = [
    "LINKEDIN_LABELS",
    "activity_id_for",
    "get_activity",
    "log_activity",
    "message_key",
    "write_queued_activity",
]

_NAMESPACE = uuid.UUID("0b8a2f6e-5c1d-4e7a-9f3b-2d6c8e1a4b57")
LINKEDIN_LABELS = {
    ("LINKEDIN", "OUTBOUND"): "LinkedIn message sent",
    ("LINKEDIN", "INBOUND"): "LinkedIn message received",
    ("LINKEDIN_INMAIL", "OUTBOUND"): "LinkedIn InMail sent",
    ("LINKEDIN_INMAIL", "INBOUND"): "LinkedIn InMail received",
    ("LINKEDIN_CONNECTION", "OUTBOUND"): "LinkedIn connection request sent",
    ("LINKEDIN_CONNECTION", "INBOUND"): "LinkedIn connection accepted",
}
_TASK_SUBJECT_MAX = 200
_TASK_DESCRIPTION_MAX = 2000
_EMAIL_SUBJECT_MAX = 800
_PARTY_FROM = 1
_PARTY_TO = 2
_SENDER_KEYS = ("senderEmail", "sender", "senderName", "fromEmail", "from", "identity")
_CAMPAIGN_KEYS = ("campaignName", "campaign", "sequenceName", "campaignId", "sequenceId")
_OUTBOUND_SENDER = re.compile(r"^\s*\[\d+/\d+\]\s*\[FROM [^\]]*\]\s*(.+?)\s*$")


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_key(body: ActivityCreate) -> str:
    """What identifies one logged message: Genesy's messageId, else a hash of what describes it."""
    message_id = body.metadata.get("messageId")
    if message_id not in (None, "") and isinstance(message_id, str | int):
        return f"id:{message_id}"
    parts = [
        body.type,
        body.direction or "",
        (body.contactId or "").lower(),
        (body.companyId or "").lower(),
        _iso(body.occurredAt) if body.occurredAt else "",
        body.subject or "",
        hashlib.sha256((body.body or "").encode()).hexdigest() if not body.occurredAt else "",
    ]
    return "hash:" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def activity_id_for(workspace_id: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{workspace_id}\x1f{key}"))


def _checked_id(field: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not is_guid(value):
        raise BadRequest(
            f"{field}: '{value}' is not a Dynamics record id",
            details=[{"field": field, "message": "not a Dynamics record id"}],
            code="invalid_body",
        )
    return value.strip().lower()


def _sender_candidates(body: ActivityCreate) -> list[str]:
    """Who Genesy says sent it: ownerId, the metadata's sender fields, a "[FROM x]" in an outbound subject."""
    candidates = [body.ownerId.strip().lower()] if body.ownerId else []
    candidates += [str(body.metadata[k]).strip().lower() for k in _SENDER_KEYS if body.metadata.get(k)]
    found = _OUTBOUND_SENDER.match(body.subject or "") if body.direction != "INBOUND" else None
    return [*candidates, found.group(1).lower()] if found else candidates


def _sender(ctx: WorkspaceContext, body: ActivityCreate) -> str | None:
    """Our user behind the message: ownerId (an enabled user, or mapped), a mapped sender identity, an enabled
    user auto-matched by e-mail, or the default owner (`shared.domain.mapping_engine.resolve_sender`)."""
    candidates = _sender_candidates(body)
    ctx.services.identities.saw(ctx.workspace.id, "activity.sender", candidates)
    return resolve_sender(candidates, ctx.mappings.users, enabled_users(ctx)).owner_id


def _response(
    body: ActivityCreate, activity_id: str, entity_set: str, contact: str | None, company: str | None, created: bool
) -> dict[str, Any]:
    return {
        "id": activity_id,
        "type": body.type,
        "subject": body.subject,
        "direction": body.direction,
        "occurredAt": _iso(body.occurredAt) if body.occurredAt else None,
        "contactId": contact,
        "companyId": company,
        "dynamicsEntity": "email" if entity_set == "emails" else "task",
        "created": created,
    }


def _create_email(
    ctx: WorkspaceContext,
    body: ActivityCreate,
    activity_id: str,
    regarding: tuple[str, str] | None,
    person: tuple[str, str] | None,
    sender: str | None,
    budget: Budget,
) -> None:
    outbound = body.direction != "INBOUND"
    user_party = [{"partyid_systemuser@odata.bind": bind("systemuser", sender)}] if sender else []
    other_party = [{f"partyid_{person[0]}@odata.bind": bind(*person)}] if person else []
    senders, recipients = (user_party, other_party) if outbound else (other_party, user_party)
    parties = [{**p, "participationtypemask": _PARTY_FROM} for p in senders] + [
        {**p, "participationtypemask": _PARTY_TO} for p in recipients
    ]
    extra: dict[str, Any] = {"email_activity_parties": parties} if parties else {}
    ctx.client.create_email_activity(
        subject=_fit(body.subject or ("Email sent" if outbound else "Email received"), _EMAIL_SUBJECT_MAX),
        description=body.body,
        regarding=regarding,
        outgoing=outbound,
        sent_on=body.occurredAt or datetime.now(UTC),
        owner_id=sender,
        email_id=activity_id,
        extra=extra,
        budget=budget,
    )


def _create_linkedin_task(
    ctx: WorkspaceContext,
    body: ActivityCreate,
    activity_id: str,
    regarding: tuple[str, str] | None,
    sender: str | None,
    budget: Budget,
) -> None:
    label = LINKEDIN_LABELS.get((body.type, body.direction or "OUTBOUND")) or _other_label(body)
    subject = f"[{label}] {body.subject}" if body.subject else f"[{label}]"
    ctx.client.create_task(
        subject=_fit(subject, _TASK_SUBJECT_MAX),
        description=_fit(body.body, _TASK_DESCRIPTION_MAX) if body.body else None,
        regarding=regarding,
        owner_id=sender,
        task_id=activity_id,
        completed=True,
        actual_end=body.occurredAt or datetime.now(UTC),
        budget=budget,
    )


def _other_label(body: ActivityCreate) -> str:
    """A readable label for an activity type outside the documented four: CALL → "Call", NO_SHOW → "No show"."""
    words = " ".join(body.type.replace("_", " ").replace("-", " ").split()).capitalize() or "Activity"
    return words if body.direction is None else f"{words} ({body.direction.lower()})"


def _position(value: Any) -> int | None:
    """A sequence position (1, 2, …) from metadata, or None."""
    return int(value) if isinstance(value, int | str) and str(value).isdigit() and int(value) >= 1 else None


def _campaign_name(metadata: Mapping[str, Any]) -> str | None:
    return next((str(metadata[k]).strip() for k in _CAMPAIGN_KEYS if str(metadata.get(k) or "").strip()), None)


def _campaign_event(ctx: WorkspaceContext, body: ActivityCreate, contact_id: str, key: str) -> CampaignEvent | None:
    inbound = body.direction == "INBOUND"
    campaign = _campaign_name(body.metadata)
    if campaign is None or (inbound and body.type == "LINKEDIN_CONNECTION"):
        return None  # no campaign named: invent none; an accepted connection request is no reply
    step, count = _position(body.metadata.get("sequenceIndex")), _position(body.metadata.get("sequenceMessageCount"))
    return CampaignEvent(
        workspace_id=ctx.workspace.id,
        contact_id=contact_id,
        campaign=campaign[:200],
        event="reply" if inbound else ("step" if step is not None else "sent"),
        step=step if not inbound else None,
        step_count=count,
        occurred_at=body.occurredAt or datetime.now(UTC),
        event_id=f"activity:{key}" if len(key) <= 300 else "activity:sha:" + hashlib.sha256(key.encode()).hexdigest(),
        detail={"channel": body.type, "activity": True},
        correlation_id=current_correlation_id(),
    )


def _resolve_regarding(
    ctx: WorkspaceContext, contact_id: str | None, company_id: str | None
) -> tuple[tuple[str, str] | None, str | None, str | None]:
    """(the record the activity is about, as (logical name, id), and the resolved contact and company ids)."""
    aliases = ctx.services.aliases
    contact = aliases.resolve(ctx.workspace.id, "contact", [contact_id])[contact_id] if contact_id else None
    company = aliases.resolve(ctx.workspace.id, "company", [company_id])[company_id] if company_id else None
    person_kind = ctx.contact.logical_name
    person: tuple[str, str] | None = (person_kind, contact) if contact else ("account", company) if company else None
    return person, contact, company


def _write(ctx: WorkspaceContext, body: ActivityCreate, activity_id: str, budget: Budget) -> bool:
    """Create the activity in Dynamics; False when it exists already (same id: one record)."""
    person, _, _ = _resolve_regarding(
        ctx, _checked_id("contactId", body.contactId), _checked_id("companyId", body.companyId)
    )
    try:
        sender = _sender(ctx, body)
        if body.type == "EMAIL":
            _create_email(ctx, body, activity_id, person, person, sender, budget)
        else:
            _create_linkedin_task(ctx, body, activity_id, person, sender, budget)
    except RecordConflict:
        return False  # a concurrent or earlier call with the same key created it: same id, one record
    return True


def _queue(ctx: WorkspaceContext, body: ActivityCreate, activity_id: str) -> None:
    message = WriteMessage.model_validate(
        {
            "operation": "activity",
            "workspace_id": ctx.workspace.id,
            "kind": "activity",
            "items": [QueuedItem(crm_id=activity_id, fields={"body": body.model_dump(mode="json")})],
            "correlation_id": current_correlation_id(),
        }
    )
    enqueue(ctx, message)


def write_queued_activity(ctx: WorkspaceContext, activity_id: str, fields: Mapping[str, Any], budget: Budget) -> None:
    """The worker's side of a queued activity (it comes after the record it is about)."""
    _write(ctx, ActivityCreate.model_validate(fields["body"]), activity_id, budget)


def log_activity(ctx: WorkspaceContext, body: ActivityCreate) -> dict[str, Any]:
    """`POST /activities`: log the activity once and return it (the first one's id on a repeat)."""
    contact_id = _checked_id("contactId", body.contactId)
    company_id = _checked_id("companyId", body.companyId)
    key = message_key(body)
    index = ctx.services.activity_index
    known = index.get(ctx.workspace.id, key)
    if known is not None:
        return {**known, "created": False}

    person, contact, _company = _resolve_regarding(ctx, contact_id, company_id)
    if person is not None:
        refuse_deleted(ctx, "company" if person[0] == "account" else "contact", person[1])
    activity_id = activity_id_for(ctx.workspace.id, key)
    entity_set = "emails" if body.type == "EMAIL" else "tasks"
    budget = Budget(ctx.settings.match_timeout_seconds * 2)
    if person is not None and is_pending(ctx, "company" if person[0] == "account" else "contact", person[1]):
        _queue(ctx, body, activity_id)  # lands after the record it is about
        created = True
    else:
        try:
            created = _write(ctx, body, activity_id, budget)
        except RecordNotFound:
            raise regarding_not_found(body.contactId if contact else None, body.companyId) from None
        except ValidationFailed as exc:
            raise BadRequest(f"Dynamics refused the activity: {exc.message}", code="invalid_activity") from None
        except DataverseError as exc:
            raise UpstreamUnavailable.from_error(exc) from None

    response = _response(body, activity_id, entity_set, body.contactId, body.companyId, created)
    if contact_id:
        event = _campaign_event(ctx, body, contact_id, key)
        if event is not None:
            send_campaign_events(ctx.services, [event])
    index.put(ctx.workspace.id, key, entity_set, response)
    return response


def get_activity(ctx: WorkspaceContext, activity_id: str) -> dict[str, Any]:
    """`GET /activities/{id}`: an activity logged (or queued) through this workspace, as first answered."""
    found = ctx.services.activity_index.by_id(ctx.workspace.id, activity_id) if is_guid(activity_id) else None
    if found is None:
        raise NotFound(f"No activity exists with ID: {activity_id}", code="Activity not found")
    return {**found, "created": False}
