"""Genesy's conversation-events webhooks: tolerant parsing, stable ids, and what each event means."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.genesy_models import ActivityCreate
from shared.domain.webhooks import (
    WEBHOOK_EVENTS,
    ParsedWebhook,
    WebhookAction,
    WebhookIdentity,
    WebhookParseError,
    actions_for,
    campaign_event_id,
    parse_webhook,
)

AT = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)

# -- every event type, in two or three plausible body shapes --------------------------------------------


def flat(event: str, **more: Any) -> dict[str, Any]:
    """Everything at top level, camelCase."""
    return {
        "eventType": event,
        "eventId": f"evt-{event}",
        "timestamp": "2024-01-02T10:00:00Z",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Analytical Engines",
        "campaignId": 42,
        "campaignName": "Q1 Outreach",
        **more,
    }


def wrapped(event: str, **more: Any) -> dict[str, Any]:
    """An envelope with `data`, a nested `contact` and `campaign`, snake_case, epoch millis."""
    return {
        "event": event,
        "id": f"del-{event}",
        "attempt_number": 1,
        "data": {
            "contact": {
                "crm_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "email_address": "ada@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "company": {"name": "Analytical Engines"},
                "linkedin_url": "https://www.linkedin.com/in/ada",
            },
            "campaign": {"id": 42, "name": "Q1 Outreach"},
            "occurred_at": 1704189600000,
            **more,
        },
    }


def payload(event: str, **more: Any) -> dict[str, Any]:
    """`type` + `payload` with a `lead`, a sequence object, a full name, epoch seconds, no event id."""
    return {
        "type": event.lower(),
        "payload": {
            "lead": {
                "fullName": "Ada Lovelace",
                "linkedInProfileUrl": "https://www.linkedin.com/in/ada",
                "organization": "Analytical Engines",
            },
            "sequence": {"name": "Q1 Outreach", "id": "seq-42"},
            "createdAt": 1704189600,
            **more,
        },
    }


SHAPES = [flat, wrapped, payload]
CHANNELS = {
    "CONNECTION_REQUEST_SENT": "LINKEDIN",
    "CONNECTION_REQUEST_ACCEPTED": "LINKEDIN",
    "LINKEDIN_MESSAGE_SENT": "LINKEDIN",
    "EMAIL_SENT": "EMAIL",
    "INMAIL_SENT": "INMAIL",
    "MESSAGE_REPLIED": None,  # told by the body's channel, when it has one
    "POST_LIKED": "LINKEDIN",
    "PROFILE_VISITED": "LINKEDIN",
}


def test_the_eight_documented_events() -> None:
    assert set(WEBHOOK_EVENTS) == set(CHANNELS)
    assert len(WEBHOOK_EVENTS) == 8


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("event", WEBHOOK_EVENTS)
def test_every_event_in_every_shape(event: str, shape: Any) -> None:
    parsed = parse_webhook(shape(event))
    assert parsed.event_type == event
    assert parsed.campaign_name == "Q1 Outreach"
    assert parsed.occurred_at == AT
    assert parsed.occurred_at.tzinfo is UTC
    assert parsed.channel == CHANNELS[event]
    assert parsed.identity.first_name == "Ada"
    assert parsed.identity.last_name == "Lovelace"
    assert parsed.identity.company == "Analytical Engines"
    if shape is flat:
        assert parsed.event_id == f"evt-{event}"
        assert parsed.campaign_id == "42"
        assert parsed.identity.email == "ada@example.com"
    elif shape is wrapped:
        assert parsed.event_id == f"del-{event}"
        assert parsed.identity.crm_id == "0f8fad5b-d9cb-469f-a165-70867728950e"
        assert parsed.identity.linkedin_url == "https://www.linkedin.com/in/ada"
    else:
        assert parsed.event_id.startswith("sha256:")
        assert parsed.campaign_id == "seq-42"
        assert parsed.identity.email is None
        assert parsed.identity.linkedin_url == "https://www.linkedin.com/in/ada"


def test_an_email_sent_at_a_step_with_its_message() -> None:
    body = {
        "eventType": "EMAIL_SENT",
        "data": {
            "contact": {"crmId": "c-1", "email": "ada@example.com"},
            "campaign": {"id": 7, "name": "Spring"},
            "step": {"number": 2, "total": 5},
            "message": {"id": "<msg-1@mail.example.com>", "subject": "Hello"},
            "sentAt": "2024-01-02T11:00:00+01:00",
        },
    }
    parsed = parse_webhook(body)
    assert (parsed.step, parsed.step_count) == (2, 5)
    assert parsed.message_id == "<msg-1@mail.example.com>"
    assert parsed.occurred_at == AT
    assert actions_for(parsed) == WebhookAction("step", None, "OUTBOUND", False)
    assert campaign_event_id(parsed) == "activity:id:<msg-1@mail.example.com>"


@pytest.mark.parametrize(
    ("body", "step", "count"),
    [
        ({"sequenceIndex": 3, "sequenceMessageCount": 4}, 3, 4),
        ({"stepNumber": "2", "totalSteps": "6"}, 2, 6),
        ({"sequence_step": 1, "step_count": 1}, 1, 1),
        ({"step": {"index": 4}}, 4, None),
        ({"step": 0, "stepCount": -1}, None, None),  # positions are 1-based
        ({"step": 10**40, "stepCount": 2.5}, None, None),
        ({"step": True, "stepCount": "two"}, None, None),
        ({"step": 2.0}, 2, None),
    ],
)
def test_sequence_positions(body: dict[str, Any], step: int | None, count: int | None) -> None:
    parsed = parse_webhook({"type": "LINKEDIN_MESSAGE_SENT", "crmId": "c", **body})
    assert (parsed.step, parsed.step_count) == (step, count)


@pytest.mark.parametrize(
    "reply",
    [
        {"event": "MESSAGE_REPLIED", "channel": "email", "contact": {"email": "a@x.io"}, "emailId": "e-9"},
        {
            "event_type": "message_replied",
            "data": {"platform": "LinkedIn", "prospect": {"profileUrl": "https://l/in/a"}},
        },
        {
            "type": "messageReplied",
            "payload": {"recipient": {"crmId": "c"}, "message": {"id": "m", "channel": "INMAIL"}},
        },
    ],
)
def test_replies_on_each_channel(reply: dict[str, Any]) -> None:
    parsed = parse_webhook(reply)
    assert parsed.event_type == "MESSAGE_REPLIED"
    assert parsed.channel in ("EMAIL", "LINKEDIN", "INMAIL")
    assert actions_for(parsed) == WebhookAction("reply", None, "INBOUND", False)
    expected = {"e-9": "EMAIL", None: "LINKEDIN", "m": "INMAIL"}
    assert parsed.channel == expected[parsed.message_id]


def test_a_reply_without_a_channel_but_with_an_email_id_is_an_email() -> None:
    assert parse_webhook({"event": "MESSAGE_REPLIED", "crmId": "c", "emailId": "e"}).channel == "EMAIL"
    assert parse_webhook({"event": "MESSAGE_REPLIED", "crmId": "c"}).channel is None


# -- event type ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"EVENT": "EMAIL_SENT", "crmId": "c"},
        {"Event-Type": "email.sent", "crmId": "c"},
        {"name": "EMAIL_SENT", "crmId": "c"},
        {"type": "webhook", "data": {"eventType": "emailSent"}, "crmId": "c"},  # a known type wins
        {"event": {"type": "EMAIL_SENT", "contact": {"crmId": "c"}}},
        {"data": {"payload": {"event": {"type": "Email Sent", "crmId": "c"}}}},
    ],
)
def test_event_type_spellings(body: dict[str, Any]) -> None:
    assert parse_webhook(body).event_type == "EMAIL_SENT"


def test_unknown_types_are_kept_upper_case_and_do_nothing() -> None:
    parsed = parse_webhook({"type": "meetingBooked", "crmId": "c"})
    assert parsed.event_type == "MEETING_BOOKED"
    assert actions_for(parsed) == WebhookAction(None, None, None, False)
    assert actions_for(parsed, engagement_events=frozenset({"MEETING_BOOKED"})).engagement is False


def test_a_person_called_name_is_not_an_event_type() -> None:
    with pytest.raises(WebhookParseError, match="event type"):
        parse_webhook({"name": "Ada Lovelace", "email": "ada@example.com"})
    parsed = parse_webhook({"type": "EMAIL_SENT", "name": "Ada Lovelace", "email": "ada@example.com"})
    assert (parsed.identity.first_name, parsed.identity.last_name) == ("Ada", "Lovelace")
    # `name` that is the event type is no person's name
    parsed = parse_webhook({"name": "POST_LIKED", "email": "ada@example.com"})
    assert parsed.identity.first_name is None


# -- identity ----------------------------------------------------------------------------------------


def test_identity_from_the_contact_object_wins_over_the_event_level() -> None:
    body = {
        "event": "EMAIL_SENT",
        "email": "sender@us.example",
        "firstName": "Sender",
        "contact": {"email": "ada@example.com", "firstName": "Ada", "crmId": "c-1"},
    }
    identity = parse_webhook(body).identity
    assert (identity.email, identity.first_name, identity.crm_id) == ("ada@example.com", "Ada", "c-1")


def test_identity_key_order_and_fallbacks() -> None:
    body = {
        "event": "EMAIL_SENT",
        "lead": {"externalCrmId": "ext", "crmId": "first", "emailAddress": "b@x.io", "email": "a@x.io"},
        "contact": {"contactCRMId": "contact-crm", "linkedin": "https://l/in/x", "profileUrl": "https://l/in/p"},
    }
    identity = parse_webhook(body).identity
    assert identity.crm_id == "first"  # crmId first, whichever object carries it
    assert identity.email == "a@x.io"  # email before emailAddress
    assert identity.linkedin_url == "https://l/in/p"  # profileUrl before linkedin


def test_identity_at_top_level_and_in_an_inner_level() -> None:
    body = {"type": "PROFILE_VISITED", "data": {"linkedinUrl": "https://l/in/inner"}, "linkedinUrl": "https://l/in/top"}
    assert parse_webhook(body).identity.linkedin_url == "https://l/in/inner"


def test_full_name_splits_and_explicit_names_win() -> None:
    one = parse_webhook({"type": "POST_LIKED", "contact": {"name": "Ada King Lovelace"}})
    assert (one.identity.first_name, one.identity.last_name) == ("Ada", "King Lovelace")
    two = parse_webhook({"type": "POST_LIKED", "contact": {"fullName": "X Y", "lastName": "Lovelace"}})
    assert (two.identity.first_name, two.identity.last_name) == (None, "Lovelace")
    three = parse_webhook({"type": "POST_LIKED", "person": {"full_name": "Cher"}})
    assert (three.identity.first_name, three.identity.last_name) == ("Cher", None)


def test_not_an_email_is_no_email_and_blank_is_absent() -> None:
    identity = parse_webhook({"type": "EMAIL_SENT", "email": "not an email", "crmId": "  ", "crm_id": 77}).identity
    assert identity.email is None
    assert identity.crm_id == "77"


def test_as_record_gives_genesy_fields_only_when_present() -> None:
    identity = WebhookIdentity(crm_id="c", email="a@x.io", linkedin_url="https://l/in/a", last_name="L")
    assert identity.as_record() == {"email": "a@x.io", "linkedinUrl": "https://l/in/a", "lastName": "L"}
    assert WebhookIdentity().as_record() == {}
    full = parse_webhook(wrapped("EMAIL_SENT")).identity.as_record()
    assert set(full) == {"email", "linkedinUrl", "firstName", "lastName", "company"}


# -- times ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02T10:00:00Z",
        "2024-01-02T10:00:00.000Z",
        "2024-01-02T11:00:00+01:00",
        "2024-01-02T10:00:00",  # naive: UTC
        1704189600,
        1704189600000,
        1704189600.0,
        "1704189600",
        "1704189600000",
    ],
)
def test_times(value: Any) -> None:
    assert parse_webhook({"type": "EMAIL_SENT", "crmId": "c", "occurredAt": value}).occurred_at == AT


@pytest.mark.parametrize("value", ["yesterday", "", 10**30, float("inf"), float("nan"), True, [], "9" * 40])
def test_bad_times_are_none(value: Any) -> None:
    assert parse_webhook({"type": "EMAIL_SENT", "crmId": "c", "time": value}).occurred_at is None


# -- ids ------------------------------------------------------------------------------------------------


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    return value


@pytest.mark.parametrize("shape", [payload, wrapped])
def test_a_retried_delivery_keeps_its_id_in_any_key_order(shape: Any) -> None:
    body = shape("EMAIL_SENT", sequenceIndex=2)
    first = parse_webhook(body).event_id
    rng = random.Random(7)
    for attempt in range(2, 6):
        retry = shuffled(json.loads(json.dumps(body)), rng)
        retry["attemptNumber"] = attempt
        retry["deliveredAt"] = f"2024-01-02T10:0{attempt}:00Z"
        assert parse_webhook(retry).event_id == first


def test_hashed_ids_tell_events_apart() -> None:
    one = parse_webhook(payload("EMAIL_SENT", sequenceIndex=1)).event_id
    two = parse_webhook(payload("EMAIL_SENT", sequenceIndex=2)).event_id
    reply = parse_webhook(payload("MESSAGE_REPLIED", sequenceIndex=1)).event_id
    assert len({one, two, reply}) == 3
    assert all(i.startswith("sha256:") and len(i) == 7 + 64 for i in (one, two, reply))


def test_given_event_ids_in_order_of_preference() -> None:
    base = {"type": "EMAIL_SENT", "crmId": "c"}
    assert parse_webhook({**base, "id": "i", "eventId": "e", "deliveryId": "d"}).event_id == "e"
    assert parse_webhook({**base, "id": "i", "deliveryId": "d"}).event_id == "i"
    assert parse_webhook({**base, "deliveryId": "d"}).event_id == "d"
    assert parse_webhook({**base, "event_id": 123}).event_id == "123"
    # an `id` inside the wrapped contact data is not the event's id
    inner = parse_webhook({"type": "EMAIL_SENT", "data": {"id": "contact-7", "crmId": "c"}})
    assert inner.event_id.startswith("sha256:")
    # a huge id is shortened to a hash
    long = parse_webhook({**base, "eventId": "x" * 1000}).event_id
    assert long.startswith("sha256:") and len(long) <= 200


def _activity_event_id(message_id: Any) -> str | None:
    """What `POST /activities` gives the campaign event of a message with this `metadata.messageId`."""
    from shared.services.activities import _campaign_event, message_key

    body = ActivityCreate.model_validate(
        {
            "type": "EMAIL",
            "direction": "OUTBOUND",
            "occurredAt": "2024-01-02T10:00:00Z",
            "metadata": {"messageId": message_id, "campaignName": "Q1 Outreach"},
        }
    )
    ctx: Any = SimpleNamespace(workspace=SimpleNamespace(id="ws"))
    event = _campaign_event(ctx, body, "contact-1", message_key(body))
    return None if event is None else event.event_id


@pytest.mark.parametrize("message_id", ["m-1", "<abc@mail.example.com>", 98765, "é" * 10, "z" * 400])
def test_campaign_event_id_is_the_activities_one_for_the_same_message(message_id: Any) -> None:
    parsed = parse_webhook({"type": "EMAIL_SENT", "crmId": "c", "messageId": message_id})
    assert campaign_event_id(parsed) == _activity_event_id(message_id)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "EMAIL_SENT", "crmId": "c", "message_id": "m-1"},
        {"type": "EMAIL_SENT", "crmId": "c", "message": {"id": "m-1", "text": "hi"}},
        {"type": "EMAIL_SENT", "crmId": "c", "emailId": "m-1"},
        {"type": "EMAIL_SENT", "data": {"crmId": "c", "messageId": "m-1"}},
    ],
)
def test_message_id_spellings(body: dict[str, Any]) -> None:
    assert campaign_event_id(parse_webhook(body)) == "activity:id:m-1"


def test_campaign_event_id_without_a_message_id_uses_the_event_id() -> None:
    parsed = parse_webhook({"type": "EMAIL_SENT", "crmId": "c", "eventId": "evt-1", "message": "hello"})
    assert parsed.message_id is None  # a message text is no message id
    assert campaign_event_id(parsed) == "webhook:evt-1"
    hashed = parse_webhook(payload("EMAIL_SENT"))
    assert campaign_event_id(hashed) == f"webhook:{hashed.event_id}"
    assert len(campaign_event_id(hashed)) <= 400  # fits CampaignEvent.event_id


# -- actions -------------------------------------------------------------------------------------------


def parsed_as(event: str, step: int | None = None) -> ParsedWebhook:
    return parse_webhook({"type": event, "crmId": "c", **({"step": step} if step else {})})


@pytest.mark.parametrize(
    ("event", "step", "action"),
    [
        ("EMAIL_SENT", None, WebhookAction("sent", None, "OUTBOUND", False)),
        ("EMAIL_SENT", 2, WebhookAction("step", None, "OUTBOUND", False)),
        ("LINKEDIN_MESSAGE_SENT", None, WebhookAction("sent", None, "OUTBOUND", False)),
        ("LINKEDIN_MESSAGE_SENT", 3, WebhookAction("step", None, "OUTBOUND", False)),
        ("INMAIL_SENT", None, WebhookAction("sent", None, "OUTBOUND", False)),
        ("INMAIL_SENT", 1, WebhookAction("step", None, "OUTBOUND", False)),
        ("CONNECTION_REQUEST_SENT", None, WebhookAction("sent", None, "OUTBOUND", False)),
        ("CONNECTION_REQUEST_SENT", 1, WebhookAction("step", None, "OUTBOUND", False)),
        ("MESSAGE_REPLIED", 2, WebhookAction("reply", None, "INBOUND", False)),
        ("CONNECTION_REQUEST_ACCEPTED", None, WebhookAction(None, "LINKEDIN_CONNECTION", "INBOUND", True)),
        ("POST_LIKED", None, WebhookAction(None, None, None, True)),
        ("PROFILE_VISITED", None, WebhookAction(None, None, None, True)),
    ],
)
def test_actions(event: str, step: int | None, action: WebhookAction) -> None:
    assert actions_for(parsed_as(event, step)) == action


def test_engagement_events_are_configurable() -> None:
    none: frozenset[str] = frozenset()
    assert actions_for(parsed_as("POST_LIKED"), engagement_events=none) == WebhookAction(None, None, None, False)
    assert actions_for(parsed_as("PROFILE_VISITED"), engagement_events=frozenset({"POST_LIKED"})).engagement is False
    # an accepted connection request is always engagement
    assert actions_for(parsed_as("CONNECTION_REQUEST_ACCEPTED"), engagement_events=none).engagement is True
    # a reply may count as engagement too, on top of its campaign event
    replied = actions_for(parsed_as("MESSAGE_REPLIED"), engagement_events=frozenset({"MESSAGE_REPLIED"}))
    assert replied == WebhookAction("reply", None, "INBOUND", True)


# -- what cannot be understood -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ([{"type": "EMAIL_SENT", "crmId": "c"}], "body"),
        ("EMAIL_SENT", "body"),
        (42, "body"),
        ({}, "event type"),
        ({"crmId": "c", "email": "a@x.io"}, "event type"),
        ({"type": 12, "crmId": "c"}, "event type"),
        ({"type": {"nested": "x"}, "crmId": "c"}, "event type"),
        ({"type": "EMAIL_SENT"}, "contact"),
        ({"type": "EMAIL_SENT", "contact": {"company": "Acme"}}, "contact"),
        ({"type": "EMAIL_SENT", "email": "nobody", "crmId": ""}, "contact"),
    ],
)
def test_bodies_that_cannot_be_understood(body: Any, field: str) -> None:
    with pytest.raises(WebhookParseError, match=field):
        parse_webhook(body)


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(WebhookParseError, ValueError)


# -- hostile input --------------------------------------------------------------------------------------


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for index in range(depth):
        value = {"data": value} if index % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [1, 10, 63, 64])
def test_deep_nesting(depth: int) -> None:
    body = {"type": "EMAIL_SENT", "crmId": "c", "extra": nested(depth, "x")}
    assert parse_webhook(body).event_id.startswith("sha256:")
    wrapper: dict[str, Any] = {"type": "EMAIL_SENT", "crmId": "c"}
    for _ in range(depth):
        wrapper = {"data": wrapper}
    assert parse_webhook(wrapper).event_type == "EMAIL_SENT"


def test_absurd_nesting_is_a_parse_error() -> None:
    with pytest.raises(WebhookParseError, match="nested"):
        parse_webhook({"type": "EMAIL_SENT", "crmId": "c", "extra": nested(5000, 1)})


def test_hostile_values() -> None:
    body = {
        "type": "EMAIL_SENT\ud800",
        "crmId": "c\udfff",
        "email": "a\ud800@x.io",
        "firstName": "\x00" * 5000,
        "step": 2**20000,
        "stepCount": float("nan"),
        "timestamp": -(10**20),
        "campaignName": "\u202e" + "Q" * 10_000,
        "eventId": None,
        "messageId": 2**20000,
        "big": 2**20000,
        "inf": float("inf"),
    }
    parsed = parse_webhook(body)
    assert parsed.event_type == "EMAIL_SENT"
    assert parsed.identity.crm_id == "c?"
    assert parsed.identity.email == "a?@x.io"
    parsed.identity.email.encode()
    assert parsed.identity.first_name is None
    assert (parsed.step, parsed.step_count, parsed.occurred_at, parsed.message_id) == (None, None, None, None)
    assert parsed.campaign_name is None
    assert parsed.event_id.startswith("sha256:")
    assert parse_webhook(dict(body)).event_id == parsed.event_id


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([*WEBHOOK_EVENTS, "a@x.io", "2024-01-02T10:00:00Z", "1704189600000", "\ud800"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "event",
                    "eventType",
                    "name",
                    "data",
                    "payload",
                    "contact",
                    "lead",
                    "email",
                    "crmId",
                    "linkedinUrl",
                    "firstName",
                    "fullName",
                    "company",
                    "campaign",
                    "campaignId",
                    "step",
                    "stepCount",
                    "timestamp",
                    "messageId",
                    "message",
                    "id",
                    "channel",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_parse_webhook_raises_nothing_but_a_parse_error(body: Any) -> None:
    try:
        parsed = parse_webhook(body)
    except WebhookParseError as error:
        assert str(error)
        return
    assert parsed.event_type
    assert parsed.event_id
    assert not parsed.identity.is_empty
    assert parsed.occurred_at is None or parsed.occurred_at.tzinfo is not None
    assert parsed.step is None or 1 <= parsed.step <= 1000
    assert parsed.channel in (None, "EMAIL", "LINKEDIN", "INMAIL")
    assert parse_webhook(json.loads(json.dumps(body))).event_id == parsed.event_id or _has_nan(body)
    actions_for(parsed)
    assert len(campaign_event_id(parsed)) <= 400


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


KEYS = st.sampled_from(
    [
        "id",
        "eventId",
        "deliveryId",
        "email",
        "crmId",
        "linkedinUrl",
        "first_name",
        "lastName",
        "fullName",
        "name",
        "company",
        "organization",
        "campaign",
        "campaignId",
        "campaignName",
        "sequence",
        "step",
        "stepCount",
        "sequenceIndex",
        "timestamp",
        "occurredAt",
        "date",
        "messageId",
        "message",
        "emailId",
        "channel",
        "platform",
        "contact",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(WEBHOOK_EVENTS), st.dictionaries(KEYS, JSON, max_size=8), st.booleans())
def test_plausible_bodies_with_arbitrary_values_parse_or_fail_cleanly(
    event: str, extra: dict[str, Any], wrap: bool
) -> None:
    inner = {"contact": {"crmId": "c-1"}, **extra}
    body = {"eventType": event, "data": inner} if wrap else {"eventType": event, **inner}
    try:
        parsed = parse_webhook(body)
    except WebhookParseError as error:
        assert "contact" in str(error)  # only arbitrary values that blank out the contact
        return
    assert parsed.event_type == event
    assert parsed.step is None or 1 <= parsed.step <= 1000
    assert parsed.occurred_at is None or parsed.occurred_at.utcoffset() is not None
    assert all(isinstance(v, str) and v for v in parsed.identity.as_record().values())
    assert parse_webhook(json.loads(json.dumps(body))).event_id == parsed.event_id
    assert actions_for(parsed).campaign_event in (None, "sent", "step", "reply")
    assert campaign_event_id(parsed).startswith(("activity:", "webhook:"))
