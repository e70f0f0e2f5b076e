"""Campaign events through `campaign-updates` (and `/activities`) into the contact's campaign columns."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.domain.campaign import CampaignEvent
from shared.platform.settings import load_settings
from shared.services.campaign import campaign_columns, campaign_message

MARIA = SEED_IDS["contact:maria"]
SEAN = SEED_IDS["contact:sean"]


def _event(stack: Any, event: str, at: str, event_id: str, contact: str = MARIA, **more: Any) -> CampaignEvent:
    return CampaignEvent(
        workspace_id=stack.workspace_id,
        contact_id=contact,
        campaign=more.pop("campaign", "Q1 Outreach"),
        event=event,
        occurred_at=at,
        event_id=event_id,
        **more,
    )


def _send(stack: Any, *events: CampaignEvent) -> None:
    stack.services.sender.send(stack.settings.campaign_queue, [campaign_message(e) for e in events])


def _columns(stack: Any, contact: str = MARIA, entity: str = "contact") -> dict[str, Any]:
    row = stack.sandbox.store.get(entity, contact)
    return {k: v for k, v in row.items() if k.startswith("gd_campaign_")}


def test_events_render_the_seven_columns(stack: Any) -> None:
    _send(
        stack,
        _event(stack, "sequence", "2024-01-01T09:00:00Z", "seq", step_count=3),
        _event(stack, "sent", "2024-01-02T10:00:00Z", "s1", step=1),
        _event(stack, "open", "2024-01-02T11:00:00Z", "o1", step=1),
        _event(stack, "click", "2024-01-02T11:05:00Z", "k1", step=1, detail={"url": "https://acme.com/pricing"}),
        _event(stack, "step", "2024-01-04T10:00:00Z", "s2", step=2),
    )
    report = stack.drain()
    assert report.failed == 0 and report.processed == 5
    assert _columns(stack) == {
        "gd_campaign_sequence": "Q1 Outreach — 3 steps",
        "gd_campaign_status": "Step 2 of 3",
        "gd_campaign_opens": "1",
        "gd_campaign_clicks": "1",
        "gd_campaign_open_analysis": "1 open; on 2024-01-02 11:00 UTC; step opened: 1",
        "gd_campaign_click_analysis": "1 click; on 2024-01-02 11:05 UTC; step clicked: 1; links: https://acme.com/pricing",
        "gd_campaign_reply_analysis": "No reply",
    }
    assert stack.services.campaign_state.engaged(stack.workspace_id, [MARIA, SEAN]) == {MARIA}
    entry = stack.services.ledger.entries(stack.workspace_id, kind="campaign")[0]
    assert entry.status == "updated" and entry.crm_id == MARIA


def test_out_of_order_and_redelivered_events_never_roll_back_or_double_count(stack: Any) -> None:
    late_step = _event(stack, "step", "2024-01-02T10:00:00Z", "s1", step=1, step_count=3)
    _send(
        stack,
        _event(stack, "step", "2024-01-05T10:00:00Z", "s3", step=3, step_count=3),
        _event(stack, "open", "2024-01-05T11:00:00Z", "o1", step=3),
    )
    stack.drain()
    _send(stack, late_step)
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] == "Step 3 of 3"

    # The same event again, under a new Service Bus message id (an integrator's retry): counted once.
    again = _event(stack, "open", "2024-01-05T11:00:00Z", "o1", step=3)
    message = campaign_message(again)
    stack.services.sender.send(
        stack.settings.campaign_queue,
        [type(message)(message.body, message.session_id, "retry-of-o1", message.application_properties)],
    )
    stack.drain()
    assert _columns(stack)["gd_campaign_opens"] == "1"

    _send(stack, _event(stack, "reply", "2024-01-06T09:00:00Z", "r1", detail={"channel": "LINKEDIN"}))
    _send(stack, _event(stack, "step", "2024-01-03T10:00:00Z", "s2", step=2))
    stack.drain()
    columns = _columns(stack)
    assert columns["gd_campaign_status"] == "Replied"
    assert columns["gd_campaign_reply_analysis"] == "Replied; on 2024-01-06 09:00 UTC; after step 3; via LINKEDIN"


def test_a_transient_failure_is_redelivered_without_double_counting(stack: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("WRITE_BUDGET_SECONDS", "0.5")  # give up on Dynamics quickly, so the message is abandoned
    stack.settings = load_settings()
    _send(stack, _event(stack, "open", "2024-01-02T11:00:00Z", "o1"))
    stack.sandbox.config.error_rate_5xx = 1.0
    failing = stack.host.drain(max_messages=2)
    assert failing.failed == 2 and failing.processed == 0 and failing.dead_lettered == 0
    assert _columns(stack)["gd_campaign_opens"] is None

    stack.sandbox.config.error_rate_5xx = 0.0
    recovered = stack.drain()
    assert recovered.processed == 1
    assert _columns(stack)["gd_campaign_opens"] == "1"  # applied on every delivery, counted once


def test_activities_feed_the_campaign(stack: Any) -> None:
    outbound = {
        "type": "LINKEDIN",
        "subject": "[2/3] [FROM Acme Corp] John Smith",
        "direction": "OUTBOUND",
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": MARIA,
        "metadata": {"messageId": "li-2", "sequenceIndex": 2, "sequenceMessageCount": 3, "campaignName": "Spring"},
    }
    stack.call("POST", "activities", outbound)
    stack.call("POST", "activities", outbound)  # a repeat sends nothing new
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] == "Step 2 of 3"
    assert _columns(stack)["gd_campaign_sequence"] == "Spring — 3 steps"

    reply = {
        "type": "EMAIL",
        "subject": "[Acme Corporation] María García",
        "direction": "INBOUND",
        "occurredAt": "2025-01-02T08:00:00Z",
        "contactId": MARIA,
        "metadata": {"messageId": "em-r1", "campaignName": "Spring"},
    }
    stack.call("POST", "activities", reply)
    stack.drain()
    columns = _columns(stack)
    assert columns["gd_campaign_status"] == "Replied"
    assert columns["gd_campaign_reply_analysis"] == "Replied; on 2025-01-02 08:00 UTC; after step 2; via EMAIL"


def test_several_campaigns_one_line_each_within_the_column_limit(stack: Any) -> None:
    names = [f"Campaign with a fairly long name number {n:02d}" for n in range(12)]
    _send(
        stack,
        *[
            _event(stack, "sequence", f"2024-02-{n + 1:02d}T00:00:00Z", f"seq-{n}", campaign=name, step_count=4)
            for n, name in enumerate(names)
        ],
    )
    stack.drain()
    columns = _columns(stack)
    sequence = columns["gd_campaign_sequence"]
    assert len(sequence) <= 400  # the column's max length in the sandbox metadata
    assert sequence.startswith(f"{names[-1]} — 4 steps\n{names[-2]} — 4 steps")
    assert sequence.splitlines()[-1].startswith("… (+")
    assert columns["gd_campaign_opens"].splitlines()[0] == f"{names[-1]}: 0"
    assert len(columns["gd_campaign_opens"]) <= 100


def test_unmapped_values_are_left_alone_and_an_alias_reaches_the_real_contact(stack: Any) -> None:
    stack.services.store.put_section(
        stack.workspace_id, "campaign", {"columns": {"opens": "gd_campaign_opens"}}, "*"
    )
    alias = "0a0a0a0a-0000-4000-8000-000000000001"
    ctx = stack.services.workspace(stack.workspace_id)
    ctx.services.aliases.add(stack.workspace_id, "contact", {alias: SEAN})
    _send(stack, _event(stack, "open", "2024-03-01T10:00:00Z", "o-alias", contact=alias))
    stack.drain()
    columns = _columns(stack, SEAN)
    assert columns["gd_campaign_opens"] == "1"
    assert columns["gd_campaign_status"] is None and columns["gd_campaign_sequence"] is None
    assert stack.services.campaign_state.engaged(stack.workspace_id, [alias, SEAN]) == {alias, SEAN}


def test_lead_workspace_writes_the_lead(stack: Any) -> None:
    stack.services.store.update_workspace(stack.workspace_id, {"contact_entity": "lead"}, "*")
    lead = SEED_IDS["lead:1"]
    _send(stack, _event(stack, "step", "2024-03-01T10:00:00Z", "l-s1", contact=lead, step=1, step_count=2))
    stack.drain()
    assert _columns(stack, lead, "lead")["gd_campaign_status"] == "Step 1 of 2"


def test_a_contact_missing_in_dynamics_lands_in_the_ledger(stack: Any) -> None:
    ghost = "0a0a0a0a-0000-4000-8000-0000000000ff"
    _send(stack, _event(stack, "open", "2024-03-01T10:00:00Z", "o-ghost", contact=ghost))
    report = stack.drain()
    assert report.failed == 0 and report.dead_lettered == 0
    [entry] = stack.services.ledger.entries(stack.workspace_id, kind="campaign")
    assert entry.status == "failed" and entry.crm_id == ghost
    assert "not in Dynamics" in (entry.message or "")
    # The state is kept: once the contact exists, the writes worker can render its columns from it.
    columns = campaign_columns(stack.services.workspace(stack.workspace_id), ghost)
    assert columns["gd_campaign_opens"] == "1" and columns["gd_campaign_status"] == "Enrolled"


def test_a_malformed_event_ends_in_the_dead_letter_queue_with_its_reason(stack: Any) -> None:
    from shared.messaging.queue import OutgoingMessage

    stack.queue.max_delivery_count = 2
    stack.services.sender.send(
        stack.settings.campaign_queue,
        [OutgoingMessage({"version": 1, "workspace_id": stack.workspace_id, "event": "bounce"}, "x", "bad-1")],
    )
    report = stack.drain()
    assert report.dead_lettered == 1
    [letter] = stack.queue.dead_letters[stack.settings.campaign_queue]
    assert "invalid campaign event" in letter.description and "event" in letter.description
