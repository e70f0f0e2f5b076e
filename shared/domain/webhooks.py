"""Genesy's outbound conversation-events webhooks: tolerant parsing and what each event means for us.

Genesy POSTs one event per delivery (`CONNECTION_REQUEST_SENT`, `CONNECTION_REQUEST_ACCEPTED`,
`LINKEDIN_MESSAGE_SENT`, `EMAIL_SENT`, `INMAIL_SENT`, `MESSAGE_REPLIED`, `POST_LIKED`,
`PROFILE_VISITED`) and retries failed deliveries. The field names of the event body are not
published, so `parse_webhook` accepts the plausible ones:

- keys are compared without case, `_` or `-` (`firstName` = `first_name` = `FIRSTNAME`);
- the event may sit at top level or be wrapped in `data` / `payload` / `event` / `body` objects (up to 64
  wrappers deep); the contact in `contact` / `lead` / `prospect` / `person` / `recipient`
  objects, or at the event's own level;
- values found in the contact object win over values at the event's levels; among levels the
  innermost wins; among synonyms the first listed below wins.

`event_id` is Genesy's event id (`eventId`, `event_id`, then `id` at the level of the event type or
outside it, then `deliveryId`) when given, else `sha256:` + the SHA-256 of the canonical JSON (sorted
keys) of the body without its delivery bookkeeping (`attemptNumber`, `deliveredAt`, `retryCount`, …),
so a retried delivery, in any key order, gets the same id.

`actions_for` says what to do with an event (campaign event, timeline activity, engagement) and
`campaign_event_id` gives the campaign event id, equal to the one `POST /activities` uses for the same
Genesy message id, so a message reported both ways counts once. Pure: no I/O; only
`WebhookParseError` ever escapes `parse_webhook`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "WEBHOOK_EVENTS",
    "ParsedWebhook",
    "WebhookAction",
    "WebhookIdentity",
    "WebhookParseError",
    "actions_for",
    "campaign_event_id",
    "parse_webhook",
]

WEBHOOK_EVENTS: tuple[str, ...] = (
    "CONNECTION_REQUEST_SENT",
    "CONNECTION_REQUEST_ACCEPTED",
    "LINKEDIN_MESSAGE_SENT",
    "EMAIL_SENT",
    "INMAIL_SENT",
    "MESSAGE_REPLIED",
    "POST_LIKED",
    "PROFILE_VISITED",
)
_SENT = frozenset({"CONNECTION_REQUEST_SENT", "LINKEDIN_MESSAGE_SENT", "EMAIL_SENT", "INMAIL_SENT"})
_TYPE_CHANNEL = {
    "CONNECTION_REQUEST_SENT": "LINKEDIN",
    "CONNECTION_REQUEST_ACCEPTED": "LINKEDIN",
    "LINKEDIN_MESSAGE_SENT": "LINKEDIN",
    "EMAIL_SENT": "EMAIL",
    "INMAIL_SENT": "INMAIL",
    "POST_LIKED": "LINKEDIN",
    "PROFILE_VISITED": "LINKEDIN",
}

# Normalised keys (lower case, no `_` or `-`), in order of preference.
_WRAPPERS = ("data", "payload", "event", "body")
_PERSONS = ("contact", "lead", "prospect", "person", "recipient")
_TYPE_KEYS = ("eventtype", "event", "type")
_EVENT_ID_KEYS = ("eventid",)
_LOCAL_ID_KEYS = ("id",)  # only at the level of the event type, or outside it
_DELIVERY_ID_KEYS = ("deliveryid",)
_CRM_KEYS = ("crmid", "contactcrmid", "externalcrmid", "crmcontactid", "leadcrmid")
_EMAIL_KEYS = ("email", "emailaddress", "contactemail", "leademail", "workemail")
_LINKEDIN_KEYS = ("linkedinurl", "linkedinprofileurl", "profileurl", "linkedin", "linkedinprofile")
_FIRST_KEYS = ("firstname", "givenname")
_LAST_KEYS = ("lastname", "familyname", "surname")
_FULL_KEYS = ("fullname", "contactname", "leadname")
_COMPANY_KEYS = ("companyname", "company", "organization", "organisation", "accountname")
_CAMPAIGN_ID_KEYS = ("campaignid", "sequenceid")
_CAMPAIGN_NAME_KEYS = ("campaignname", "sequencename")
_STEP_KEYS = ("step", "stepnumber", "stepindex", "sequenceindex", "sequencestep", "stepposition")
_STEP_INNER_KEYS = ("number", "index", "position", "step")
_COUNT_KEYS = ("stepcount", "totalsteps", "sequencemessagecount", "stepstotal", "sequencelength")
_COUNT_INNER_KEYS = ("total", "count", "stepcount", "totalsteps")
_TIME_KEYS = ("timestamp", "occurredat", "createdat", "date", "time", "eventtime", "sentat", "repliedat")
_MESSAGE_ID_KEYS = ("messageid", "emailid", "linkedinmessageid", "inmailid")
_CHANNEL_KEYS = ("channel", "platform", "messagetype", "channeltype", "medium")
# Delivery bookkeeping that may change from one attempt to the next: left out of the hashed id.
_VOLATILE = frozenset(
    {
        "attempt",
        "attempts",
        "attemptnumber",
        "attemptcount",
        "retry",
        "retries",
        "retrycount",
        "deliveryattempt",
        "deliveredat",
        "deliverytime",
        "deliveryid",
        "signature",
        "secret",
    }
)
_MAX_WRAPPERS = 64
_MAX_DEPTH = 200  # nesting the canonical form follows before it gives up
_MAX_TEXT = 2000
_MAX_ID = 200
_MAX_STEP = 1000
_MAX_TYPE = 100
_MILLIS_FROM = 100_000_000_000  # epoch numbers above this are milliseconds (1e11 s is year 5138)
_TOKEN = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


class WebhookParseError(ValueError):
    """A webhook body we cannot understand; the message names the field and says why."""


@dataclass(frozen=True)
class WebhookIdentity:
    """Who the event is about, as far as the body tells."""

    crm_id: str | None = None
    email: str | None = None
    linkedin_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None

    def as_record(self) -> dict[str, str]:
        """Genesy-style contact fields for the matcher (only the present ones)."""
        fields = {
            "email": self.email,
            "linkedinUrl": self.linkedin_url,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "company": self.company,
        }
        return {key: value for key, value in fields.items() if value is not None}

    @property
    def is_empty(self) -> bool:
        """True when nothing identifies a person (a company alone does not)."""
        return not (self.crm_id or self.email or self.linkedin_url or self.first_name or self.last_name)


@dataclass(frozen=True)
class ParsedWebhook:
    """One webhook delivery, understood."""

    event_type: str
    event_id: str
    identity: WebhookIdentity
    campaign_id: str | None
    campaign_name: str | None
    step: int | None
    step_count: int | None
    occurred_at: datetime | None
    message_id: str | None
    channel: str | None


@dataclass(frozen=True)
class WebhookAction:
    """What an event means for us."""

    campaign_event: Literal["sent", "step", "reply"] | None
    activity_type: Literal["LINKEDIN_CONNECTION"] | None
    activity_direction: Literal["INBOUND", "OUTBOUND"] | None
    engagement: bool


_NO_ACTION = WebhookAction(campaign_event=None, activity_type=None, activity_direction=None, engagement=False)


# -- small value readers -----------------------------------------------------------------------------


def _key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _norm(value: Any) -> dict[str, Any]:
    """A mapping's entries under normalised keys (the first non-blank spelling wins); {} for anything else."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and _blank(out.get(_key(key))):
            out[_key(key)] = item
    return out


