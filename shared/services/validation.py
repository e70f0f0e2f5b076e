"""Mapping sections checked against the environment's live Dynamics metadata and against each other.

A section an admin saves is checked together with the workspace's other stored sections, and every
problem comes back at once, each `{section, path, severity, message, fix}`:

- `error` blocks the save (422 `invalid_mapping`): a column the table does not have, a column nothing
  can write, a constant (fixed or engagement value, export-field option or default) the column cannot
  take or that is longer than it, a campaign value mapped to a column that holds no text, one column
  written by both the export and the campaign mapping, a Dynamics user id that names nobody;
- `warning` is saved and returned with the save: a constant changed on its way in (lossy), a campaign
  column short enough to cut its values, a required column nothing is mapped to, a column Dynamics only
  lets us set on create, a mapped user who is disabled.

When Dynamics cannot be reached the section is saved unchecked, with a warning saying so. The document's
shape (unknown keys, types, a column mapped twice in one table) is the model's business: 400, as before.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mapping_store.store import SECTIONS, VersionedSection, WorkspaceMappings, mapping_error_details
from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.mapping_engine import fit_value
from shared.domain.mappings import (
    SECTION_MODELS,
    CampaignMapping,
    CampaignValue,
    EntityExportMapping,
    ExportMapping,
    SyncMapping,
    UserMapping,
    WritePolicy,
)
from shared.domain.metadata import ColumnMetadata, EntityMetadata
from shared.platform.errors import AppError, BadRequest, PreconditionRequired, UpstreamUnavailable, safe_text
from shared.platform.logs import logger
from shared.services.root import Services, WorkspaceContext

__all__ = [
    "InvalidMappingReply",
    "LiveMetadata",
    "MappingProblem",
    "MappingRejected",
    "SavedSection",
    "SavedSectionReply",
    "ValidationReply",
    "check_mappings",
    "check_section",
    "load_live",
    "save_section",
    "validate_mappings",
]

log = logger("validation")

Severity = Literal["error", "warning"]

_TEXT_TYPES = frozenset({"String", "Memo"})
_WHOLE_NUMBER_TYPES = frozenset({"Integer", "BigInt"})
_LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
# Columns an export never supplies even when Dynamics requires them: owners (users mapping), parents
# (associations), status (Dynamics defaults it), ids.
_NOT_EXPORTED_TYPES = _LOOKUP_TYPES | {"State", "Status", "Uniqueidentifier", "EntityName", "Virtual"}
# Below these lengths a text column cuts a typical value of one campaign (several campaigns: one line each).
_CAMPAIGN_MIN_LENGTH = {
    CampaignValue.SEQUENCE: 100,
    CampaignValue.ENGAGEMENT_STATUS: 50,
    CampaignValue.OPENS: 20,
    CampaignValue.CLICKS: 20,
    CampaignValue.OPEN_ANALYSIS: 200,
    CampaignValue.CLICK_ANALYSIS: 300,
    CampaignValue.REPLY_ANALYSIS: 200,
}
_COUNTS = frozenset({CampaignValue.OPENS, CampaignValue.CLICKS})
# Where each built-in match mode takes its columns from (the path named in a problem).
_MATCH_COLUMN_FIELDS = {
    "contact": {
        "email": "email_column",
        "linkedinUrl": "linkedin_column",
        "firstName": "first_name_column",
        "lastName": "last_name_column",
        "company": "company_column",
    },
    "company": {"domain": "domain_column", "name": "name_column"},
}
_SHOWN_CHOICES = 25


# ---------------------------------------------------------------------------------------------
# Replies (the admin API's bodies; the OpenAPI document describes them from these models)


class MappingProblem(BaseModel):
    """One thing wrong with a mapping: where (section and path inside its document), how bad, how to fix it."""

    model_config = ConfigDict(frozen=True)

    section: Literal["sync", "export", "campaign", "users"]
    path: str = Field(description="Path inside the section's document, e.g. `contact.fixed[0].value`.")
    severity: Severity = Field(description="`error` blocks a save; `warning` is saved and reported.")
    message: str
    fix: str = Field(description="What to change so the problem goes away.")


class ValidationReply(BaseModel):
    """`POST manage/workspaces/{id}/validate`: the stored mappings checked against live Dynamics metadata."""

    valid: bool = Field(description="No errors (warnings may remain).")
    problems: list[MappingProblem]
    change_tracking: dict[str, bool | None] = Field(
        default_factory=dict,
        description="Per Dynamics table reconciliation follows (contact or lead, account): whether change tracking "
        "is on (merges and deletions followed) or off (merges by `modifiedon`, deletions not seen); null: unknown.",
    )


class InvalidMappingReply(BaseModel):
    """422 from `PUT manage/workspaces/{id}/mappings/{section}`: nothing was saved."""

    error: Literal["invalid_mapping"] = "invalid_mapping"
    message: str
    problems: list[MappingProblem] = Field(description="Every problem found, errors and warnings.")


class SavedSectionReply(BaseModel):
    """200 from `PUT manage/workspaces/{id}/mappings/{section}`: the section as stored, and its warnings."""

    section: Literal["sync", "export", "campaign", "users"]
    version: int
    etag: str
    updated_at: str | None
    updated_by: str | None
    document: dict[str, Any]
    warnings: list[MappingProblem] = Field(description="Saved anyway; empty when all is well.")


@dataclass(frozen=True)
class SavedSection:
    saved: VersionedSection
    warnings: list[MappingProblem]

    def reply(self) -> SavedSectionReply:
        return SavedSectionReply.model_validate({**self.saved.body(), "warnings": self.warnings})


class MappingRejected(AppError):
    """422: the section was not saved; `problems` lists every problem (errors and warnings)."""

    status = 422
    code = "invalid_mapping"

    def __init__(self, section: str, problems: Sequence[MappingProblem]) -> None:
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0] if errors else problems[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"the {section} mapping was not saved: {first.path}: {first.message}{more}")
        self.problems = list(problems)

    def body(self) -> dict[str, Any]:
        body = super().body()
        body.pop("details", None)
        body["problems"] = [p.model_dump() for p in self.problems]
        return body


# ---------------------------------------------------------------------------------------------
# What Dynamics says, loaded once per check


@dataclass(frozen=True)
class LiveMetadata:
    """The environment as the checks need it: `tables` by kind ("contact": the workspace's contact or lead
    table, "company": account), enabled user ids, and mapped ids of users who exist but are not enabled."""

    tables: Mapping[str, EntityMetadata] = field(default_factory=dict)
    enabled_users: frozenset[str] = frozenset()
    inactive_users: frozenset[str] = frozenset()


def _mapped_user_ids(users: UserMapping) -> set[str]:
    ids = {m.systemuser_id for m in users.identities} | {m.systemuser_id for m in users.users}
    return ids | ({users.default_owner_id} if users.default_owner_id else set())


def _load_users(ctx: WorkspaceContext, users: UserMapping, budget: Budget) -> tuple[frozenset[str], frozenset[str]]:
    """Enabled users (the cache `enabled_users` shares), and which other mapped ids exist at all."""
    environment = ctx.workspace.environment_url
    enabled = {
        u.id.lower() for u in ctx.services.users.get(environment, lambda: ctx.client.enabled_users(budget=budget))
    }
    unknown = sorted(_mapped_user_ids(users) - enabled)
    if not unknown:
        return frozenset(enabled), frozenset()
    rows = ctx.client.query_in(
        "systemusers", "systemuserid", unknown, select=["systemuserid"], key="systemuserid", budget=budget
    )
    return frozenset(enabled), frozenset(str(row["systemuserid"]).lower() for row in rows)


def load_live(
    ctx: WorkspaceContext, mappings: WorkspaceMappings, sections: Iterable[str], budget: Budget
) -> LiveMetadata:
    """What the checks of `sections` need from Dynamics (metadata from the client's cache); DataverseError
    when Dynamics cannot say."""
    wanted = set(sections)
    tables: dict[str, EntityMetadata] = {}
    if wanted & {"sync", "export", "campaign"}:
        tables = {
            "contact": ctx.client.entity_metadata(ctx.contact.logical_name, budget=budget),
            "company": ctx.client.entity_metadata("account", budget=budget),
        }
    enabled: frozenset[str] = frozenset()
    inactive: frozenset[str] = frozenset()
    if "users" in wanted:
        enabled, inactive = _load_users(ctx, mappings.users, budget)
    return LiveMetadata(tables, enabled, inactive)


# ---------------------------------------------------------------------------------------------
# The checks: pure, over the candidate mappings and what Dynamics said


def _shown(value: Any) -> str:
    return safe_text(repr(value), 80)


def _text_length(text: str) -> int:
    """Length as Dataverse counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class _Checker:
    workspace_id: str
    live: LiveMetadata
    problems: list[MappingProblem] = field(default_factory=list)

    def add(self, severity: Severity, section: str, path: str, message: str, fix: str) -> None:
        self.problems.append(
            MappingProblem.model_validate(
                {"section": section, "path": path, "severity": severity, "message": message, "fix": fix}
            )
        )

    def error(self, section: str, path: str, message: str, fix: str) -> None:
        self.add("error", section, path, message, fix)

    def warning(self, section: str, path: str, message: str, fix: str) -> None:
        self.add("warning", section, path, message, fix)

    def columns_route(self, table: EntityMetadata) -> str:
        return f"GET /api/manage/workspaces/{self.workspace_id}/metadata/{table.logical_name}"

    def users_route(self) -> str:
        return f"GET /api/manage/workspaces/{self.workspace_id}/users"

    def unknown_column(self, section: str, path: str, table: EntityMetadata, column: str) -> None:
        close = difflib.get_close_matches(column, list(table.columns), n=3, cutoff=0.75)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        self.error(
            section,
            path,
            f"{table.logical_name} has no column '{column}'",
            f"{hint}Use a column's logical name from {self.columns_route(table)}, or create the column in Dynamics.",
        )


# -- sync ----------------------------------------------------------------------------------------


def _lookup_of(table: EntityMetadata, navigation: str) -> ColumnMetadata | None:
    """The lookup column behind a navigation name: `parentaccountid`, or `parentcustomerid_account`."""
    column = table.columns.get(navigation)
    if column is None and "_" in navigation:
        column = table.columns.get(navigation.rsplit("_", 1)[0])
    return column if column is not None and column.type in _LOOKUP_TYPES else None


def _match_column(chk: _Checker, kind: str, path: str, column: str) -> None:
    """A match column: a column of the table, `_x_value`, or a lookup path like `parentcustomerid_account/name`."""
    table = chk.live.tables[kind]
    if "/" not in column:
        name = column[1:-6] if column.startswith("_") and column.endswith("_value") else column
        if name not in table.columns:
            chk.unknown_column("sync", path, table, name)
        return
    navigation, target_column = column.split("/", 1)
    if _lookup_of(table, navigation) is None:
        chk.error(
            "sync",
            path,
            f"{table.logical_name} has no lookup '{navigation}'",
            "Name a lookup column (with its target table for a customer lookup, e.g. `parentcustomerid_account`) "
            f"and a column of that table; see {chk.columns_route(table)}.",
        )
        return
    account = chk.live.tables["company"]
    if navigation.endswith("_account") and target_column not in account.columns:
        chk.unknown_column("sync", path, account, target_column)


def _sync_problems(chk: _Checker, sync: SyncMapping) -> None:
    for kind, matching in (("contact", sync.contact), ("company", sync.company)):
        custom = matching.mode.value == "custom"
        seen: set[str] = set()
        for r, rule in enumerate(matching.effective_rules()):
            for c, condition in enumerate(rule.all_of):
                attribute = _MATCH_COLUMN_FIELDS[kind].get(condition.field, "rules")
                path = f"{kind}.rules[{r}].all_of[{c}].column" if custom else f"{kind}.{attribute}"
                if path not in seen:
                    seen.add(path)
                    _match_column(chk, kind, path, condition.column)
    for kind, sync_back in (("contact", sync.contact_sync_back), ("company", sync.company_sync_back)):
        table = chk.live.tables[kind]
        for name, column in sync_back.items():
            if column not in table.columns:
                chk.unknown_column("sync", f"{kind}_sync_back.{name}", table, column)


# -- export --------------------------------------------------------------------------------------


def _groups(entity: EntityExportMapping) -> list[tuple[str, Sequence[Any]]]:
    return [
        ("fields", entity.fields),
        ("fixed", entity.fixed),
        ("export_fields", entity.export_fields),
        ("engagement", entity.engagement),
    ]


def _constants(group: str, item: Any) -> list[tuple[str, Any]]:
    """(path suffix, value) of every constant an export entry carries."""
    if group in ("fixed", "engagement"):
        return [("value", item.value)]
    if group != "export_fields":
        return []
    constants: list[tuple[str, Any]] = [(f"options[{i}]", option) for i, option in enumerate(item.options)]
    if item.default is not None and not item.options:
        constants.append(("default", item.default))
    return constants


def _type_fix(column: ColumnMetadata) -> str:
    """How a value for this column should look."""
    labels = [label for _, label in column.choices] or sorted(column.options)
    if column.type == "Boolean":
        return f"Use true or false, or one of the column's labels: {', '.join(labels) or 'Yes, No'}."
    if labels:
        more = f" (and {len(labels) - _SHOWN_CHOICES} more)" if len(labels) > _SHOWN_CHOICES else ""
        return f"Use one of the column's labels: {', '.join(labels[:_SHOWN_CHOICES])}{more}."
    if column.type == "DateTime":
        return "Use a date such as 2024-01-31 (or a date and time in ISO 8601)."
    if column.type in _WHOLE_NUMBER_TYPES:
        return "Use a whole number."
    if column.type in ("Decimal", "Double", "Money"):
        return "Use a number."
    return f"Use a value a {column.type} column takes, or map another column."


def _constant(chk: _Checker, path: str, column: ColumnMetadata, value: Any) -> None:
    """A constant of the export mapping: convertible, within the column's length, and not changed on the way."""
    try:
        fitted = fit_value(value, column)
    except ValueError as exc:
        message = f"{_shown(value)} cannot be written to '{column.logical_name}' ({column.type}): {exc}"
        chk.error("export", path, safe_text(message, 400), _type_fix(column))
        return
    if column.type in _TEXT_TYPES and column.max_length and isinstance(value, str):
        length = _text_length(value)
        if length > column.max_length:
            chk.error(
                "export",
                path,
                f"{length} characters do not fit in '{column.logical_name}', which holds {column.max_length}",
                f"Shorten the value to {column.max_length} characters or fewer, or map a longer column.",
            )
            return
    for note in fitted.notes:
        chk.warning(
            "export",
            path,
            f"{_shown(value)} is changed on its way into '{column.logical_name}': {note}",
            f"Write the value as Dynamics will store it: {_shown(fitted.value)}.",
        )


def _writable(chk: _Checker, path: str, column: ColumnMetadata, policy: WritePolicy) -> bool:
    """Whether the export can write this column under `policy`; a problem is recorded when it cannot."""
    name = column.logical_name
    if column.type in _LOOKUP_TYPES:
        chk.error(
            "export",
            f"{path}.column",
            f"'{name}' is a lookup ({column.type}); the export mapping cannot write it",
            "Remove the entry: owners come from the users mapping, parent accounts from /associations.",
        )
        return False
    if not (column.valid_for_create or column.valid_for_update):
        chk.error(
            "export",
            f"{path}.column",
            f"Dynamics does not let anyone write '{name}' (it is calculated)",
            "Remove the entry or map another column.",
        )
        return False
    if policy is WritePolicy.ON_CREATE and not column.valid_for_create:
        chk.error(
            "export",
            f"{path}.policy",
            f"'{name}' cannot be set when a record is created, and the policy is on_create: it is never written",
            "Use the policy overwrite or if_empty.",
        )
        return False
    if policy is not WritePolicy.ON_CREATE and not column.valid_for_update:
        chk.warning(
            "export",
            f"{path}.policy",
            f"Dynamics only lets '{name}' be set when a record is created: updates leave it as it is",
            "Use the policy on_create to say so.",
        )
    return True


def _required_unmapped(chk: _Checker, kind: str, entity: EntityExportMapping) -> None:
    table = chk.live.tables[kind]
    mapped = {m.column for group in (entity.fields, entity.fixed, entity.export_fields) for m in group}
    for name in sorted(table.columns):
        column = table.columns[name]
        if (
            column.required
            and column.valid_for_create
            and column.type not in _NOT_EXPORTED_TYPES
            and name not in mapped
            and name != table.primary_id
        ):
            shown = f"'{name}' ({column.display_name})" if column.display_name else f"'{name}'"
            chk.warning(
                "export",
                f"{kind}.fields",
                f"{shown} is required by Dynamics and nothing is mapped to it: new records are created without it",
                f"Map a Genesy field to '{name}', or give it a fixed value.",
            )


def _export_problems(chk: _Checker, export: ExportMapping) -> None:
    for kind, entity in (("contact", export.contact), ("company", export.company)):
        table = chk.live.tables[kind]
        for group, items in _groups(entity):
            for index, item in enumerate(items):
                path = f"{kind}.{group}[{index}]"
                column = table.columns.get(item.column)
                if column is None:
                    chk.unknown_column("export", f"{path}.column", table, item.column)
                    continue
                if not _writable(chk, path, column, item.policy):
                    continue
                for where, value in _constants(group, item):
                    _constant(chk, f"{path}.{where}", column, value)
        _required_unmapped(chk, kind, entity)


# -- campaign ------------------------------------------------------------------------------------


def _campaign_column(chk: _Checker, value: CampaignValue, path: str, column: ColumnMetadata) -> None:
    name = column.logical_name
    counts = value in _COUNTS and column.type in _WHOLE_NUMBER_TYPES
    if column.type not in _TEXT_TYPES and not counts:
        whole = " (or, for opens and clicks, a whole-number column)" if value in _COUNTS else ""
        chk.error(
            "campaign",
            path,
            f"'{name}' is a {column.type} column; campaign values are written as text",
            f"Map a text column (single or multiple lines of text){whole}.",
        )
        return
    if not column.valid_for_update:
        chk.error(
            "campaign",
            path,
            f"Dynamics does not let '{name}' be updated; campaign values are written by updates",
            "Map a column that can be updated.",
        )
        return
    minimum = _CAMPAIGN_MIN_LENGTH[value]
    if column.type in _TEXT_TYPES and column.max_length and column.max_length < minimum:
        chk.warning(
            "campaign",
            path,
            f"'{name}' holds {column.max_length} characters; {value.value} values are often longer "
            "(one line per campaign) and will be cut",
            f"Map a text column of at least {minimum} characters (multiple lines of text for the analyses).",
        )


def _campaign_problems(chk: _Checker, campaign: CampaignMapping) -> None:
    """Each mapped campaign value (nothing is written, so nothing is checked, while the mapping is disabled)."""
    if not campaign.enabled:
        return
    table = chk.live.tables["contact"]
    for value, name in campaign.columns.items():
        path = f"columns.{value.value}"
        column = table.columns.get(name)
        if column is None:
            chk.unknown_column("campaign", path, table, name)
        else:
            _campaign_column(chk, value, path, column)


def _conflicts(chk: _Checker, export: ExportMapping, campaign: CampaignMapping, focus: str) -> None:
    """A contact column written both by the export and by the campaign mapping, reported on `focus`'s side."""
    if not campaign.enabled:
        return
    exported = {
        item.column: f"contact.{group}[{index}]"
        for group, items in _groups(export.contact)
        for index, item in enumerate(items)
    }
    fix = "Map one of them to another column: a column written by both holds whichever wrote last."
    for value, column in campaign.columns.items():
        where = exported.get(column)
        if where is None:
            continue
        if focus == "export":
            message = f"'{column}' is also written by the campaign mapping (columns.{value.value})"
            chk.error("export", f"{where}.column", message, fix)
        else:
            message = f"'{column}' is also written by the export mapping ({where})"
            chk.error("campaign", f"columns.{value.value}", message, fix)


# -- users ---------------------------------------------------------------------------------------


def _user_problems(chk: _Checker, users: UserMapping) -> None:
    entries = [
        *((f"identities[{i}].systemuser_id", m.systemuser_id) for i, m in enumerate(users.identities)),
        *((f"users[{i}].systemuser_id", m.systemuser_id) for i, m in enumerate(users.users)),
        *([("default_owner_id", users.default_owner_id)] if users.default_owner_id else []),
    ]
    fix = f"Pick an enabled user from {chk.users_route()}."
    for path, user_id in entries:
        if user_id in chk.live.enabled_users:
            continue
        if user_id in chk.live.inactive_users:
            message = f"Dynamics user {user_id} is disabled or not an interactive user: the next owner rule applies"
            chk.warning("users", path, message, fix)
        else:
            chk.error("users", path, f"no Dynamics user has the id {user_id}", fix)


# ---------------------------------------------------------------------------------------------
# Use cases


def check_mappings(
    workspace_id: str, mappings: WorkspaceMappings, sections: Sequence[str], live: LiveMetadata
) -> list[MappingProblem]:
    """Every problem of `sections` of `mappings` (pure). Conflicts between the export and the campaign
    mapping are reported on the export's side when only it is checked, else on the campaign's."""
    chk = _Checker(workspace_id, live)
    if "sync" in sections:
        _sync_problems(chk, mappings.sync)
    if "export" in sections:
        _export_problems(chk, mappings.export)
    if "campaign" in sections:
        _campaign_problems(chk, mappings.campaign)
    if "users" in sections:
        _user_problems(chk, mappings.users)
    if "campaign" in sections or "export" in sections:
        _conflicts(chk, mappings.export, mappings.campaign, "campaign" if "campaign" in sections else "export")
    return chk.problems


def _budget(ctx: WorkspaceContext) -> Budget:
    return Budget(ctx.settings.match_timeout_seconds * 3)


def check_section(ctx: WorkspaceContext, section: str, document: BaseModel) -> list[MappingProblem]:
    """A candidate document for `section` checked with the workspace's other stored sections. DataverseError
    when Dynamics cannot be reached."""
    candidate: dict[str, Any] = {section: document}
    mappings = dataclasses.replace(ctx.mappings, **candidate)
    live = load_live(ctx, mappings, [section], _budget(ctx))
    return check_mappings(ctx.workspace.id, mappings, [section], live)


def validate_mappings(services: Services, workspace_id: str) -> ValidationReply:
    """The stored mappings, all four sections, checked against live metadata (503 when Dynamics is down)."""
    ctx = services.workspace(workspace_id)
    try:
        live = load_live(ctx, ctx.mappings, SECTIONS, _budget(ctx))
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    problems = check_mappings(workspace_id, ctx.mappings, SECTIONS, live)
    tracking = {table.logical_name: table.change_tracking for table in live.tables.values()}
    problems += [_tracking_off(name) for name, on in tracking.items() if on is False]
    return ValidationReply(
        valid=not any(p.severity == "error" for p in problems), problems=problems, change_tracking=tracking
    )


def _tracking_off(table: str) -> MappingProblem:
    return MappingProblem(
        section="sync",
        path="",
        severity="warning",
        message=f"change tracking is off for {table}: reconciliation finds merges by modifiedon and cannot see "
        "records deleted in Dynamics (a missing record is reported, never written again)",
        fix=f"Turn on 'Track changes' in the {table} table's properties (Power Apps → Tables → {table} → "
        "Properties → Advanced options).",
    )


def _model(section: str, document: Any) -> BaseModel:
    """The section's model for a document; 400 `invalid_mapping` naming each path, as the store answers."""
    if not isinstance(document, dict):
        raise BadRequest(
            f"invalid {section} mapping: body: must be a JSON object",
            details=[{"field": "body", "message": "must be a JSON object"}],
            code="invalid_mapping",
        )
    try:
        return SECTION_MODELS[section].model_validate(document)
    except ValidationError as exc:
        details = mapping_error_details(exc)
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        message = f"invalid {section} mapping: {details[0]['field']}: {details[0]['message']}{more}"
        raise BadRequest(message, details=details, code="invalid_mapping") from None


def _not_checked(workspace_id: str, section: str, exc: DataverseError) -> MappingProblem:
    reason = exc.code or type(exc).__name__
    return MappingProblem.model_validate(
        {
            "section": section,
            "path": "",
            "severity": "warning",
            "message": f"saved without checking it against Dynamics, which could not be reached ({reason})",
            "fix": f"Check it once Dynamics answers: POST /api/manage/workspaces/{workspace_id}/validate.",
        }
    )


def save_section(
    services: Services,
    workspace_id: str,
    section: str,
    document: Any,
    if_match: str | None,
    actor: str | None,
) -> SavedSection:
    """Validate a section's shape (400), check it against live Dynamics metadata and the other sections
    (422 with every problem when any is an error), then store it (If-Match: 428/412 as the store answers).

    Warnings are returned with the saved section; when Dynamics cannot be reached the section is saved
    with a warning that it was not checked."""
    store = services.store
    store.get_section(workspace_id, section)  # 404 for an unknown workspace or section
    if not if_match or not if_match.strip():
        raise PreconditionRequired(
            f"If-Match is required: GET the {section} mapping and send its ETag back", code="if_match_required"
        )
    model = _model(section, document)
    ctx = services.workspace(workspace_id)
    try:
        problems = check_section(ctx, section, model)
    except DataverseError as exc:
        log.warning("workspace %s: %s mapping saved unchecked: Dynamics unreachable (%r)", workspace_id, section, exc)
        problems = [_not_checked(workspace_id, section, exc)]
    if any(p.severity == "error" for p in problems):
        raise MappingRejected(section, problems)
    saved = store.put_section(workspace_id, section, document, if_match, actor)
    return SavedSection(saved, problems)
