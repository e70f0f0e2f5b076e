"""One workspace can never read or change another's data (aliases, ledger, mappings, activities)."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.domain.mappings import WorkspaceCreate


def test_aliases_ledger_and_mappings_stay_inside_their_workspace(stack: Any) -> None:
    store = stack.services.store
    other, other_key = store.create_workspace(WorkspaceCreate(name="Other", environment_url=stack.sandbox.url), "t")
    other_headers = {"X-API-Key": other_key}

    # Workspace A hands out an id while Dynamics is down; its worker later aliases it to María.
    stack.sandbox.config.error_rate_5xx = 1.0
    contacts = [{"externalId": "late", "email": "maria.garcia@acme.com", "lastName": "García"}]
    alias = stack.call("POST", "contacts", {"contacts": contacts}).json["results"][0]["crmId"]
    stack.sandbox.config.error_rate_5xx = 0.0
    stack.drain()

    # Workspace B using A's alias does not reach María: the alias belongs to A.
    put = stack.call("PUT", "contacts", {"contacts": [{"crmId": alias, "title": "Hijack"}]}, headers=other_headers)
    assert put.status_code == 200 and put.json["results"][0]["success"] is False
    stack.drain()
    assert stack.sandbox.store.get("contact", SEED_IDS["contact:maria"]).get("jobtitle") != "Hijack"
    assert stack.services.ledger.get(other.id, "contact", "update", alias) is None  # refused, never queued
    assert stack.services.ledger.get(other.id, "contact", "create", "late") is None
    assert stack.services.ledger.get(stack.workspace_id, "contact", "create", "late") is not None

    # B's change of its mappings is not A's.
    current = store.get_section(other.id, "sync")
    store.put_section(other.id, "sync", {"company": {"mode": "domain"}}, current.etag, "t")
    assert store.mappings(stack.workspace_id).sync.company.mode.value == "domain_or_name"

    # Activities are deduplicated per workspace: the same message id in B is a new activity.
    activity = {"type": "LINKEDIN", "subject": "Hi", "direction": "OUTBOUND", "metadata": {"messageId": "m-1"}}
    first = stack.call("POST", "activities", activity).json["id"]
    second = stack.call("POST", "activities", activity, headers=other_headers).json["id"]
    assert first != second
