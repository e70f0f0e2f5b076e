"""The admin's configuration as validated documents: a workspace and the four mapping sections.

Sections follow Genesy's own Dynamics set-up steps: input/sync mapping (`SyncMapping`), export
mapping (`ExportMapping`), campaign mapping (`CampaignMapping`) and user mapping (`UserMapping`).
Validation names the path of whatever is wrong (pydantic locations), so the admin API can answer
400 with `details[].field`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "CAMPAIGN_VALUES",
    "SECTION_MODELS",
    "ApiKeyRecord",
    "CampaignMapping",
    "CampaignValue",
    "ColumnName",
    "CompanyIdentifierMode",
    "CompanyMatching",
    "ContactEntity",
    "ContactIdentifierMode",
    "ContactMatching",
    "EngagementField",
    "EntityExportMapping",
    "ExportField",
    "ExportMapping",
    "FieldMapping",
    "FixedField",
    "GenesyField",
    "IdentityMapping",
    "MatchCondition",
    "MatchRule",
    "Normaliser",
    "SectionName",
    "SyncMapping",
    "UserMapping",
    "UserMappingEntry",
    "Workspace",
    "WorkspaceCreate",
    "WritePolicy",
    "default_section",
]

# Dataverse logical names: lower-case letters, digits and underscores (custom columns carry a prefix_).
ColumnName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$")]
# A column or a single-valued lookup path used only for matching, e.g. `parentcustomerid_account/name`.
MatchColumn = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,99}(/[a-z][a-z0-9_]{0,99})?$")]
# A Genesy field name as sent by Genesy (known fields and any extra key it sends).
GenesyField = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
ScalarValue = str | int | float | bool

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WritePolicy(StrEnum):
    """When a mapped value may be written: always, only into an empty column, or only on create."""

    OVERWRITE = "overwrite"
    IF_EMPTY = "if_empty"
    ON_CREATE = "on_create"


class Normaliser(StrEnum):
    """How both sides of a match are normalised before comparing."""

    EXACT = "exact"  # trimmed, case-insensitive
    EMAIL = "email"
    LINKEDIN = "linkedin"
    DOMAIN = "domain"
    NAME = "name"  # case, accents, punctuation and company suffixes ignored
    PHONE = "phone"


# ---------------------------------------------------------------------------------------------
# Input / sync mapping


class MatchCondition(_Doc):
    field: GenesyField
    column: MatchColumn
    normaliser: Normaliser = Normaliser.EXACT


class MatchRule(_Doc):
    """All conditions must hold (AND); a record missing any of the fields cannot match by this rule."""

    all_of: list[MatchCondition] = Field(min_length=1, max_length=6)


class ContactIdentifierMode(StrEnum):
    NAME_COMPANY = "name_company"
    LINKEDIN_OR_NAME_COMPANY = "linkedin_or_name_company"
    EMAIL_OR_LINKEDIN_OR_NAME_COMPANY = "email_or_linkedin_or_name_company"
    CUSTOM = "custom"


class CompanyIdentifierMode(StrEnum):
    DOMAIN = "domain"
    DOMAIN_OR_NAME = "domain_or_name"
    CUSTOM = "custom"


class ContactMatching(_Doc):
    mode: ContactIdentifierMode = ContactIdentifierMode.EMAIL_OR_LINKEDIN_OR_NAME_COMPANY
    rules: list[MatchRule] = Field(default_factory=list, max_length=10)
    email_column: MatchColumn = "emailaddress1"
    linkedin_column: MatchColumn = "gd_linkedinurl"
    first_name_column: MatchColumn = "firstname"
    last_name_column: MatchColumn = "lastname"
    # For contacts the company is the parent account's name; for leads use `companyname`.
    company_column: MatchColumn = "parentcustomerid_account/name"

    @model_validator(mode="after")
    def _rules_only_for_custom(self) -> ContactMatching:
        if self.mode is ContactIdentifierMode.CUSTOM and not self.rules:
            raise ValueError("rules: custom mode needs at least one rule")
        if self.mode is not ContactIdentifierMode.CUSTOM and self.rules:
            raise ValueError(f"rules: only allowed with mode 'custom' (mode is '{self.mode.value}')")
        return self

    def effective_rules(self) -> list[MatchRule]:
        """The OR-of-AND rules this configuration means, in priority order."""
        email = MatchRule(all_of=[MatchCondition(field="email", column=self.email_column, normaliser=Normaliser.EMAIL)])
        linkedin = MatchRule(
            all_of=[MatchCondition(field="linkedinUrl", column=self.linkedin_column, normaliser=Normaliser.LINKEDIN)]
        )
        name_company = MatchRule(
            all_of=[
                MatchCondition(field="firstName", column=self.first_name_column, normaliser=Normaliser.NAME),
                MatchCondition(field="lastName", column=self.last_name_column, normaliser=Normaliser.NAME),
                MatchCondition(field="company", column=self.company_column, normaliser=Normaliser.NAME),
            ]
        )
        match self.mode:
            case ContactIdentifierMode.NAME_COMPANY:
                return [name_company]
            case ContactIdentifierMode.LINKEDIN_OR_NAME_COMPANY:
                return [linkedin, name_company]
            case ContactIdentifierMode.EMAIL_OR_LINKEDIN_OR_NAME_COMPANY:
                return [email, linkedin, name_company]
            case _:
                return list(self.rules)


class CompanyMatching(_Doc):
    mode: CompanyIdentifierMode = CompanyIdentifierMode.DOMAIN_OR_NAME
    rules: list[MatchRule] = Field(default_factory=list, max_length=10)
    any_domain_extension: bool = False
    domain_column: MatchColumn = "websiteurl"
    name_column: MatchColumn = "name"

    @model_validator(mode="after")
    def _rules_only_for_custom(self) -> CompanyMatching:
        if self.mode is CompanyIdentifierMode.CUSTOM and not self.rules:
            raise ValueError("rules: custom mode needs at least one rule")
        if self.mode is not CompanyIdentifierMode.CUSTOM and self.rules:
            raise ValueError(f"rules: only allowed with mode 'custom' (mode is '{self.mode.value}')")
        return self

    def effective_rules(self) -> list[MatchRule]:
        domain = MatchRule(
            all_of=[MatchCondition(field="domain", column=self.domain_column, normaliser=Normaliser.DOMAIN)]
        )
        name = MatchRule(all_of=[MatchCondition(field="name", column=self.name_column, normaliser=Normaliser.NAME)])
        match self.mode:
            case CompanyIdentifierMode.DOMAIN:
                return [domain]
            case CompanyIdentifierMode.DOMAIN_OR_NAME:
                return [domain, name]
            case _:
                return list(self.rules)


def _no_duplicate_keys(mapping: dict[str, str], what: str) -> None:
    seen: dict[str, str] = {}
    for key, column in mapping.items():
        if column in seen:
            raise ValueError(f"{what}.{key}: column '{column}' is already returned as '{seen[column]}'")
        seen[column] = key


class SyncMapping(_Doc):
    """Input/sync mapping: how to tell a record already exists, and what to return to Genesy."""

    contact: ContactMatching = Field(default_factory=ContactMatching)
    company: CompanyMatching = Field(default_factory=CompanyMatching)
    # Genesy property name → Dataverse column, returned as `properties` on /…/sync.
    contact_sync_back: dict[GenesyField, ColumnName] = Field(default_factory=dict, max_length=50)
    company_sync_back: dict[GenesyField, ColumnName] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _distinct(self) -> SyncMapping:
        _no_duplicate_keys(self.contact_sync_back, "contact_sync_back")
        _no_duplicate_keys(self.company_sync_back, "company_sync_back")
        return self


# ---------------------------------------------------------------------------------------------
# Export mapping


class FieldMapping(_Doc):
    source: GenesyField
    column: ColumnName
    policy: WritePolicy = WritePolicy.OVERWRITE


class FixedField(_Doc):
    column: ColumnName
    value: ScalarValue
    policy: WritePolicy = WritePolicy.OVERWRITE


class ExportField(_Doc):
    """A value the Genesy user picks at export time (sent in `exportValues[name]`)."""

    name: GenesyField
    column: ColumnName
    options: list[ScalarValue] = Field(default_factory=list, max_length=500)
    default: ScalarValue | None = None
    required: bool = False
    policy: WritePolicy = WritePolicy.OVERWRITE

    @model_validator(mode="after")
    def _default_is_an_option(self) -> ExportField:
        if self.options and self.default is not None and self.default not in self.options:
            raise ValueError(f"default: {self.default!r} is not one of the options")
        if len(set(map(repr, self.options))) != len(self.options):
            raise ValueError("options: an option is listed twice")
        return self


class EngagementField(_Doc):
    """A constant written only when the record took part in a campaign; otherwise left untouched."""

    column: ColumnName
    value: ScalarValue
    policy: WritePolicy = WritePolicy.OVERWRITE

    @field_validator("value", mode="before")
    @classmethod
    def _value_present(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("an engagement field needs a value")
        return value


class EntityExportMapping(_Doc):
    fields: list[FieldMapping] = Field(default_factory=list, max_length=300)
    fixed: list[FixedField] = Field(default_factory=list, max_length=100)
    export_fields: list[ExportField] = Field(default_factory=list, max_length=50)
    engagement: list[EngagementField] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _each_column_once(self) -> EntityExportMapping:
        seen: dict[str, str] = {}
        groups: list[tuple[str, list[Any]]] = [
            ("fields", self.fields),
            ("fixed", self.fixed),
            ("export_fields", self.export_fields),
            ("engagement", self.engagement),
        ]
        for group, items in groups:
            for index, item in enumerate(items):
                where = f"{group}[{index}]"
                if item.column in seen:
                    raise ValueError(f"{where}.column: '{item.column}' is already mapped by {seen[item.column]}")
                seen[item.column] = where
        names = [f.name for f in self.export_fields]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ValueError(f"export_fields[{index}].name: '{name}' is used twice")
        return self

    def columns(self) -> set[str]:
        return {m.column for group in (self.fields, self.fixed, self.export_fields, self.engagement) for m in group}


class ExportMapping(_Doc):
    contact: EntityExportMapping = Field(default_factory=EntityExportMapping)
    company: EntityExportMapping = Field(default_factory=EntityExportMapping)


# ---------------------------------------------------------------------------------------------
# Campaign mapping


class CampaignValue(StrEnum):
    SEQUENCE = "sequence"  # sequence details (campaign name and step count)
    ENGAGEMENT_STATUS = "engagement_status"  # current step
    OPENS = "opens"
    CLICKS = "clicks"
    OPEN_ANALYSIS = "open_analysis"
    CLICK_ANALYSIS = "click_analysis"
    REPLY_ANALYSIS = "reply_analysis"


CAMPAIGN_VALUES: tuple[CampaignValue, ...] = tuple(CampaignValue)


class CampaignMapping(_Doc):
    """The seven campaign values, each rendered as text into a contact (or lead) column."""

    enabled: bool = True
    columns: dict[CampaignValue, ColumnName] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct(self) -> CampaignMapping:
        _no_duplicate_keys({k.value: v for k, v in self.columns.items()}, "columns")
        return self


# ---------------------------------------------------------------------------------------------
# User mapping


def _guid(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(f"'{value}' is not a Dynamics user id (a GUID)")
    return value.lower()


class IdentityMapping(_Doc):
    """A Genesy sender identity (email or name) → the Dynamics user activities are logged for."""

    identity: Annotated[str, StringConstraints(min_length=1, max_length=320, strip_whitespace=True)]
    systemuser_id: str

    _check_id = field_validator("systemuser_id")(classmethod(lambda cls, v: _guid(v)))


class UserMappingEntry(_Doc):
    """A Genesy user (id or email) → the Dynamics user who owns what they export."""

    genesy_user: Annotated[str, StringConstraints(min_length=1, max_length=320, strip_whitespace=True)]
    systemuser_id: str

    _check_id = field_validator("systemuser_id")(classmethod(lambda cls, v: _guid(v)))


class UserMapping(_Doc):
    identities: list[IdentityMapping] = Field(default_factory=list, max_length=500)
    users: list[UserMappingEntry] = Field(default_factory=list, max_length=500)
    # The Genesy record field holding the exporting user, looked up in `users` when no ownerId came.
    owner_field: GenesyField = "ownerEmail"
    default_owner_id: str | None = None

    @field_validator("default_owner_id")
    @classmethod
    def _default_owner(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value)

    @model_validator(mode="after")
    def _distinct(self) -> UserMapping:
        for what, keys in (
            ("identities", [i.identity.lower() for i in self.identities]),
            ("users", [u.genesy_user.lower() for u in self.users]),
        ):
            for index, key in enumerate(keys):
                if keys.index(key) != index:
                    raise ValueError(f"{what}[{index}]: '{key}' is mapped twice")
        return self


# ---------------------------------------------------------------------------------------------
# Workspaces and sections

SectionName = Literal["sync", "export", "campaign", "users"]
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "sync": SyncMapping,
    "export": ExportMapping,
    "campaign": CampaignMapping,
    "users": UserMapping,
}

ContactEntity = Literal["contact", "lead"]


def _environment_url(value: str) -> str:
    parsed = urlparse(value.strip())
    if parsed.scheme != "https" or not parsed.hostname or parsed.path not in ("", "/") or parsed.query:
        raise ValueError("must be an https URL of a Dynamics environment, e.g. https://org.crm.dynamics.com")
    return f"https://{parsed.netloc.lower()}"


class WorkspaceCreate(_Doc):
    """What an admin sends to create a workspace."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    environment_url: str
    contact_entity: ContactEntity = "contact"
    key_header: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] = "X-API-Key"

    _check_url = field_validator("environment_url")(classmethod(lambda cls, v: _environment_url(v)))


