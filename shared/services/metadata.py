"""Live Dynamics metadata for the admin's mapping editors, the environment's users, and a connection test.

Columns come from the Dataverse client's metadata cache (`DataverseClient.entity_metadata`, kept
for its TTL); display names ride along when the client's metadata read carries them, and are read once
more from the `Attributes` collection when it does not. Users come from the users cache owner
resolution shares.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.dataverse.metadata import DISPLAY_NAME_SELECT, display_names, with_display_names
from shared.domain.entities import COMPANY
from shared.domain.metadata import ColumnMetadata, EntityMetadata
from shared.domain.odata import odata_literal
from shared.platform.errors import NotFound, UpstreamUnavailable, safe_text
from shared.services.root import Services, WorkspaceContext

__all__ = [
    "TABLES",
    "ChoiceOption",
    "ColumnInfo",
    "ConnectionTestReply",
    "TableAccess",
    "TableMetadataReply",
    "UserInfo",
    "UsersReply",
    "WhoAmIInfo",
    "connection_test",
    "table_metadata",
    "workspace_users",
]

TABLES: tuple[str, ...] = ("contact", "lead", "account")

_WRITE_NOT_CHECKED = "read ok; write is checked at the first export (Dynamics grants it per record and role)"


class ChoiceOption(BaseModel):
    value: int
    label: str


class ColumnInfo(BaseModel):
    """One column as a mapping editor shows it."""

    logical_name: str = Field(description="The name mappings use, e.g. `emailaddress1`.")
    display_name: str | None = Field(description="The label Dynamics shows, e.g. `Email`.")
    type: str = Field(description="Dataverse attribute type: String, Memo, Integer, Picklist, Boolean, ...")
    max_length: int | None = Field(description="Characters a text column holds.")
    required_level: str | None = Field(description="None, Recommended, ApplicationRequired or SystemRequired.")
    required: bool = Field(description="ApplicationRequired or SystemRequired.")
    options: list[ChoiceOption] = Field(description="Choice and Yes/No columns: each value with its label.")
    writable_on_create: bool
    writable_on_update: bool


class TableMetadataReply(BaseModel):
    """`GET manage/workspaces/{id}/metadata/{table}`."""

    table: Literal["contact", "lead", "account"]
    entity_set_name: str
    primary_id: str
    primary_name: str | None
    columns: list[ColumnInfo] = Field(description="Sorted by logical name.")


class UserInfo(BaseModel):
    id: str = Field(description="The `systemuserid` mappings use.")
    name: str
    email: str | None


class UsersReply(BaseModel):
    """`GET manage/workspaces/{id}/users`: enabled, interactive users, sorted by name."""

    users: list[UserInfo]


class WhoAmIInfo(BaseModel):
    user_id: str = Field(description="The application user the app acts as.")
    business_unit_id: str | None
    organization_id: str | None


class TableAccess(BaseModel):
    table: str
    entity_set_name: str
    used_for: str
    read: Literal["ok", "failed", "not_checked"]
    write: Literal["not_checked", "not_needed"]
    message: str


class ConnectionTestReply(BaseModel):
    """`POST manage/workspaces/{id}/connection-test`."""

    ok: bool = Field(description="WhoAmI answered and every table could be read.")
    environment_url: str
    whoami: WhoAmIInfo | None
    error: str | None = Field(description="Why WhoAmI failed, when it did.")
    tables: list[TableAccess]


def _budget(ctx: WorkspaceContext) -> Budget:
    return Budget(ctx.settings.match_timeout_seconds * 3)


def _unavailable(exc: DataverseError) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"Dynamics did not answer: {exc.code or type(exc).__name__}")


# -- columns -------------------------------------------------------------------------------------


def _column_info(column: ColumnMetadata) -> ColumnInfo:
    choices = column.choices or tuple((value, label) for label, value in sorted(column.options.items()))
    return ColumnInfo(
        logical_name=column.logical_name,
        display_name=column.display_name,
        type=column.type,
        max_length=column.max_length,
        required_level=column.required_level,
        required=column.required,
        options=[ChoiceOption(value=value, label=label) for value, label in choices],
        writable_on_create=column.valid_for_create,
        writable_on_update=column.valid_for_update,
    )


def _with_display_names(ctx: WorkspaceContext, metadata: EntityMetadata, budget: Budget) -> EntityMetadata:
    """The metadata with display names, read from the `Attributes` collection if the cached copy lacks them."""
    if any(column.display_name for column in metadata.columns.values()):
        return metadata
    path = f"EntityDefinitions(LogicalName={odata_literal(metadata.logical_name)})/Attributes"
    rows = ctx.client.query(path, select=DISPLAY_NAME_SELECT, budget=budget)
    return with_display_names(metadata, display_names(rows))


def table_metadata(services: Services, workspace_id: str, table: str, *, refresh: bool = False) -> TableMetadataReply:
    """The columns of contact, lead or account in the workspace's environment (404 for another table)."""
    if table not in TABLES:
        raise NotFound(f"table: '{safe_text(table, 64)}' is not one of {', '.join(TABLES)}", code="unknown_table")
    ctx = services.workspace(workspace_id)
    budget = _budget(ctx)
    try:
        metadata = ctx.client.entity_metadata(table, refresh=refresh, budget=budget)
        metadata = _with_display_names(ctx, metadata, budget)
    except DataverseError as exc:
        raise _unavailable(exc) from None
    columns = [_column_info(metadata.columns[name]) for name in sorted(metadata.columns)]
    return TableMetadataReply.model_validate(
        {
            "table": table,
            "entity_set_name": metadata.entity_set_name,
            "primary_id": metadata.primary_id,
            "primary_name": metadata.primary_name,
            "columns": columns,
        }
    )


