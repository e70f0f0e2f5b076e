"""Genesy's conversation-events webhooks on the local stack: the secret, storing and processing deliveries,
the admin list and reprocess."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.dataverse_sandbox.seed import SEED_IDS

MARIA = SEED_IDS["contact:maria"]
MARIA_EMAIL = "maria.garcia@acme.com"
ADMIN = {"Content-Type": "application/json"}


def _ws(stack: Any) -> str:
    return f"manage/workspaces/{stack.workspace_id}"


def _secret(stack: Any, grace: float | None = None) -> str:
    body = None if grace is None else {"grace_seconds": grace}
    response = stack.call("POST", f"{_ws(stack)}/webhook-secret", body, headers=ADMIN)
    assert response.status_code == 201, response.json
    assert response.json["url_path"] == f"/api/webhooks/genesy/{stack.workspace_id}"
    assert response.json["header"] == "X-Webhook-Secret"
    return str(response.json["secret"])


def _deliver(stack: Any, secret: str | None, body: Any, workspace_id: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Webhook-Secret"] = secret
    return stack.call("POST", f"webhooks/genesy/{workspace_id or stack.workspace_id}", body, headers=headers)


def _deliveries(stack: Any, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    response = stack.call("GET", f"{_ws(stack)}/webhook-deliveries{query}", headers=ADMIN)
    assert response.status_code == 200, response.json
    return list(response.json["deliveries"])


def _columns(stack: Any, contact: str = MARIA) -> dict[str, Any]:
    row = stack.sandbox.store.get("contact", contact)
    return {k: v for k, v in row.items() if k.startswith("gd_campaign_")}


def _event(event_type: str, event_id: str, **more: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventId": event_id,
        "timestamp": more.pop("timestamp", "2025-01-10T10:00:00Z"),
        "contact": more.pop("contact", {"email": MARIA_EMAIL, "firstName": "Maria", "lastName": "Garcia"}),
        **more,
    }


def test_a_wrong_or_missing_secret_or_unknown_workspace_is_401_and_nothing_is_stored(stack: Any) -> None:
    secret = _secret(stack)
    body = _event("EMAIL_SENT", "evt-1", campaign={"id": 7, "name": "Q1 Outreach"}, step=1, totalSteps=3)
    refused = [
        _deliver(stack, None, body),
        _deliver(stack, "not-the-secret", body),
        _deliver(stack, "short", body),
        _deliver(stack, secret, body, workspace_id="0" * 32),
    ]
    assert {r.status_code for r in refused} == {401}
    assert {str(r.json) for r in refused} == {str({"error": "unauthorized", "message": "invalid webhook secret"})}
    assert _deliveries(stack) == []
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] is None


def test_each_event_type_lands_as_campaign_values_activities_or_engagement(stack: Any) -> None:
    secret = _secret(stack)
    campaign = {"campaign": {"id": 7, "name": "Q1 Outreach"}}
    sent = _deliver(stack, secret, _event("EMAIL_SENT", "evt-s2", step=2, totalSteps=3, messageId="em-2", **campaign))
    assert sent.status_code == 202
    assert sent.json == {"accepted": True, "duplicate": False, "status": "processed"}
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] == "Step 2 of 3"
    assert _columns(stack)["gd_campaign_sequence"] == "Q1 Outreach — 3 steps"

    replied = _event("MESSAGE_REPLIED", "evt-r", timestamp="2025-01-11T09:00:00Z", channel="EMAIL", **campaign)
    assert _deliver(stack, secret, replied).json["status"] == "processed"
    stack.drain()
    columns = _columns(stack)
    assert columns["gd_campaign_status"] == "Replied"
    assert columns["gd_campaign_reply_analysis"] == "Replied; on 2025-01-11 09:00 UTC; after step 2; via EMAIL"

    accepted = _event("CONNECTION_REQUEST_ACCEPTED", "evt-c", timestamp="2025-01-09T08:00:00Z")
    assert _deliver(stack, secret, accepted).json["status"] == "processed"
    [task] = [t for t in stack.rows("task") if t["subject"] == "[LinkedIn connection accepted]"]
    assert task["_regardingobjectid_value"] == MARIA and task["statecode"] == 1

    sean = SEED_IDS["contact:sean"]
    before = _columns(stack, sean)
    liked = _event("POST_LIKED", "evt-l", contact={"crmId": sean})
    assert _deliver(stack, secret, liked).json["status"] == "processed"
    stack.drain()
    assert stack.services.campaign_state.engaged(stack.workspace_id, [sean]) == {sean}
    assert _columns(stack, sean) == before  # engaged only: no campaign value changes

    listed = {d["event_type"]: d for d in _deliveries(stack)}
    assert set(listed) == {"EMAIL_SENT", "MESSAGE_REPLIED", "CONNECTION_REQUEST_ACCEPTED", "POST_LIKED"}
    assert all(d["outcome"] == "parsed" and d["status"] == "processed" for d in listed.values())
    assert listed["POST_LIKED"]["contact_id"] == sean
    assert _deliveries(stack)[0]["event_type"] == "POST_LIKED"  # newest first


def test_a_send_without_a_campaign_invents_none(stack: Any) -> None:
    secret = _secret(stack)
    reply = _deliver(stack, secret, _event("EMAIL_SENT", "evt-nc", step=1, totalSteps=3))
    assert reply.json["status"] == "ignored"
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] is None
    [delivery] = _deliveries(stack, "ignored")
    assert delivery["outcome"] == "ignored" and "names no campaign" in delivery["reason"]


def test_a_retried_delivery_counts_once(stack: Any) -> None:
    secret = _secret(stack)
    body = _event("EMAIL_SENT", "evt-once", campaign="Q1 Outreach", totalSteps=2, attemptNumber=1)
    first = _deliver(stack, secret, body)
    again = _deliver(stack, secret, {**body, "attemptNumber": 2})
    assert first.json["duplicate"] is False
    assert again.json == {"accepted": True, "duplicate": True, "status": "processed"}
    stack.drain()
    assert len(_deliveries(stack)) == 1
    [state] = stack.services.campaign_state.states(stack.workspace_id, MARIA)
    assert len(state.events["sent"]) == 1


def test_a_message_also_logged_as_an_activity_counts_once(stack: Any) -> None:
    secret = _secret(stack)
    activity = {
        "type": "EMAIL",
        "subject": "Hello",
        "direction": "OUTBOUND",
        "contactId": MARIA,
        "occurredAt": "2025-01-10T10:00:00Z",
        "metadata": {"messageId": "msg-42", "campaign": "Q1 Outreach"},
    }
    assert stack.call("POST", "activities", activity).status_code == 201
    body = _event("EMAIL_SENT", "evt-42", campaign="Q1 Outreach", messageId="msg-42")
    assert _deliver(stack, secret, body).json["status"] == "processed"
    stack.drain()
    [state] = stack.services.campaign_state.states(stack.workspace_id, MARIA)
    assert list(state.events) == ["sent"] and len(state.events["sent"]) == 1


def test_an_unknown_body_is_stored_unparsed_and_reprocessed(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.domain import webhooks as parser
    from shared.services import webhooks as service

    secret = _secret(stack)
    odd = {"kind": "reply-received", "who": {"mail": MARIA_EMAIL}, "seq": "Q1 Outreach"}
    reply = _deliver(stack, secret, odd)
    assert reply.status_code == 202 and reply.json["status"] == "unparsed"
    [delivery] = _deliveries(stack, "unparsed")
    assert delivery["outcome"] == "unparsed" and delivery["reason"] and delivery["event_type"] is None

    def newer_parser(body: Any) -> Any:  # a parser that has learnt this shape
        if isinstance(body, dict) and body.get("kind") == "reply-received":
            translated = {"eventType": "MESSAGE_REPLIED", "email": body["who"]["mail"], "campaignName": body["seq"]}
            return parser.parse_webhook({**translated, "timestamp": "2025-02-01T10:00:00Z"})
        return parser.parse_webhook(body)

    monkeypatch.setattr(service, "parse_webhook", newer_parser)
    done = stack.call("POST", f"{_ws(stack)}/webhook-deliveries/reprocess", {"status": "unparsed"}, headers=ADMIN)
    assert done.status_code == 200
    assert done.json["reprocessed"] == 1 and done.json["results"][0]["status"] == "processed"
    stack.drain()
    assert _columns(stack)["gd_campaign_status"] == "Replied"
    assert _deliveries(stack, "unparsed") == []
    [delivery] = _deliveries(stack, "processed")
    assert delivery["event_type"] == "MESSAGE_REPLIED" and delivery["attempts"] == 2

    bad = stack.call("POST", f"{_ws(stack)}/webhook-deliveries/reprocess", {}, headers=ADMIN)
    assert bad.status_code == 400


def test_an_unknown_contact_waits_and_lands_after_export_and_reprocess(stack: Any) -> None:
    secret = _secret(stack)
    person = {"email": "nina.new@example.org", "firstName": "Nina", "lastName": "New"}
    body = _event("EMAIL_SENT", "evt-w", contact=person, campaign="Q1 Outreach", step=1, totalSteps=2)
    assert _deliver(stack, secret, body).json["status"] == "waiting"
    [waiting] = _deliveries(stack, "waiting")
    assert waiting["reason"] and waiting["contact_id"] is None

    exported = stack.call("POST", "contacts", {"contacts": [{"externalId": "nina", **person}]})
    crm_id = exported.json["results"][0]["crmId"]
    stack.drain()
    done = stack.call("POST", f"{_ws(stack)}/webhook-deliveries/reprocess", {"ids": [waiting["id"]]}, headers=ADMIN)
    assert done.json["results"] == [{"id": waiting["id"], "status": "processed", "reason": None}]
    stack.drain()
    assert _columns(stack, crm_id)["gd_campaign_status"] == "Step 1 of 2"
    # a retry of the delivery now answers as a duplicate, without processing it again
    assert _deliver(stack, secret, body).json == {"accepted": True, "duplicate": True, "status": "processed"}


def test_rotation_keeps_the_old_secret_for_the_grace_period(stack: Any) -> None:
    first = _secret(stack)
    body = _event("POST_LIKED", "evt-g1")
    second = _secret(stack, grace=3600)
    assert _deliver(stack, first, body).status_code == 202
    assert _deliver(stack, second, _event("POST_LIKED", "evt-g2")).status_code == 202
    third = _secret(stack, grace=0)
    assert _deliver(stack, first, _event("POST_LIKED", "evt-g3")).status_code == 401
    assert _deliver(stack, second, _event("POST_LIKED", "evt-g4")).status_code == 401
    assert _deliver(stack, third, _event("POST_LIKED", "evt-g5")).status_code == 202
    assert len(_deliveries(stack)) == 3


def test_the_secret_route_checks_the_workspace_and_the_grace(stack: Any) -> None:
    assert stack.call("POST", "manage/workspaces/nope/webhook-secret", headers=ADMIN).status_code == 404
    too_long = {"grace_seconds": 10**9}
    assert stack.call("POST", f"{_ws(stack)}/webhook-secret", too_long, headers=ADMIN).status_code == 400


def test_retention_keeps_at_most_max_rows_per_workspace(stack: Any) -> None:
    store = stack.services.webhooks
    store.max_rows = 3
    for n in range(5):
        store.create(stack.workspace_id, f"d{n}", "{}")
    assert sorted(d.id for d in store.recent(stack.workspace_id)) == ["d2", "d3", "d4"]


def test_engagement_only_events_are_configurable(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.platform.settings import load_settings

    monkeypatch.setenv("WEBHOOK_ENGAGEMENT_EVENTS", "PROFILE_VISITED")
    stack.settings = load_settings()
    secret = _secret(stack)
    liked = _deliver(stack, secret, _event("POST_LIKED", "evt-c1", contact={"crmId": MARIA}))
    visited = _deliver(stack, secret, _event("PROFILE_VISITED", "evt-c2", contact={"crmId": MARIA}))
    assert liked.json["status"] == "ignored" and visited.json["status"] == "processed"
    assert stack.services.campaign_state.engaged(stack.workspace_id, [MARIA]) == {MARIA}


def test_a_waiting_delivery_lands_with_the_next_reconciliation_run(stack: Any) -> None:
    secret = _secret(stack)
    person = {"email": "ona.later@example.org", "firstName": "Ona", "lastName": "Later"}
    body = _event("EMAIL_SENT", "evt-r", contact=person, campaign="Q1 Outreach", step=2, totalSteps=3)
    assert _deliver(stack, secret, body).json["status"] == "waiting"
    exported = stack.call("POST", "contacts", {"contacts": [{"externalId": "ona", **person}]})
    crm_id = exported.json["results"][0]["crmId"]
    stack.drain()
    run = stack.call("POST", f"{_ws(stack)}/reconcile", {}, headers=ADMIN).json
    assert run["webhook_deliveries"] == {"tried": 1, "processed": 1}
    stack.drain()
    assert _columns(stack, crm_id)["gd_campaign_status"] == "Step 2 of 3"
    assert _deliveries(stack, "waiting") == []
    again = stack.call("POST", f"{_ws(stack)}/reconcile", {}, headers=ADMIN).json
    assert again["webhook_deliveries"] == {"tried": 0, "processed": 0}
