"""Request bodies Genesy sends to its Custom CRM, as validated models.

Unknown fields are accepted and kept (the field map can use them by name). Known text fields accept
numbers (coerced to text) but never objects or arrays, so a malformed body is a 400 naming the field.

Tolerant where Genesy plausibly varies: empty lists are valid (the call then does nothing), `null` for
an optional field means "not sent" (its default applies; where null has a meaning of its own, such as
clearing a task's due date, it is kept), activity `type`/`direction` come in any case and are upper-cased,
and `campaigns` is the documented text or a list of names.
"""

from __future__ import annotations

import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "DOCUMENTED_ACTIVITY_TYPES",
    "MAX_ACTIVITY_TYPE_LENGTH",
    "MAX_COMPANIES_PER_CALL",
    "MAX_CONTACTS_PER_CALL",
    "ActivityCreate",
    "AssociationPair",
    "AssociationsRequest",
    "CompaniesRequest",
    "CompaniesUpdateRequest",
    "CompanyIn",
    "CompanyUpdate",
    "ContactIn",
    "ContactUpdate",
    "ContactsRequest",
    "ContactsSyncRequest",
    "ContactsUpdateRequest",
    "IdsRequest",
    "RecordKind",
    "TaskCreate",
    "TaskPatch",
    "TasksBatchPatch",
]

MAX_CONTACTS_PER_CALL = 100
MAX_COMPANIES_PER_CALL = 500
MAX_SYNC_PER_CALL = 1000
MAX_IDS_PER_CALL = 1000

RecordKind = Literal["contact", "company"]

# Activity types Genesy documents (Custom CRM API, POST /activities). Other names are accepted too, in any
# case and upper-cased like these: CALL (a call logged in Genesy) and MEETING (a meeting booked or held) are
# not in the documentation but plausible, NOTE and others likewise. The activity service logs a type it
# does not know as a labelled, completed task (shared.services.activities) instead of refusing the call.
DOCUMENTED_ACTIVITY_TYPES: tuple[str, ...] = ("EMAIL", "LINKEDIN", "LINKEDIN_CONNECTION", "LINKEDIN_INMAIL")
MAX_ACTIVITY_TYPE_LENGTH = 100


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise ValueError("must be text")


Text = Annotated[str | None, BeforeValidator(_text)]