# -- users ---------------------------------------------------------------------------------------


def workspace_users(services: Services, workspace_id: str) -> UsersReply:
    """Enabled, interactive users of the environment with their e-mail (from the users cache)."""
    ctx = services.workspace(workspace_id)
    budget = _budget(ctx)
    try:
        users = ctx.services.users.get(ctx.workspace.environment_url, lambda: ctx.client.enabled_users(budget=budget))
    except DataverseError as exc:
        raise _unavailable(exc) from None
    ordered = sorted(users, key=lambda u: (u.name.casefold(), u.id))
    return UsersReply(users=[UserInfo(id=u.id.lower(), name=u.name, email=u.email) for u in ordered])


# -- connection test -----------------------------------------------------------------------------


def _tables_used(ctx: WorkspaceContext) -> list[tuple[str, str, str, str, bool]]:
    """(table, entity set, primary id, what the app uses it for, whether the app writes it)."""
    contact = ctx.contact
    return [
        (contact.logical_name, contact.entity_set, contact.primary_id, "Genesy contacts (match, create, update)", True),
        (
            COMPANY.logical_name,
            COMPANY.entity_set,
            COMPANY.primary_id,
            "Genesy companies (match, create, update)",
            True,
        ),
        ("systemuser", "systemusers", "systemuserid", "owners, activity senders and GET /users", False),
        ("task", "tasks", "activityid", "POST /tasks", True),
        ("email", "emails", "activityid", "POST /activities", True),
    ]


def _access(ctx: WorkspaceContext, used: tuple[str, str, str, str, bool], budget: Budget) -> TableAccess:
    """Whether the application user can read the table (one `$top=1` GET); writes are not tried."""
    table, entity_set, primary_id, used_for, writes = used
    write: Literal["not_checked", "not_needed"] = "not_checked" if writes else "not_needed"
    try:
        ctx.client.query(entity_set, select=[primary_id], top=1, budget=budget)
    except DataverseError as exc:
        detail = safe_text(exc.message, 300)
        return TableAccess(
            table=table,
            entity_set_name=entity_set,
            used_for=used_for,
            read="failed",
            write=write,
            message=f"cannot read {entity_set}: {detail} ({exc.code or type(exc).__name__})",
        )
    message = _WRITE_NOT_CHECKED if writes else "read ok (the app only reads this table)"
    return TableAccess(
        table=table, entity_set_name=entity_set, used_for=used_for, read="ok", write=write, message=message
    )


def connection_test(services: Services, workspace_id: str) -> ConnectionTestReply:
    """WhoAmI, then a one-row read of every table the app uses. Writes are never tried: the reply says
    they are checked at the first export."""
    ctx = services.workspace(workspace_id)
    budget = _budget(ctx)
    used = _tables_used(ctx)
    try:
        who = ctx.client.whoami(budget=budget)
    except DataverseError as exc:
        reason = f"WhoAmI failed: {safe_text(exc.message, 300)} ({exc.code or type(exc).__name__})"
        skipped = [
            TableAccess(
                table=table,
                entity_set_name=entity_set,
                used_for=used_for,
                read="not_checked",
                write="not_checked" if writes else "not_needed",
                message="not checked: WhoAmI failed",
            )
            for table, entity_set, _, used_for, writes in used
        ]
        return ConnectionTestReply(
            ok=False, environment_url=ctx.client.environment_url, whoami=None, error=reason, tables=skipped
        )
    whoami = WhoAmIInfo(
        user_id=str(who.get("UserId") or ""),
        business_unit_id=who.get("BusinessUnitId"),
        organization_id=who.get("OrganizationId"),
    )
    tables = [_access(ctx, item, budget) for item in used]
    ok = all(t.read == "ok" for t in tables)
    return ConnectionTestReply(
        ok=ok, environment_url=ctx.client.environment_url, whoami=whoami, error=None, tables=tables
    )