class ApiKeyRecord(_Doc):
    key_id: str
    created_at: datetime
    expires_at: datetime | None = None  # set when rotated out; valid until then (grace period)


class Workspace(_Doc):
    id: str
    name: str
    environment_url: str
    contact_entity: ContactEntity = "contact"
    key_header: str = "X-API-Key"
    created_at: datetime
    keys: list[ApiKeyRecord] = Field(default_factory=list)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def default_section(section: str, contact_entity: ContactEntity = "contact") -> BaseModel:
    """Useful defaults for a new workspace, so an export works before any mapping is edited."""
    if section == "sync":
        if contact_entity == "lead":
            return SyncMapping(contact=ContactMatching(company_column="companyname"))
        return SyncMapping()
    if section == "export":
        # What identifies a record, or what people curate by hand in Dynamics, is only filled in when
        # empty: exporting a matched record never renames it. A job title is Genesy's fresher fact.
        keep = WritePolicy.IF_EMPTY
        person = [
            FieldMapping(source="firstName", column="firstname", policy=keep),
            FieldMapping(source="lastName", column="lastname", policy=keep),
            FieldMapping(source="email", column="emailaddress1", policy=keep),
            FieldMapping(source="title", column="jobtitle"),
            FieldMapping(source="phone", column="telephone1", policy=keep),
            FieldMapping(source="linkedinUrl", column="gd_linkedinurl", policy=keep),
        ]
        if contact_entity == "lead":
            person.append(FieldMapping(source="company", column="companyname", policy=keep))
        company = [
            FieldMapping(source="name", column="name", policy=keep),
            FieldMapping(source="domain", column="websiteurl", policy=WritePolicy.IF_EMPTY),
            FieldMapping(source="numberOfEmployees", column="numberofemployees"),
            FieldMapping(source="description", column="description", policy=WritePolicy.IF_EMPTY),
            FieldMapping(source="linkedinUrl", column="gd_linkedinurl"),
        ]
        return ExportMapping(contact=EntityExportMapping(fields=person), company=EntityExportMapping(fields=company))
    if section == "campaign":
        return CampaignMapping(columns={value: f"gd_campaign_{_CAMPAIGN_COLUMN[value]}" for value in CampaignValue})
    if section == "users":
        return UserMapping()
    raise KeyError(section)


_CAMPAIGN_COLUMN = {
    CampaignValue.SEQUENCE: "sequence",
    CampaignValue.ENGAGEMENT_STATUS: "status",
    CampaignValue.OPENS: "opens",
    CampaignValue.CLICKS: "clicks",
    CampaignValue.OPEN_ANALYSIS: "open_analysis",
    CampaignValue.CLICK_ANALYSIS: "click_analysis",
    CampaignValue.REPLY_ANALYSIS: "reply_analysis",
}