def _clean(text: str) -> str:
    """`text` without lone surrogates (replaced), so it always encodes as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    """A non-blank string (stripped), or a moderate integer as text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value.bit_length() <= 64:
        return str(value)
    if not isinstance(value, str):
        return None
    cleaned = _clean(value).strip()
    return cleaned if cleaned and len(cleaned) <= limit else None


def _raw_id(value: Any) -> str | None:
    """An id as Genesy sent it (not stripped, like `POST /activities` keeps `metadata.messageId`)."""
    if isinstance(value, str):
        return value if value.strip() and len(value) <= _MAX_TEXT else None
    return _text(value)


def _position(value: Any) -> int | None:
    """A 1-based sequence position (1…1000) from an int, an integral float or a digit string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        stripped = value.strip()
        value = int(stripped) if stripped.isdecimal() and len(stripped) <= 6 else None
    return value if isinstance(value, int) and 1 <= value <= _MAX_STEP else None


def _from_epoch(number: float) -> datetime | None:
    seconds = number / 1000 if abs(number) >= _MILLIS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _from_text(text: str) -> datetime | None:
    candidate = text.strip()
    if re.fullmatch(r"-?\d{1,16}(?:\.\d{1,9})?", candidate):
        return _from_epoch(float(candidate))
    if len(candidate) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(candidate.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _moment(value: Any) -> datetime | None:
    """An aware UTC time from an ISO string or epoch seconds / milliseconds; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value.bit_length() <= 64:
        return _from_epoch(value)
    if isinstance(value, float) and math.isfinite(value):
        return _from_epoch(value)
    if isinstance(value, str):
        try:
            return _from_text(value)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _first(scopes: Iterable[Mapping[str, Any]], keys: Iterable[str], read: Callable[[Any], Any]) -> Any:
    """The first value `read` accepts, trying each key (in order) in each scope (in order)."""
    scopes = list(scopes)
    for key in keys:
        for scope in scopes:
            if key in scope:
                found = read(scope[key])
                if found is not None:
                    return found
    return None


