"""The Dynamics tables behind Genesy's record kinds, and the ids we hand out for new records."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

__all__ = ["COMPANY", "EntityKind", "contact_kind", "is_guid", "kind_for", "new_record_id"]

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


def new_record_id(workspace_id: str, kind: str, external_id: str) -> str:
    """The Dynamics id a new record gets, fixed before the write: the same inputs always give the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{workspace_id}\x1f{kind}\x1f{external_id}"))


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value.strip()))
