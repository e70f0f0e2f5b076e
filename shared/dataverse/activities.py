"""Request bodies for tasks and email activities (pure; the client sends them).

Dataverse creates activities open; a completed task (statecode 1, statuscode 5) or a sent email
(statecode 1, statuscode 2) takes a second PATCH, which the client sends in the same change set.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain.odata import odata_literal

__all__ = [
    "EMAIL_COMPLETED",
    "ENTITY_SETS",
    "TASK_COMPLETED",
    "bind",
    "email_body",
    "entity_set_of",
    "guid",
    "task_body",
]

ENTITY_SETS: dict[str, str] = {
    "contact": "contacts",
    "account": "accounts",
    "lead": "leads",
    "systemuser": "systemusers",
    "team": "teams",
    "task": "tasks",
    "email": "emails",
}

TASK_COMPLETED = {"statecode": 1, "statuscode": 5}
EMAIL_COMPLETED = {"statecode": 1, "statuscode": 2}

PARTY_FROM = 1
PARTY_TO = 2


def guid(value: str | uuid.UUID) -> str:
    """A record id as Dataverse writes it; anything else is refused (ids go into URL paths)."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def entity_set_of(logical_name: str) -> str:
    try:
        return ENTITY_SETS[logical_name]
    except KeyError:
        raise ValueError(f"no entity set known for {logical_name!r}") from None


def bind(logical_name: str, record_id: str) -> str:
    """`/contacts(<id>)`, the value of an `@odata.bind` annotation."""
    return f"/{entity_set_of(logical_name)}({guid(record_id)})"


def _instant(value: datetime) -> str:
    return odata_literal(value)


def task_body(
    *,
    task_id: str,
    subject: str,
    description: str | None = None,
    regarding: tuple[str, str] | None = None,
    scheduled_end: datetime | None = None,
    owner_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The POST body of a task; `regarding` is (logical name, id) of a contact, account or lead."""
    body: dict[str, Any] = {"activityid": guid(task_id), "subject": subject}
    if description is not None:
        body["description"] = description
    if scheduled_end is not None:
        body["scheduledend"] = _instant(scheduled_end)
    if regarding is not None:
        entity, record_id = regarding
        body[f"regardingobjectid_{entity}_task@odata.bind"] = bind(entity, record_id)
    if owner_id is not None:
        body["ownerid@odata.bind"] = bind("systemuser", owner_id)
    body.update(extra or {})
    return body


def email_body(
    *,
    email_id: str,
    subject: str,
    description: str | None = None,
    regarding: tuple[str, str] | None = None,
    from_user_id: str | None = None,
    to: Sequence[tuple[str, str]] = (),
    outgoing: bool = True,
    sent_on: datetime | None = None,
    owner_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The POST body of an email activity with its parties (from a user, to contacts/leads/accounts)."""
    parties: list[dict[str, Any]] = []
    if from_user_id is not None:
        parties.append(
            {"partyid_systemuser@odata.bind": bind("systemuser", from_user_id), "participationtypemask": PARTY_FROM}
        )
    for entity, record_id in to:
        parties.append({f"partyid_{entity}@odata.bind": bind(entity, record_id), "participationtypemask": PARTY_TO})
    body: dict[str, Any] = {"activityid": guid(email_id), "subject": subject, "directioncode": outgoing}
    if description is not None:
        body["description"] = description
    if parties:
        body["email_activity_parties"] = parties
    if regarding is not None:
        entity, record_id = regarding
        body[f"regardingobjectid_{entity}_email@odata.bind"] = bind(entity, record_id)
    if sent_on is not None:
        body["actualend"] = _instant(sent_on)
    if owner_id is not None:
        body["ownerid@odata.bind"] = bind("systemuser", owner_id)
    body.update(extra or {})
    return body