def _inner(
    scopes: Iterable[Mapping[str, Any]], outer: Iterable[str], keys: Iterable[str], read: Callable[[Any], Any]
) -> Any:
    """Like `_first`, inside the objects found under `outer` keys (`campaign.id`, `step.number`)."""
    nested = [_norm(scope[name]) for name in outer for scope in scopes if isinstance(scope.get(name), Mapping)]
    return _first(nested, keys, read)


# -- the event type ----------------------------------------------------------------------------------


def _event_type_text(value: Any) -> str | None:
    """`emailSent`, `email.sent`, `Email Sent` → `EMAIL_SENT`; None when not a name."""
    text = _text(value, _MAX_TYPE * 4) if isinstance(value, str) else None
    if text is None:
        return None
    token = _SEPARATORS.sub("_", _CAMEL.sub("_", text)).strip("_").upper()
    return token[:_MAX_TYPE] or None


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and _TOKEN.fullmatch(value.strip()) is not None


def _event_type(levels: list[dict[str, Any]]) -> tuple[str, int]:
    """(the event type, the index of the level it was found in). A known type wins over others; the
    `eventType` / `event` / `type` keys win over `name`; then the innermost level wins."""
    found: list[tuple[str, int]] = []
    for group in (_TYPE_KEYS, ("name",)):
        for index, level in enumerate(levels):
            for key in group:
                token = _event_type_text(level.get(key))
                if token is None or (key == "name" and token not in WEBHOOK_EVENTS and not _is_token(level[key])):
                    continue  # `name` only counts when it reads like an event name, not a person's
                found.append((token, index))
    if not found:
        raise WebhookParseError(
            "event type: none found (looked for eventType, event, type or name, at top level and in data/payload)"
        )
    return next((item for item in found if item[0] in WEBHOOK_EVENTS), found[0])


# -- identity ----------------------------------------------------------------------------------------


def _email(value: Any) -> str | None:
    text = _text(value, 320)
    return text if text is not None and "@" in text and " " not in text else None


def _company(value: Any) -> str | None:
    if isinstance(value, Mapping):
        named: str | None = _first([_norm(value)], ("name", "companyname", "displayname"), _text)
        return named
    return None if isinstance(value, int) else _text(value)


def _split_name(full: str | None) -> tuple[str | None, str | None]:
    if full is None:
        return None, None
    parts = full.split()
    return parts[0], (" ".join(parts[1:]) or None)


def _identity(persons: list[dict[str, Any]], levels: list[dict[str, Any]], type_key_used: bool) -> WebhookIdentity:
    scopes = [*persons, *levels]
    first = _first(scopes, _FIRST_KEYS, _text)
    last = _first(scopes, _LAST_KEYS, _text)
    if first is None and last is None:
        full = _first(persons, ("name",), _text) or _first(scopes, _FULL_KEYS, _text)
        if full is None and not persons and not type_key_used:  # the contact at top level
            full = _first(levels, ("name",), _text)
        first, last = _split_name(full)
    return WebhookIdentity(
        crm_id=_first(scopes, _CRM_KEYS, _text),
        email=_first(scopes, _EMAIL_KEYS, _email),
        linkedin_url=_first(scopes, _LINKEDIN_KEYS, _text),
        first_name=first,
        last_name=last,
        company=_first(scopes, _COMPANY_KEYS, _company),
    )


