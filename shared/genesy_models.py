"""Request bodies Genesy sends to its Custom CRM, as validated models.

Unknown fields are accepted and kept (the field map can use them by name). Known text fields accept
numbers (coerced to text) but never objects or arrays, so a malformed body is a 400 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
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


class _GenesyRecord(BaseModel):
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
    campaigns: Text = None


class CompanyIn(_GenesyRecord):
    externalId: ExternalId
    name: Text = None
    domain: Text = None
    industry: Text = None
    linkedinUrl: Text = None
    ownerId: Text = None
    campaigns: Text = None
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


class _ExportCall(BaseModel):
    """What every export/update call carries besides its records: the values chosen at export time."""

    model_config = ConfigDict(extra="ignore")
    exportValues: ExportValues = Field(default_factory=dict)


class ContactsRequest(_ExportCall):
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_SYNC_PER_CALL)


class CompaniesRequest(_ExportCall):
    companies: list[CompanyIn] = Field(min_length=1, max_length=MAX_SYNC_PER_CALL)


class ContactsUpdateRequest(_ExportCall):
    contacts: list[ContactUpdate] = Field(min_length=1, max_length=MAX_SYNC_PER_CALL)


class CompaniesUpdateRequest(_ExportCall):
    companies: list[CompanyUpdate] = Field(min_length=1, max_length=MAX_SYNC_PER_CALL)


class IdsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ids: list[CrmId] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)


class AssociationPair(BaseModel):
    model_config = ConfigDict(extra="ignore")
    contactCRMId: CrmId
    companyCRMId: CrmId


class AssociationsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    associations: list[AssociationPair] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    subject: ExternalId
    description: Text = None
    type: Text = None
    ownerId: Text = None
    dueDate: datetime | None = None
    contactId: Text = None
    companyId: Text = None


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    completed: bool | None = None
    subject: Text = None
    description: Text = None
    type: Text = None
    dueDate: datetime | None = None


class TasksBatchPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ids: list[CrmId] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)
    completed: bool = True


class ActivityCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["EMAIL", "LINKEDIN", "LINKEDIN_CONNECTION", "LINKEDIN_INMAIL"]
    subject: Text = None
    body: Text = None
    direction: Literal["INBOUND", "OUTBOUND"] | None = None
    ownerId: Text = None
    occurredAt: datetime | None = None
    contactId: Text = None
    companyId: Text = None
    metadata: dict[str, Any] = Field(default_factory=dict)
