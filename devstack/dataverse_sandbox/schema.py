"""The tables the sandbox knows: columns with Dataverse types, lengths, requirement levels and choices.

Lengths and requirement levels are the documented out-of-the-box ones; `gd_*` columns are the custom
columns a Genesy integration adds (LinkedIn URL, external id, campaign text columns).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ENTITIES",
    "ENTITY_SETS",
    "Attribute",
    "AttributeType",
    "CollectionNav",
    "Entity",
    "Nav",
    "Option",
    "entity_by_set",
]

AttributeType = Literal[
    "String", "Memo", "Integer", "BigInt", "Decimal", "Double", "Money", "Boolean", "DateTime",
    "Picklist", "State", "Status", "Lookup", "Customer", "Owner", "Uniqueidentifier", "EntityName",
]
RequiredLevel = Literal["None", "Recommended", "ApplicationRequired", "SystemRequired"]
LOOKUP_TYPES = ("Lookup", "Customer", "Owner")


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    state: int | None = None  # for Status options: the statecode they belong to


@dataclass(frozen=True)
class Attribute:
    logical_name: str
    type: AttributeType
    display_name: str = ""
    max_length: int | None = None
    required: RequiredLevel = "None"
    valid_for_create: bool = True
    valid_for_update: bool = True
    targets: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    date_only: bool = False
    min_value: float | None = None
    max_value: float | None = None
    custom: bool = False
    is_primary_id: bool = False
    is_primary_name: bool = False
    string_format: str = "Text"

    @property
    def is_lookup(self) -> bool:
        return self.type in LOOKUP_TYPES

    @property
    def schema_name(self) -> str:
        if self.custom:
            prefix, _, rest = self.logical_name.partition("_")
            return f"{prefix}_{''.join(p.capitalize() for p in rest.split('_'))}"
        return self.logical_name[:1].upper() + self.logical_name[1:]

    def metadata_id(self, entity: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"attr:{entity}.{self.logical_name}"))

    def option(self, value: int) -> Option | None:
        return next((o for o in self.options if o.value == value), None)


@dataclass(frozen=True)
class Nav:
    """A single-valued navigation property used in `x@odata.bind` and lookup paths (`x/name`)."""

    name: str
    attribute: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class CollectionNav:
    """A collection-valued navigation property (deep insert, $expand): child rows pointing back."""

    name: str
    child_entity: str
    child_attribute: str


@dataclass(frozen=True)
class Entity:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    object_type_code: int
    display_name: str
    attributes: dict[str, Attribute]
    navs: dict[str, Nav]
    collections: dict[str, CollectionNav] = field(default_factory=dict)
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    is_activity: bool = False
    ownership: str = "UserOwned"

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    @property
    def metadata_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"entity:{self.logical_name}"))

    @property
    def schema_name(self) -> str:
        return self.logical_name[:1].upper() + self.logical_name[1:]

    def lookup_by_value_name(self, name: str) -> Attribute | None:
        """`_parentcustomerid_value` → the parentcustomerid attribute."""
        if name.startswith("_") and name.endswith("_value"):
            attr = self.attributes.get(name[1:-6])
            if attr is not None and attr.is_lookup:
                return attr
        return None


def _opts(*pairs: tuple[int, str]) -> tuple[Option, ...]:
    return tuple(Option(v, label) for v, label in pairs)


def _status(*triples: tuple[int, str, int]) -> tuple[Option, ...]:
    return tuple(Option(v, label, state) for v, label, state in triples)


def S(name: str, length: int, required: RequiredLevel = "None", display: str = "", *,
      custom: bool = False, fmt: str = "Text") -> Attribute:
    return Attribute(name, "String", display or name, max_length=length, required=required,
                     custom=custom, string_format=fmt)


def M(name: str, length: int, display: str = "", *, custom: bool = False) -> Attribute:
    return Attribute(name, "Memo", display or name, max_length=length, custom=custom)


def _readonly(name: str, type_: AttributeType, display: str = "", *, targets: tuple[str, ...] = (),
              max_length: int | None = None) -> Attribute:
    return Attribute(name, type_, display or name, valid_for_create=False, valid_for_update=False,
                     targets=targets, max_length=max_length)


LEAD_SOURCE = _opts(
    (1, "Advertisement"), (2, "Employee Referral"), (3, "External Referral"), (4, "Partner"),
    (5, "Public Relations"), (6, "Seminar"), (7, "Trade Show"), (8, "Web"), (9, "Word of Mouth"),
    (10, "Other"),
)
INDUSTRY = _opts(
    (1, "Accounting"), (2, "Agriculture and Non-petrol Natural Resource Extraction"),
    (3, "Broadcasting Printing and Publishing"), (4, "Brokers"), (5, "Building Supply Retail"),
    (6, "Business Services"), (7, "Consulting"), (8, "Consumer Services"),
    (9, "Design, Direction and Creative Management"), (10, "Distributors, Dispatchers and Processors"),
    (11, "Doctor's Offices and Clinics"), (12, "Durable Manufacturing"), (13, "Eating and Drinking Places"),
    (14, "Entertainment Retail"), (15, "Equipment Rental and Leasing"), (16, "Financial"),
    (17, "Food and Tobacco Processing"), (18, "Inbound Capital Intensive Processing"),
    (19, "Inbound Repair and Services"), (20, "Insurance"), (21, "Legal Services"),
    (22, "Non-Durable Merchandise Retail"), (23, "Outbound Consumer Service"),
    (24, "Petrochemical Extraction and Distribution"), (25, "Service Retail"), (26, "SIG Affiliations"),
    (27, "Social Services"), (28, "Special Outbound Trade Contractors"), (29, "Specialty Realty"),
    (30, "Transportation"), (31, "Utility Creation and Distribution"), (32, "Vehicle Retail"),
    (33, "Wholesale"),
)
ACTIVE_INACTIVE_STATE = _opts((0, "Active"), (1, "Inactive"))
ACTIVE_INACTIVE_STATUS = _status((1, "Active", 0), (2, "Inactive", 1))
ACTIVITY_STATE = _opts((0, "Open"), (1, "Completed"), (2, "Canceled"))


def _common(owned: bool = True, state: tuple[Option, ...] = ACTIVE_INACTIVE_STATE,
            status: tuple[Option, ...] = ACTIVE_INACTIVE_STATUS) -> list[Attribute]:
    attrs = [
        _readonly("createdon", "DateTime", "Created On"),
        _readonly("modifiedon", "DateTime", "Modified On"),
        _readonly("versionnumber", "BigInt", "Version Number"),
        _readonly("createdby", "Lookup", "Created By", targets=("systemuser",)),
        _readonly("modifiedby", "Lookup", "Modified By", targets=("systemuser",)),
    ]
    if owned:
        attrs.append(Attribute("ownerid", "Owner", "Owner", required="SystemRequired",
                               targets=("systemuser", "team")))
    if state:
        attrs.append(Attribute("statecode", "State", "Status", required="SystemRequired", options=state))
        attrs.append(Attribute("statuscode", "Status", "Status Reason", options=status))
    return attrs


def _merge_columns(entity: str) -> list[Attribute]:
    """Set by the `Merge` action on the row merged away: `merged` and its `masterid` (the survivor)."""
    return [
        _readonly("merged", "Boolean", "Merged"),
        _readonly("masterid", "Lookup", "Master ID", targets=(entity,)),
    ]


def _gd_person_columns() -> list[Attribute]:
    return [
        S("gd_linkedinurl", 200, display="LinkedIn URL", custom=True, fmt="Url"),
        S("gd_genesyexternalid", 100, display="Genesy External Id", custom=True),
        S("gd_campaign_sequence", 400, display="Campaign Sequence", custom=True),
        S("gd_campaign_status", 200, display="Campaign Status", custom=True),
        S("gd_campaign_opens", 100, display="Campaign Opens", custom=True),
        S("gd_campaign_clicks", 100, display="Campaign Clicks", custom=True),
        M("gd_campaign_open_analysis", 100000, display="Campaign Open Analysis", custom=True),
        M("gd_campaign_click_analysis", 100000, display="Campaign Click Analysis", custom=True),
        M("gd_campaign_reply_analysis", 100000, display="Campaign Reply Analysis", custom=True),
    ]


def _entity(logical: str, entity_set: str, pk: str, name: str, otc: int, display: str,
            attrs: list[Attribute], navs: list[Nav], *, collections: list[CollectionNav] | None = None,
            keys: tuple[tuple[str, ...], ...] = (), activity: bool = False,
            ownership: str = "UserOwned") -> Entity:
    pk_attr = Attribute(pk, "Uniqueidentifier", display, valid_for_update=False, is_primary_id=True)
    all_attrs = [pk_attr, *attrs]
    by_name: dict[str, Attribute] = {}
    for a in all_attrs:
        if a.logical_name == name:
            a = dataclasses.replace(a, is_primary_name=True)
        by_name[a.logical_name] = a
    nav_map = {n.name: n for n in navs}
    for a in all_attrs:
        if a.type == "Owner":
            nav_map.setdefault("ownerid", Nav("ownerid", "ownerid", a.targets))
        if a.logical_name in ("createdby", "modifiedby"):
            nav_map.setdefault(a.logical_name, Nav(a.logical_name, a.logical_name, a.targets))
    return Entity(logical, entity_set, pk, name, otc, display, by_name, nav_map,
                  {c.name: c for c in collections or []}, keys, activity, ownership)


def _person_common() -> list[Attribute]:
    return [
        S("firstname", 50, display="First Name"),
        S("lastname", 50, "ApplicationRequired", "Last Name"),
        _readonly("fullname", "String", "Full Name", max_length=160),
        S("emailaddress1", 100, display="Email", fmt="Email"),
        S("emailaddress2", 100, display="Email Address 2", fmt="Email"),
        S("jobtitle", 100, display="Job Title"),
        S("telephone1", 50, display="Business Phone", fmt="Phone"),
        S("mobilephone", 50, display="Mobile Phone", fmt="Phone"),
        S("websiteurl", 200, display="Website", fmt="Url"),
        S("address1_city", 80, display="City"),
        S("address1_country", 80, display="Country/Region"),
        M("description", 2000, "Description"),
        Attribute("leadsourcecode", "Picklist", "Lead Source", options=LEAD_SOURCE),
        Attribute("donotemail", "Boolean", "Do not allow Emails"),
    ]


ACCOUNT = _entity(
    "account", "accounts", "accountid", "name", 1, "Account",
    [
        S("name", 160, "ApplicationRequired", "Account Name"),
        S("accountnumber", 20, display="Account Number"),
        S("websiteurl", 200, display="Website", fmt="Url"),
        S("telephone1", 50, display="Main Phone", fmt="Phone"),
        S("emailaddress1", 100, display="Email", fmt="Email"),
        S("address1_city", 80, display="City"),
        S("address1_country", 80, display="Country/Region"),
        Attribute("numberofemployees", "Integer", "Number of Employees", min_value=0, max_value=1_000_000_000),
        Attribute("industrycode", "Picklist", "Industry", options=INDUSTRY),
        Attribute("revenue", "Money", "Annual Revenue", min_value=0, max_value=100_000_000_000_000),
        M("description", 2000, "Description"),
        Attribute("parentaccountid", "Lookup", "Parent Account", targets=("account",)),
        Attribute("primarycontactid", "Lookup", "Primary Contact", targets=("contact",)),
        S("gd_domain", 200, display="Domain", custom=True),
        S("gd_linkedinurl", 200, display="LinkedIn URL", custom=True, fmt="Url"),
        S("gd_genesyexternalid", 100, display="Genesy External Id", custom=True),
        *_merge_columns("account"),
        *_common(),
    ],
    [Nav("parentaccountid", "parentaccountid", ("account",)),
     Nav("primarycontactid", "primarycontactid", ("contact",)), Nav("masterid", "masterid", ("account",))],
    keys=(("gd_genesyexternalid",),),
)

CONTACT = _entity(
    "contact", "contacts", "contactid", "fullname", 2, "Contact",
    [
        *_person_common(),
        Attribute("birthdate", "DateTime", "Birthday", date_only=True),
        Attribute("parentcustomerid", "Customer", "Company Name", targets=("account", "contact")),
        *_gd_person_columns(),
        *_merge_columns("contact"),
        *_common(),
    ],
    [Nav("parentcustomerid_account", "parentcustomerid", ("account",)),
     Nav("parentcustomerid_contact", "parentcustomerid", ("contact",)), Nav("masterid", "masterid", ("contact",))],
    keys=(("gd_genesyexternalid",),),
)

LEAD = _entity(
    "lead", "leads", "leadid", "fullname", 4, "Lead",
    [
        S("subject", 300, "Recommended", "Topic"),
        S("companyname", 100, display="Company Name"),
        *_person_common(),
        Attribute("parentaccountid", "Lookup", "Parent Account for lead", targets=("account",)),
        Attribute("parentcontactid", "Lookup", "Parent Contact for lead", targets=("contact",)),
        *_gd_person_columns(),
        *_merge_columns("lead"),
        *_common(
            state=_opts((0, "Open"), (1, "Qualified"), (2, "Disqualified")),
            status=_status((1, "New", 0), (2, "Contacted", 0), (3, "Qualified", 1), (4, "Lost", 2),
                           (5, "Cannot Contact", 2), (6, "No Longer Interested", 2), (7, "Canceled", 2)),
        ),
    ],
    [Nav("parentaccountid", "parentaccountid", ("account",)),
     Nav("parentcontactid", "parentcontactid", ("contact",)), Nav("masterid", "masterid", ("lead",))],
    keys=(("gd_genesyexternalid",),),
)

SYSTEMUSER = _entity(
    "systemuser", "systemusers", "systemuserid", "fullname", 8, "User",
    [
        S("firstname", 64, display="First Name"),
        S("lastname", 64, display="Last Name"),
        S("fullname", 200, display="Full Name"),
        S("internalemailaddress", 100, "SystemRequired", "Primary Email", fmt="Email"),
        S("domainname", 1024, display="User Name"),
        Attribute("isdisabled", "Boolean", "Status"),
        Attribute("accessmode", "Picklist", "Access Mode", options=_opts(
            (0, "Read-Write"), (1, "Administrative"), (2, "Read"), (3, "Support User"),
            (4, "Non-interactive"), (5, "Delegated Admin"))),
        Attribute("azureactivedirectoryobjectid", "Uniqueidentifier", "Azure AD Object ID"),
        Attribute("applicationid", "Uniqueidentifier", "Application ID"),
        *_common(owned=False, state=()),
    ],
    [],
    keys=(("azureactivedirectoryobjectid",),),
    ownership="BusinessOwned",
)

TEAM = _entity(
    "team", "teams", "teamid", "name", 9, "Team",
    [
        S("name", 160, "SystemRequired", "Team Name"),
        Attribute("teamtype", "Picklist", "Team Type", options=_opts(
            (0, "Owner"), (1, "Access"), (2, "Security Group"), (3, "Office Group"))),
        Attribute("isdefault", "Boolean", "Is Default"),
        *_common(owned=False, state=()),
    ],
    [],
    ownership="BusinessOwned",
)

_REGARDING = ("account", "contact", "lead")

TASK = _entity(
    "task", "tasks", "activityid", "subject", 4212, "Task",
    [
        S("subject", 200, "SystemRequired", "Subject"),
        M("description", 2000, "Description"),
        Attribute("scheduledend", "DateTime", "Due"),
        Attribute("actualend", "DateTime", "Actual End"),
        Attribute("prioritycode", "Picklist", "Priority", options=_opts((0, "Low"), (1, "Normal"), (2, "High"))),
        Attribute("regardingobjectid", "Lookup", "Regarding", targets=_REGARDING),
        _readonly("activitytypecode", "EntityName", "Activity Type"),
        S("gd_genesyexternalid", 100, display="Genesy External Id", custom=True),
        *_common(state=ACTIVITY_STATE, status=_status(
            (2, "Not Started", 0), (3, "In Progress", 0), (4, "Waiting on someone else", 0),
            (7, "Deferred", 0), (5, "Completed", 1), (6, "Canceled", 2))),
    ],
    [Nav(f"regardingobjectid_{t}_task", "regardingobjectid", (t,)) for t in _REGARDING],
    keys=(("gd_genesyexternalid",),),
    activity=True,
)

EMAIL = _entity(
    "email", "emails", "activityid", "subject", 4202, "Email",
    [
        S("subject", 800, "Recommended", "Subject"),
        M("description", 1048576, "Description"),
        Attribute("directioncode", "Boolean", "Direction"),
        Attribute("actualend", "DateTime", "Actual End"),
        Attribute("scheduledend", "DateTime", "Due Date"),
        S("sender", 250, display="From"),
        S("torecipients", 500, display="To Recipients"),
        Attribute("regardingobjectid", "Lookup", "Regarding", targets=_REGARDING),
        _readonly("activitytypecode", "EntityName", "Activity Type"),
        S("gd_genesyexternalid", 100, display="Genesy External Id", custom=True),
        *_common(state=ACTIVITY_STATE, status=_status(
            (1, "Draft", 0), (8, "Failed", 0), (2, "Completed", 1), (3, "Sent", 1), (4, "Received", 1),
            (6, "Pending Send", 1), (7, "Sending", 1), (5, "Canceled", 2))),
    ],
    [Nav(f"regardingobjectid_{t}_email", "regardingobjectid", (t,)) for t in _REGARDING],
    collections=[CollectionNav("email_activity_parties", "activityparty", "activityid")],
    keys=(("gd_genesyexternalid",),),
    activity=True,
)

_PARTY_TARGETS = ("systemuser", "contact", "account", "lead")

ACTIVITYPARTY = _entity(
    "activityparty", "activityparties", "activitypartyid", "partyid", 135, "Activity Party",
    [
        Attribute("activityid", "Lookup", "Activity", targets=("email", "task")),
        Attribute("partyid", "Lookup", "Party", targets=_PARTY_TARGETS),
        Attribute("participationtypemask", "Picklist", "Participation Type", required="SystemRequired",
                  options=_opts((1, "Sender"), (2, "To Recipient"), (3, "CC Recipient"), (4, "BCC Recipient"),
                                (5, "Required attendee"), (6, "Optional attendee"), (7, "Organizer"),
                                (8, "Regarding"), (9, "Owner"))),
        S("addressused", 200, display="Address"),
    ],
    [*(Nav(f"partyid_{t}", "partyid", (t,)) for t in _PARTY_TARGETS),
     Nav("activityid_email", "activityid", ("email",)), Nav("activityid_task", "activityid", ("task",))],
    ownership="None",
)

ENTITIES: dict[str, Entity] = {
    e.logical_name: e for e in (ACCOUNT, CONTACT, LEAD, SYSTEMUSER, TEAM, TASK, EMAIL, ACTIVITYPARTY)
}
ENTITY_SETS: dict[str, Entity] = {e.entity_set: e for e in ENTITIES.values()}


def entity_by_set(entity_set: str) -> Entity | None:
    return ENTITY_SETS.get(entity_set)