# -- ids and the canonical form ------------------------------------------------------------------


def _canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, order-free form of `value`: sorted keys, delivery bookkeeping dropped at every level."""
    if depth > _MAX_DEPTH:
        raise WebhookParseError(f"body: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        items = ((k, v) for k, v in value.items() if isinstance(k, str) and _key(k) not in _VOLATILE)
        return {_clean(k): _canonical(v, depth + 1) for k, v in sorted(items, key=lambda kv: kv[0])}
    if isinstance(value, list | tuple):
        return [_canonical(item, depth + 1) for item in value]
    return _canonical_scalar(value)


def _canonical_scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else "int:" + hex(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _clean(value)
    return f"<{type(value).__name__}>"


def _hashed_id(body: Mapping[str, Any]) -> str:
    text = json.dumps(_canonical(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def _short(identifier: str) -> str:
    return identifier if len(identifier) <= _MAX_ID else "sha256:" + hashlib.sha256(identifier.encode()).hexdigest()


def _event_id(body: Mapping[str, Any], levels: list[dict[str, Any]], type_index: int) -> str:
    given = (
        _first(levels, _EVENT_ID_KEYS, _text)
        or _first(levels[type_index:], _LOCAL_ID_KEYS, _text)
        or _first(levels, _DELIVERY_ID_KEYS, _text)
    )
    return _short(_clean(given)) if given is not None else _hashed_id(body)


def _channel_text(value: Any) -> str | None:
    text = _text(value, 100)
    if text is None:
        return None
    upper = text.upper()
    if "INMAIL" in upper:
        return "INMAIL"
    if "MAIL" in upper:
        return "EMAIL"
    return "LINKEDIN" if "LINKEDIN" in upper or upper in ("LI", "LINKED_IN") else None


def _channel(event_type: str, scopes: list[dict[str, Any]]) -> str | None:
    fixed = _TYPE_CHANNEL.get(event_type)
    if fixed is not None:
        return fixed
    explicit = _first(scopes, _CHANNEL_KEYS, _channel_text) or _inner(
        scopes, ("message",), _CHANNEL_KEYS, _channel_text
    )
    if explicit is not None:
        return str(explicit)
    return "EMAIL" if _first(scopes, ("emailid",), _raw_id) is not None else None


# -- parsing ------------------------------------------------------------------------------------------


def _levels(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The body and the objects it wraps the event in, innermost first."""
    levels = [_norm(body)]
    for _ in range(_MAX_WRAPPERS):
        wrapped = next((levels[-1][k] for k in _WRAPPERS if isinstance(levels[-1].get(k), Mapping)), None)
        if wrapped is None:
            break
        levels.append(_norm(wrapped))
    return levels[::-1]


def _persons(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_norm(level[key]) for key in _PERSONS for level in levels if isinstance(level.get(key), Mapping)]