def _identifier(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > 200:
        raise ValueError("must be at most 200 characters")
    return value


ExternalId = Annotated[str, BeforeValidator(_text), AfterValidator(_identifier)]
CrmId = ExternalId
Scalar = str | int | float | bool


def _campaigns(value: Any) -> Any:
    """The documented text, or a list of campaign names joined with ", " (empty names dropped)."""
    if not isinstance(value, list):
        return _text(value)
    names: list[str] = []
    for item in value:
        if isinstance(item, dict | list):
            raise ValueError("must be text or a list of campaign names")
        name = _text(item)
        if name is not None and name.strip():
            names.append(name.strip())
    return ", ".join(names) or None


Campaigns = Annotated[str | None, BeforeValidator(_campaigns)]


def _activity_type(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the str annotation refuses it, naming the field
    value = value.strip().upper()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_ACTIVITY_TYPE_LENGTH:
        raise ValueError(f"must be at most {MAX_ACTIVITY_TYPE_LENGTH} characters")
    return value


def _direction(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = value.strip().upper()
    return value or None


ActivityType = Annotated[str, BeforeValidator(_activity_type)]
Direction = Annotated[Literal["INBOUND", "OUTBOUND"] | None, BeforeValidator(_direction)]


def _accepts_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_accepts_none(arg) for arg in get_args(annotation))
    return False


class _Body(BaseModel):
    """Every Genesy body: `null` for an optional field that cannot be null means "not sent" (its default)."""

    @model_validator(mode="before")
    @classmethod
    def _nulls_as_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        dropped = [
            name
            for name, info in cls.model_fields.items()
            if name in data and data[name] is None and not info.is_required() and not _accepts_none(info.annotation)
        ]
        if not dropped:
            return data
        return {k: v for k, v in data.items() if k not in dropped}


class _GenesyRecord(_Body):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def fields(self) -> dict[str, Any]:
        """Every field Genesy sent (known and extra), without nulls."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ContactIn(_GenesyRecord):
    externalId: ExternalId
    email: Text = None
    firstName: Text = None
    lastName: Text = None
    phone: Text = None
    company: Text = None
    title: Text = None
    linkedinUrl: Text = None
    ownerId: Text = None
    campaigns: Campaigns = None


class CompanyIn(_GenesyRecord):
    externalId: ExternalId
    name: Text = None
    domain: Text = None
    industry: Text = None
    linkedinUrl: Text = None
    ownerId: Text = None
    campaigns: Campaigns = None
    numberOfEmployees: int | float | str | None = None
    employeeCount: int | float | str | None = None

    @model_validator(mode="after")
    def _employee_alias(self) -> CompanyIn:
        # Export says numberOfEmployees, sync says employeeCount: accept both as one.
        if self.numberOfEmployees is None and self.employeeCount is not None:
            object.__setattr__(self, "numberOfEmployees", self.employeeCount)
        return self


class ContactUpdate(ContactIn):
    crmId: CrmId
    externalId: ExternalId | None = None  # type: ignore[assignment]


class CompanyUpdate(CompanyIn):
    crmId: CrmId
    externalId: ExternalId | None = None  # type: ignore[assignment]


ExportValues = dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")], Scalar | None]


class _ExportCall(_Body):
    """What every export/update call carries besides its records: the values chosen at export time."""

    model_config = ConfigDict(extra="ignore")
    exportValues: ExportValues = Field(default_factory=dict)


class ContactsRequest(_ExportCall):
    """`POST /contacts` (export): at most 100 contacts, Genesy's documented batch size."""

    contacts: list[ContactIn] = Field(max_length=MAX_CONTACTS_PER_CALL)


class ContactsSyncRequest(_ExportCall):
    """`POST /contacts/sync`: at most 1000 contacts."""

    contacts: list[ContactIn] = Field(max_length=MAX_SYNC_PER_CALL)


class CompaniesRequest(_ExportCall):
    companies: list[CompanyIn] = Field(max_length=MAX_SYNC_PER_CALL)


class ContactsUpdateRequest(_ExportCall):
    contacts: list[ContactUpdate] = Field(max_length=MAX_SYNC_PER_CALL)


class CompaniesUpdateRequest(_ExportCall):
    companies: list[CompanyUpdate] = Field(max_length=MAX_SYNC_PER_CALL)


class IdsRequest(_Body):
    model_config = ConfigDict(extra="ignore")
    ids: list[CrmId] = Field(max_length=MAX_IDS_PER_CALL)


class AssociationPair(_Body):
    model_config = ConfigDict(extra="ignore")
    contactCRMId: CrmId
    companyCRMId: CrmId


class AssociationsRequest(_Body):
    model_config = ConfigDict(extra="ignore")
    associations: list[AssociationPair] = Field(max_length=MAX_IDS_PER_CALL)


class TaskCreate(_Body):
    model_config = ConfigDict(extra="ignore")
    subject: ExternalId
    description: Text = None
    type: Text = None
    ownerId: Text = None
    dueDate: datetime | None = None
    contactId: Text = None
    companyId: Text = None


class TaskPatch(_Body):
    model_config = ConfigDict(extra="ignore")
    completed: bool | None = None
    subject: Text = None
    description: Text = None
    type: Text = None
    dueDate: datetime | None = None


class TasksBatchPatch(_Body):
    model_config = ConfigDict(extra="ignore")
    ids: list[CrmId] = Field(max_length=MAX_IDS_PER_CALL)
    completed: bool = True


class ActivityCreate(_Body):
    model_config = ConfigDict(extra="ignore")
    type: ActivityType  # upper case; DOCUMENTED_ACTIVITY_TYPES or any other name Genesy sends
    subject: Text = None
    body: Text = None
    direction: Direction = None
    ownerId: Text = None
    occurredAt: datetime | None = None
    contactId: Text = None
    companyId: Text = None
    metadata: dict[str, Any] = Field(default_factory=dict)
