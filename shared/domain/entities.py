"""The Dynamics tables behind Genesy's record kinds, and the ids we hand out for new records."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COMPANY",
    "ISSUED_KINDS",
    "EntityKind",
    "contact_kind",
    "is_guid",
    "issued_kind",
    "kind_for",
    "new_record_id",
]

_NAMESPACE = uuid.UUID("6f1f5c1e-3b7a-4d8e-9a51-7b0c2f4e9d10")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class EntityKind:
    kind: Literal["contact", "company"]
    logical_name: str
    entity_set: str
    primary_id: str
    parent_bind: str | None = None  # navigation property for contact → account
    parent_value: str | None = None  # the lookup's read-back column

    @property
    def label(self) -> str:
        return "Contact" if self.kind == "contact" else "Company"


CONTACT = EntityKind(
    "contact", "contact", "contacts", "contactid", "parentcustomerid_account", "_parentcustomerid_value"
)
LEAD = EntityKind("contact", "lead", "leads", "leadid", "parentaccountid", "_parentaccountid_value")
COMPANY = EntityKind("company", "account", "accounts", "accountid")


def contact_kind(contact_entity: str) -> EntityKind:
    return LEAD if contact_entity == "lead" else CONTACT


def kind_for(kind: str, contact_entity: str) -> EntityKind:
    return COMPANY if kind == "company" else contact_kind(contact_entity)


ISSUED_KINDS = ("contact", "company", "task")


def _tag(workspace_id: str, kind: str, head: bytes) -> bytes:
    return hmac.new(workspace_id.encode(), b"issued\x1f" + kind.encode() + b"\x1f" + head, hashlib.sha256).digest()[:4]


def new_record_id(workspace_id: str, kind: str, external_id: str) -> str:
    """The Dynamics id a new record gets, fixed before the write: the same inputs always give the same id.

    A name-based (v5) UUID whose last 32 bits are a tag of (workspace, kind, the first 96 bits), so
    `issued_kind` can tell an id we handed out — and for which kind — from the id alone, before the
    record is written, without any storage on the hot path.
    """
    head = uuid.uuid5(_NAMESPACE, f"{workspace_id}\x1f{kind}\x1f{external_id}").bytes[:12]
    return str(uuid.UUID(bytes=head + _tag(workspace_id, kind, head)))


def issued_kind(workspace_id: str, crm_id: str) -> str | None:
    """The kind (`contact`, `company`, `task`) an id was issued for by `new_record_id` in this workspace, or
    None for any other id (a record created elsewhere, another workspace's id, garbage)."""
    if not is_guid(crm_id):
        return None
    raw = uuid.UUID(crm_id.strip()).bytes
    for kind in ISSUED_KINDS:
        if hmac.compare_digest(raw[12:], _tag(workspace_id, kind, raw[:12])):
            return kind
    return None


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value.strip()))
