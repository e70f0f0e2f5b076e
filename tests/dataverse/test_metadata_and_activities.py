"""Metadata (and its cache), WhoAmI, enabled users, tasks and email activities against the sandbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.dataverse.client import DataverseClient

pytestmark = pytest.mark.integration


def _metadata_requests(sandbox: Any) -> int:
    return sum(1 for r in list(sandbox.request_log) if "EntityDefinitions" in r["path"])


def test_entity_metadata_and_cache(sandbox: Any, client: DataverseClient) -> None:
    meta = client.entity_metadata("contact")
    assert (meta.entity_set_name, meta.primary_id, meta.primary_name) == ("contacts", "contactid", "fullname")
    firstname = meta.columns["firstname"]
    assert (firstname.type, firstname.max_length, firstname.required) == ("String", 50, False)
    assert meta.columns["lastname"].required
    assert meta.columns["emailaddress1"].max_length == 100
    assert meta.columns["fullname"].valid_for_create is False
    picklists = [c for c in meta.columns.values() if c.type == "Picklist" and c.options]
    assert picklists, "contact has choice columns with labels"
    assert all(isinstance(v, int) and k == k.lower() for c in picklists for k, v in c.options.items())
    booleans = [c for c in meta.columns.values() if c.type == "Boolean"]
    assert booleans and all(set(c.options.values()) <= {0, 1} for c in booleans)

    seen = _metadata_requests(sandbox)
    assert client.entity_metadata("contact") is meta
    assert _metadata_requests(sandbox) == seen
    assert client.entity_metadata("contact", refresh=True) is not meta
    assert _metadata_requests(sandbox) > seen


def test_metadata_ttl_expires(sandbox: Any, credential: Any) -> None:
    from tests.dataverse.conftest import make_client

    with make_client(sandbox, credential, metadata_ttl=0.0) as short:
        short.entity_metadata("account")
        seen = _metadata_requests(sandbox)
        short.entity_metadata("account")
        assert _metadata_requests(sandbox) > seen


def test_whoami_and_enabled_users(client: DataverseClient) -> None:
    me = client.whoami()
    assert uuid.UUID(me["UserId"]) and uuid.UUID(me["OrganizationId"])
    users = client.enabled_users()
    names = {u.name for u in users}
    assert {"Alice Martin", "Bruno Díaz", "Chloé O'Neil"} <= names
    assert not any(u.disabled for u in users)
    assert not any(u.id == me["UserId"] for u in users), "the application user is not interactive"
    assert "Dana Gone" not in names


def test_task_lifecycle(sandbox: Any, client: DataverseClient) -> None:
    contact = sandbox.store.insert("contact", {"lastname": "Tasked"})
    owner = next(u.id for u in client.enabled_users())
    due = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    task_id = client.create_task(subject="Call O'Brien & co", regarding=("contact", contact),
                                 scheduled_end=due, owner_id=owner, description="first call")
    task = client.get_task(task_id)
    assert task["subject"] == "Call O'Brien & co"
    assert task["_regardingobjectid_value"] == contact
    assert task["_ownerid_value"] == owner
    assert task["scheduledend"].startswith("2030-01-02T03:04:05")
    assert (task["statecode"], task["statuscode"]) == (0, 2)

    client.complete_task(task_id, actual_end=due)
    task = client.get_task(task_id)
    assert (task["statecode"], task["statuscode"]) == (1, 5)
    assert task["actualend"].startswith("2030-01-02T03:04:05")

    account = sandbox.store.insert("account", {"name": "Done Inc"})
    done = client.create_task(subject="Already done", regarding=("account", account), completed=True)
    assert (client.get_task(done)["statecode"], client.get_task(done)["statuscode"]) == (1, 5)


def test_email_activity_completed_with_parties(sandbox: Any, client: DataverseClient) -> None:
    contact = sandbox.store.insert("contact", {"lastname": "Mailed", "emailaddress1": "mailed@x.com"})
    sender = next(u.id for u in client.enabled_users())
    email_id = client.create_email_activity(
        subject="Hello", description="<p>Hi</p>", regarding=("contact", contact),
        from_user_id=sender, to=[("contact", contact)], sent_on=datetime(2024, 6, 1, tzinfo=UTC),
    )
    email = client.get("emails", email_id, select=["subject", "statecode", "statuscode", "directioncode",
                                                    "_regardingobjectid_value"])
    assert (email["subject"], email["statecode"], email["statuscode"]) == ("Hello", 1, 2)
    assert email["directioncode"] is True
    assert email["_regardingobjectid_value"] == contact
    parties = sandbox.store.rows("activityparty")
    mine = [p for p in parties if p.get("_activityid_value") == email_id]
    assert sorted(p["participationtypemask"] for p in mine) == [1, 2]

    draft = client.create_email_activity(subject="Draft", to=[("contact", contact)], completed=False)
    assert client.get("emails", draft, select=["statecode"])["statecode"] == 0
