"""The pure campaign aggregation: ordering, idempotency, no roll-back, rendering and truncation."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.campaign import (
    MAX_EVENTS_PER_KIND,
    CampaignEvent,
    CampaignState,
    render_columns,
    render_values,
    truncate,
)
from shared.domain.mappings import CampaignMapping, CampaignValue

V = CampaignValue
_ids = itertools.count()


def ev(
    event: str, at: str, *, campaign: str = "Q1 Outreach", event_id: str | None = None, **more: Any
) -> CampaignEvent:
    return CampaignEvent.model_validate(
        {
            "workspace_id": "ws",
            "contact_id": "c1",
            "campaign": campaign,
            "event": event,
            "occurred_at": at,
            "event_id": event_id or f"e{next(_ids)}",
            **more,
        }
    )


def values(state: CampaignState) -> dict[CampaignValue, str]:
    return {k: v[0] for k, v in render_values([state]).items()}


def journey() -> list[CampaignEvent]:
    return [
        ev("sequence", "2024-01-01T09:00:00Z", step_count=5, event_id="seq"),
        ev("sent", "2024-01-02T10:00:00Z", step=1, event_id="s1", detail={"channel": "EMAIL"}),
        ev("open", "2024-01-02T11:00:00Z", step=1, event_id="o1"),
        ev("click", "2024-01-02T11:05:00Z", step=1, event_id="k1", detail={"url": "https://acme.com/pricing"}),
        ev("step", "2024-01-04T10:00:00Z", step=2, event_id="s2"),
        ev("open", "2024-01-04T12:30:00Z", step=2, event_id="o2"),
        ev("open", "2024-01-05T08:00:00Z", step=2, event_id="o3"),
        ev("reply", "2024-01-06T09:15:00Z", event_id="r1", detail={"channel": "EMAIL"}),
    ]


def test_a_campaign_journey_renders_all_seven_values() -> None:
    state = CampaignState("Q1 Outreach")
    for event in journey():
        state.apply(event)
    assert values(state) == {
        V.SEQUENCE: "Q1 Outreach — 5 steps",
        V.ENGAGEMENT_STATUS: "Replied",
        V.OPENS: "3",
        V.CLICKS: "1",
        V.OPEN_ANALYSIS: "3 opens; first 2024-01-02 11:00 UTC, last 2024-01-05 08:00 UTC; steps opened: 1, 2",
        V.CLICK_ANALYSIS: "1 click; on 2024-01-02 11:05 UTC; step clicked: 1; links: https://acme.com/pricing",
        V.REPLY_ANALYSIS: "Replied; on 2024-01-06 09:15 UTC; after step 2; via EMAIL",
    }


def test_status_follows_the_highest_step_until_a_reply() -> None:
    state = CampaignState("Q1 Outreach")
    assert state.apply(ev("sequence", "2024-01-01T09:00:00Z", step_count=5))
    assert values(state)[V.ENGAGEMENT_STATUS] == "Enrolled"
    state.apply(ev("step", "2024-01-02T09:00:00Z", step=1))
    state.apply(ev("step", "2024-01-03T09:00:00Z", step=2))
    assert values(state)[V.ENGAGEMENT_STATUS] == "Step 2 of 5"
    assert values(state)[V.OPEN_ANALYSIS] == "No opens"
    assert values(state)[V.REPLY_ANALYSIS] == "No reply"
    no_count = CampaignState("Other")
    no_count.apply(ev("sent", "2024-01-02T09:00:00Z", campaign="Other", step=3))
    assert values(no_count)[V.ENGAGEMENT_STATUS] == "Step 3"
    assert values(no_count)[V.SEQUENCE] == "Other"


def test_every_order_of_the_events_gives_the_same_values() -> None:
    expected = CampaignState("Q1 Outreach")
    for event in journey():
        expected.apply(event)
    rng = random.Random(7)
    for _ in range(30):
        shuffled = journey()
        rng.shuffle(shuffled)
        state = CampaignState("Q1 Outreach")
        for event in shuffled:
            state.apply(event)
        assert values(state) == values(expected)
        assert state.to_json() == expected.to_json()


def test_a_late_earlier_step_never_rolls_the_status_back() -> None:
    state = CampaignState("Q1 Outreach")
    state.apply(ev("step", "2024-01-04T10:00:00Z", step=3, step_count=5))
    changed = state.apply(ev("step", "2024-01-02T10:00:00Z", step=1))
    assert changed  # the step-1 time is new information…
    assert values(state)[V.ENGAGEMENT_STATUS] == "Step 3 of 5"  # …but the status stays at step 3
    state.apply(ev("reply", "2024-01-05T10:00:00Z"))
    state.apply(ev("step", "2024-01-06T10:00:00Z", step=4))
    assert values(state)[V.ENGAGEMENT_STATUS] == "Replied"
    state.apply(ev("sequence", "2024-01-01T00:00:00Z", step_count=3))
    assert state.step_count == 5  # a smaller step count never shrinks the sequence


def test_a_redelivered_event_is_counted_once() -> None:
    state = CampaignState("Q1 Outreach")
    open_event = ev("open", "2024-01-02T11:00:00Z", step=1, event_id="same")
    assert state.apply(open_event) is True
    assert state.apply(open_event) is False
    assert state.apply(ev("open", "2024-01-02T11:00:00Z", step=1, event_id="same")) is False
    assert values(state)[V.OPENS] == "1"
    roundtrip = CampaignState.from_json(state.to_json())
    assert roundtrip.apply(open_event) is False
    assert roundtrip.to_json() == state.to_json()


def test_counted_events_past_the_cap_are_folded_into_the_count() -> None:
    state = CampaignState("Q1 Outreach")
    for n in range(MAX_EVENTS_PER_KIND + 3):
        state.apply(ev("open", "2024-01-01T00:00:00Z", event_id=f"o{n:04d}"))
    assert state.count("open") == MAX_EVENTS_PER_KIND + 3
    assert len(state.events["open"]) == MAX_EVENTS_PER_KIND
    assert values(state)[V.OPENS] == str(MAX_EVENTS_PER_KIND + 3)


def test_several_campaigns_render_one_line_each_most_recent_first() -> None:
    older, newer = CampaignState("Webinar"), CampaignState("Q1 Outreach")
    older.apply(ev("sequence", "2024-01-01T00:00:00Z", campaign="Webinar", step_count=2))
    older.apply(ev("open", "2024-01-02T00:00:00Z", campaign="Webinar"))
    newer.apply(ev("step", "2024-02-01T00:00:00Z", step=1, step_count=3))
    lines = render_values([older, newer])
    assert lines[V.SEQUENCE] == ["Q1 Outreach — 3 steps", "Webinar — 2 steps"]
    assert lines[V.ENGAGEMENT_STATUS] == ["Q1 Outreach: Step 1 of 3", "Webinar: Enrolled"]
    assert lines[V.OPENS] == ["Q1 Outreach: 0", "Webinar: 1"]


def test_columns_follow_the_mapping_and_fit_their_max_length() -> None:
    states = []
    for n in range(4):
        state = CampaignState(f"Campaign {n}")
        state.apply(ev("sequence", f"2024-01-0{n + 1}T00:00:00Z", campaign=f"Campaign {n}", step_count=n + 2))
        states.append(state)
    mapping = CampaignMapping(columns={V.SEQUENCE: "seq_col", V.OPENS: "opens_col", V.REPLY_ANALYSIS: "reply_col"})
    body = render_columns(states, mapping, {"seq_col": 55, "opens_col": None, "reply_col": 12})
    assert set(body) == {"seq_col", "opens_col", "reply_col"}  # unmapped values are skipped
    assert body["seq_col"] == "Campaign 3 — 5 steps\nCampaign 2 — 4 steps\n… (+2 more)"
    assert len(str(body["seq_col"])) <= 55
    assert body["opens_col"] == "Campaign 3: 0\nCampaign 2: 0\nCampaign 1: 0\nCampaign 0: 0"
    assert body["reply_col"] == "Campaign 3:…" and len(str(body["reply_col"])) == 12


def test_whole_number_columns_get_the_total_count() -> None:
    first, second = CampaignState("A"), CampaignState("B")
    first.apply(ev("click", "2024-01-01T00:00:00Z", campaign="A"))
    second.apply(ev("click", "2024-01-02T00:00:00Z", campaign="B"))
    second.apply(ev("click", "2024-01-03T00:00:00Z", campaign="B"))
    mapping = CampaignMapping(columns={V.CLICKS: "clicks_int"})
    assert render_columns([first, second], mapping, {}, integer_columns=["clicks_int"]) == {"clicks_int": 3}


def test_truncate() -> None:
    assert truncate("abcdef", 10) == "abcdef"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abcdef", None) == "abcdef"


def test_the_message_contract_is_validated() -> None:
    with pytest.raises(ValidationError):
        ev("bounce", "2024-01-01T00:00:00Z")
    with pytest.raises(ValidationError):
        ev("step", "2024-01-01T00:00:00Z", step=0)
    with pytest.raises(ValidationError):
        CampaignEvent.model_validate({"workspace_id": "ws", "contact_id": "c1", "event": "open"})
    naive = ev("open", "2024-01-01T10:00:00")
    assert naive.occurred_at.utcoffset() is not None
    assert naive.session_id == "ws:c1"