def _campaign(scopes: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    campaign_id = _first(scopes, _CAMPAIGN_ID_KEYS, _text) or _inner(scopes, ("campaign", "sequence"), ("id",), _text)
    name = _first(scopes, _CAMPAIGN_NAME_KEYS, _text) or _inner(scopes, ("campaign", "sequence"), ("name",), _text)
    if name is None:  # `"campaign": "Q1 Outreach"` is a name, `"campaign": 123` an id
        bare = _first(scopes, ("campaign", "sequence"), lambda v: v if isinstance(v, str | int) else None)
        if isinstance(bare, str):
            name = _text(bare, 200)
        elif campaign_id is None:
            campaign_id = _text(bare)
    return campaign_id, name


def _sequence_position(scopes: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    step = _first(scopes, _STEP_KEYS, _position) or _inner(scopes, ("step", "sequence"), _STEP_INNER_KEYS, _position)
    count = _first(scopes, _COUNT_KEYS, _position) or _inner(
        scopes, ("step", "sequence", "campaign"), _COUNT_INNER_KEYS, _position
    )
    return step, count


def _message_id(scopes: list[dict[str, Any]]) -> str | None:
    found = _first(scopes, _MESSAGE_ID_KEYS, _raw_id) or _inner(
        scopes, ("message", "email", "reply", "inmail"), ("id", "messageid"), _raw_id
    )
    return None if found is None else str(found)


def _parse(body: Mapping[str, Any]) -> ParsedWebhook:
    levels = _levels(body)
    event_type, type_index = _event_type(levels)
    persons = _persons(levels)
    type_is_name = "name" in levels[type_index] and _event_type_text(levels[type_index]["name"]) == event_type
    identity = _identity(persons, levels, type_is_name)
    if identity.is_empty:
        raise WebhookParseError(
            "contact: no crmId, email, linkedinUrl or name found (looked in contact/lead/prospect/person/"
            "recipient objects and at the event's level)"
        )
    scopes = [*levels, *persons]
    campaign_id, campaign_name = _campaign(scopes)
    step, step_count = _sequence_position(scopes)
    return ParsedWebhook(
        event_type=event_type,
        event_id=_event_id(body, levels, type_index),
        identity=identity,
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        step=step,
        step_count=step_count,
        occurred_at=_first(scopes, _TIME_KEYS, _moment) or _inner(scopes, ("message",), _TIME_KEYS, _moment),
        message_id=_message_id(levels),
        channel=_channel(event_type, scopes),
    )


def parse_webhook(body: Any) -> ParsedWebhook:
    """Understand one delivery's JSON body; `WebhookParseError` (naming the field) when it cannot be."""
    if not isinstance(body, Mapping):
        raise WebhookParseError(f"body: expected a JSON object, got {type(body).__name__}")
    try:
        return _parse(body)
    except WebhookParseError:
        raise
    except (RecursionError, ValueError, TypeError, OverflowError, OSError, UnicodeError) as error:
        raise WebhookParseError(f"body: cannot be read ({type(error).__name__})") from error


# -- meaning ---------------------------------------------------------------------------------------------


def actions_for(
    parsed: ParsedWebhook, *, engagement_events: frozenset[str] = frozenset({"POST_LIKED", "PROFILE_VISITED"})
) -> WebhookAction:
    """What to do with an event. Sends → campaign `step` (position known) or `sent`, OUTBOUND; a reply →
    `reply`, INBOUND; an accepted connection request → a LinkedIn connection activity, INBOUND, and
    engagement; any type in `engagement_events` → engagement; unknown types → nothing.

    The campaign event is given whatever the body says about the campaign: the caller sends none when
    the event names no campaign (`campaign_id` and `campaign_name` both None), as `POST /activities` does.
    """
    kind = parsed.event_type
    engaged = kind in engagement_events
    if kind in _SENT:
        sent: Literal["sent", "step"] = "step" if parsed.step is not None else "sent"
        return WebhookAction(campaign_event=sent, activity_type=None, activity_direction="OUTBOUND", engagement=engaged)
    if kind == "MESSAGE_REPLIED":
        return WebhookAction(
            campaign_event="reply", activity_type=None, activity_direction="INBOUND", engagement=engaged
        )
    if kind == "CONNECTION_REQUEST_ACCEPTED":
        return WebhookAction(
            campaign_event=None, activity_type="LINKEDIN_CONNECTION", activity_direction="INBOUND", engagement=True
        )
    if engaged and kind in WEBHOOK_EVENTS:
        return WebhookAction(campaign_event=None, activity_type=None, activity_direction=None, engagement=True)
    return _NO_ACTION


def campaign_event_id(parsed: ParsedWebhook) -> str:
    """The `CampaignEvent.event_id` for this event: `activity:id:<messageId>` when the message id is known
    (what `POST /activities` uses for the same message, long keys hashed the same way), else
    `webhook:<event_id>`."""
    if parsed.message_id is not None:
        key = f"id:{parsed.message_id}"
        return f"activity:{key}" if len(key) <= 300 else "activity:sha:" + hashlib.sha256(key.encode()).hexdigest()
    return f"webhook:{parsed.event_id}"
