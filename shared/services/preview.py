"""Dry runs for the admin: what an export would do, column by column, and whom each Genesy identity resolves to.

`preview` runs the worker's own read phase and mapping (`shared.services.writes.plan_records`), so what it
shows is what an export writes: for sample records (matched like an export) or for existing Dynamics
records by `crmIds` (an update, as `PUT /contacts` would send it), the match decision and, per column,
the value in Dynamics now, the value that would be written and the decision. Nothing is written or queued.

`identities` lists the Genesy identities seen in exports and activities (`shared.storage.identities`)
with their current resolution: mapped, auto-matched by e-mail, the default owner, or none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.entities import is_guid
from shared.domain.genesy_models import CompanyIn, CompanyUpdate, ContactIn, ContactUpdate, ExportValues
from shared.domain.mapping_engine import (
    ExportValueError,
    OwnerDecision,
    RecordPlan,
    UserDirectory,
    resolve_export_values,
    resolve_identity,
    resolve_owner,
)
from shared.domain.mappings import EntityExportMapping
from shared.domain.matching import Match, MatchTarget
from shared.domain.metadata import SystemUser
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import BadRequest, UpstreamUnavailable
from shared.services.export import export_message
from shared.services.matcher import find_matches
from shared.services.root import Services, WorkspaceContext, enabled_users
from shared.services.write_plan import PlannedRecord
from shared.services.writes import plan_records

__all__ = [
    "ColumnDiff",
    "DynamicsUser",
    "IdentitiesReply",
    "IdentitySource",
    "IdentityView",
    "MatchCondition",
    "MatchDecision",
    "MatchRuleView",
    "OwnerView",
    "PreviewRecordDiff",
    "PreviewReply",
    "PreviewRequest",
    "identities",
    "preview",
    "preview_export",
]

MAX_PREVIEW_RECORDS = 100

Decision = Literal[
    "write",
    "unchanged",
    "truncated",
    "skip: if_empty",
    "skip: on_create",
    "skip: no value",
    "skip: not engaged",
    "dropped",
]
Resolution = Literal["direct", "mapped", "auto-matched", "default", "none"]

_SKIP_DECISIONS: dict[str, Decision] = {
    "if_empty": "skip: if_empty",
    "on_create": "skip: on_create",
    "no_value": "skip: no value",
    "not_engaged": "skip: not engaged",
}
_RESOLUTIONS: dict[str, Resolution] = {
    "ownerId": "direct",
    "users": "mapped",
    "identities": "mapped",
    "auto-matched": "auto-matched",
    "default": "default",
}
_OWNER_COLUMN = "_ownerid_value"


# ---------------------------------------------------------------------------------------------
# Models: the request and the replies


class PreviewRequest(BaseModel):
    """`POST manage/workspaces/{id}/preview`: sample records (matched like an export), or existing Dynamics
    records by `crmIds` (an update of each; with `records` too, record i is the update of `crmIds[i]`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["contact", "company"]
    records: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_PREVIEW_RECORDS)
    crmIds: list[str] = Field(default_factory=list, max_length=MAX_PREVIEW_RECORDS)
    exportValues: ExportValues = Field(default_factory=dict)

    @field_validator("crmIds")
    @classmethod
    def _guids(cls, ids: list[str]) -> list[str]:
        for index, value in enumerate(ids):
            if not is_guid(value):
                raise ValueError(f"crmIds[{index}]: '{value}' is not a Dynamics record id")
        return [value.strip().lower() for value in ids]

    @model_validator(mode="after")
    def _something_to_preview(self) -> PreviewRequest:
        if not self.records and not self.crmIds:
            raise ValueError("send records, crmIds, or both")
        if self.records and self.crmIds and len(self.records) != len(self.crmIds):
            raise ValueError("with crmIds, records holds one update per id, in the same order")
        return self


class ColumnDiff(BaseModel):
    """One column: its value in Dynamics now, the value an export would write, and the decision."""

    column: str
    source: str = Field(
        description="field:<Genesy field> | fixed | export:<name> | engagement | owner:<how> | campaign"
    )
    current: Any = Field(description="The value in Dynamics now; null for a new record or an empty column.")
    value: Any = Field(description="The value that would be written (for a skip or a drop: the one that is not).")
    decision: Decision
    reason: str | None = None


class MatchCondition(BaseModel):
    field: str
    column: str
    normaliser: str


class MatchRuleView(BaseModel):
    """The sync-mapping rule a match was found by (its position in the effective rules)."""

    index: int
    conditions: list[MatchCondition]
    description: str


class MatchDecision(BaseModel):
    """Which Dynamics record the export writes to, and why.

    `new`: no record matched, one is created with `record` as its id; `matched`: found by `rule`;
    `ambiguous`: several matched, `record` (the most recently modified active one) is written, `candidates`
    are the others; `by id`: a record named by `crmIds`; `not found`: that id is not in Dynamics.
    """

    decision: Literal["new", "matched", "ambiguous", "by id", "not found"]
    record: str | None
    rule: MatchRuleView | None = None
    candidates: list[str] = Field(default_factory=list)
    note: str | None = None


class DynamicsUser(BaseModel):
    id: str
    name: str
    email: str | None = None


class OwnerView(BaseModel):
    """The owner an export would set: how it was resolved, and from which Genesy value."""

    source: str = Field(description="ownerId | users | identities | auto-matched | default | none")
    resolution: Resolution
    user: DynamicsUser | None
    via: str | None = None
    note: str | None = None


class PreviewRecordDiff(BaseModel):
    """What an export would do to one record. `body`, `writes`, `skipped` and `warnings` are the mapping
    engine's plan as the worker builds it; `columns` is the same as a diff against Dynamics now."""

    model_config = ConfigDict(extra="allow")

    externalId: str | None
    crmId: str
    writesTo: str
    matched: bool
    ambiguousIds: list[str]
    match: MatchDecision
    action: Literal["create", "update"] | None = None
    columns: list[ColumnDiff] = Field(default_factory=list)
    owner: OwnerView | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    writes: list[dict[str, Any]] = Field(default_factory=list)
    skipped: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, str] | None = Field(default=None, description="{code, message}: the record cannot be written.")


class PreviewReply(BaseModel):
    records: list[PreviewRecordDiff]


class IdentitySource(BaseModel):
    source: str = Field(description="Where it was seen: contact.ownerId, company.ownerEmail, activity.sender, …")
    lastSeen: datetime | None


class IdentityView(BaseModel):
    """A Genesy identity seen in exports or activities, and whom it resolves to now."""

    identity: str
    role: Literal["owner", "sender"] = Field(description="owner: named on exports; sender: only on activities")
    lastSeen: datetime | None
    seenIn: list[IdentitySource]
    resolution: Resolution
    source: str = Field(description="The resolver's source: ownerId | users | identities | auto-matched | default")
    user: DynamicsUser | None
    note: str | None = None


class IdentitiesReply(BaseModel):
    workspace_id: str
    identities: list[IdentityView]


# ---------------------------------------------------------------------------------------------
# The export preview


def preview(ctx: WorkspaceContext, request: PreviewRequest) -> PreviewReply:
    """`POST …/preview`: validate the records as Genesy would send them, then the dry run."""
    updating = bool(request.crmIds)
    records = [_record_fields(request.kind, raw, index, updating) for index, raw in enumerate(request.records)]
    return PreviewReply(records=preview_export(ctx, request.kind, records, request.exportValues, request.crmIds))


def _record_fields(kind: str, raw: Mapping[str, Any], index: int, updating: bool) -> dict[str, Any]:
    try:
        if updating:  # an update's fields: what `PUT` takes, the id coming from `crmIds`
            update = (CompanyUpdate if kind == "company" else ContactUpdate).model_validate({**raw, "crmId": "-"})
            return {k: v for k, v in update.fields().items() if k != "crmId"}
        return (CompanyIn if kind == "company" else ContactIn).model_validate(raw).fields()
    except ValueError as exc:
        raise BadRequest(f"records[{index}]: {exc}") from None


def preview_export(
    ctx: WorkspaceContext,
    kind: str,
    records: Sequence[Mapping[str, Any]],
    export_values: Mapping[str, Any],
    crm_ids: Sequence[str] = (),
) -> list[PreviewRecordDiff]:
    """A dry run: records (already validated field dicts) exported, or the Dynamics records `crm_ids` updated
    (record i is the update of `crm_ids[i]`; no records: updates that carry no Genesy value). Writes nothing."""
    budget = Budget(ctx.settings.match_timeout_seconds * 3)
    try:
        if crm_ids:
            message = _update_message(ctx, kind, records, export_values, crm_ids)
            matches: dict[str, Match] = {}
        else:
            message = export_message(ctx, kind, records, export_values)
            matches = find_matches(ctx.client, ctx.record(kind).match_target(), records, budget)
        batch = plan_records(ctx, message, budget)
        owners = _current_owners(ctx, kind, [r.target for r in batch.records if r.current is not None], budget)
        users = enabled_users(ctx)
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    view = _View(ctx, kind, UserDirectory.of(users), {u.id.lower(): u for u in users}, owners, by_id=bool(crm_ids))
    return [view.record(planned, matches, batch.records) for planned in batch.records]


def _update_message(
    ctx: WorkspaceContext,
    kind: str,
    records: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, Any],
    crm_ids: Sequence[str],
) -> WriteMessage:
    """The update message `PUT /contacts|/companies` would queue for these ids."""
    try:
        values = resolve_export_values(ctx.record(kind).export, chosen)
    except ExportValueError as exc:
        raise BadRequest(
            str(exc), details=[{"field": exc.field, "message": exc.message}], code="invalid_export_value"
        ) from None
    items = []
    for index, crm_id in enumerate(crm_ids):
        fields = dict(records[index]) if index < len(records) else {}
        items.append(WriteItem(external_id=fields.get("externalId"), crm_id=crm_id, matched=True, fields=fields))
    return WriteMessage(
        operation="update",
        workspace_id=ctx.workspace.id,
        kind="company" if kind == "company" else "contact",
        items=items,
        export_values=values,
        correlation_id=current_correlation_id(),
    )


def _current_owners(ctx: WorkspaceContext, kind: str, ids: Sequence[str], budget: Budget) -> dict[str, str]:
    """The current owner of each existing record (one read; the worker does not read owners)."""
    if not ids:
        return {}
    entity = ctx.entity(kind)
    rows = ctx.client.query_in(
        entity.entity_set,
        entity.primary_id,
        sorted(set(ids)),
        select=[entity.primary_id, _OWNER_COLUMN],
        key=entity.primary_id,
        budget=budget,
    )
    return {str(r[entity.primary_id]).lower(): str(r.get(_OWNER_COLUMN) or "").lower() for r in rows}


class _View:
    """Turns the worker's plan of each record into the preview's diff."""

    def __init__(
        self,
        ctx: WorkspaceContext,
        kind: str,
        directory: UserDirectory,
        users: Mapping[str, SystemUser],
        owners: Mapping[str, str],
        *,
        by_id: bool,
    ) -> None:
        self.ctx, self.kind, self.directory, self.users, self.owners = ctx, kind, directory, users, owners
        self.by_id = by_id

    def record(
        self, planned: PlannedRecord, matches: Mapping[str, Match], batch: Sequence[PlannedRecord]
    ) -> PreviewRecordDiff:
        item = planned.item
        result = PreviewRecordDiff(
            externalId=item.external_id,
            crmId=item.crm_id,
            writesTo=planned.target,
            matched=item.matched or planned.target != item.crm_id,
            ambiguousIds=planned.ambiguous_ids,
            match=self.match(planned, matches, batch),
        )
        if planned.error:
            result.error = {"code": planned.error[0], "message": planned.error[1]}
        if planned.plan is None:
            return result
        plan = planned.plan
        owner = resolve_owner(item.fields, self.ctx.mappings.users, self.directory, creating=planned.current is None)
        result.owner = self.owner(owner)
        order = _mapping_order(self.ctx.record(self.kind).export)
        diffs = sorted(_column_diffs(plan, planned.current), key=lambda d: order.get(d.column, len(order)))
        result.columns = [*diffs, self.owner_column(planned, owner)]
        extra = plan.as_dict()
        result.action, result.body = extra["action"], extra["body"]
        result.writes, result.skipped, result.warnings = extra["writes"], extra["skipped"], extra["warnings"]
        return result

    def match(
        self, planned: PlannedRecord, matches: Mapping[str, Match], batch: Sequence[PlannedRecord]
    ) -> MatchDecision:
        item, target = planned.item, planned.target
        if self.by_id and planned.error is not None:
            return MatchDecision(decision="not found", record=target, note=planned.error[1])
        if self.by_id:
            note = None if target == item.crm_id else f"{item.crm_id} is an alias of {target}"
            return MatchDecision(decision="by id", record=target, note=note)
        if not item.matched and target == item.crm_id:
            return MatchDecision(decision="new", record=target, note=_copy_note(planned, batch))
        found = matches.get(str(item.external_id)) or next((m for m in matches.values() if m.crm_id == target), None)
        note = None
        if not item.matched:
            note = f"found by the worker's re-check: the id {item.crm_id} handed out becomes an alias of {target}"
        return MatchDecision(
            decision="ambiguous" if planned.ambiguous_ids else "matched",
            record=target,
            rule=_rule_view(self.ctx.record(self.kind).match_target(), found.rule_index) if found else None,
            candidates=list(planned.ambiguous_ids),
            note=note,
        )

    def user(self, user_id: str | None) -> DynamicsUser | None:
        found = self.users.get(user_id or "")
        if found is None:
            return DynamicsUser(id=user_id, name="") if user_id else None
        return DynamicsUser(id=found.id.lower(), name=found.name, email=found.email)

    def owner(self, decision: OwnerDecision) -> OwnerView:
        return OwnerView(
            source=decision.source,
            resolution=_RESOLUTIONS.get(decision.source, "none"),
            user=self.user(decision.owner_id),
            via=decision.via,
            note=decision.note,
        )

    def owner_column(self, planned: PlannedRecord, owner: OwnerDecision) -> ColumnDiff:
        current = self.owners.get(planned.target) if planned.current is not None else None
        source = f"owner:{owner.source}"
        if owner.owner_id is None:
            reason = owner.note or (
                "Genesy named no owner: an update keeps the current one"
                if planned.current is not None
                else "no owner resolved: the application user owns the new record"
            )
            return ColumnDiff(
                column="ownerid", source=source, current=current, value=None, decision="skip: no value", reason=reason
            )
        decision: Decision = "unchanged" if current == owner.owner_id else "write"
        return ColumnDiff(
            column="ownerid", source=source, current=current, value=owner.owner_id, decision=decision, reason=owner.note
        )


def _copy_note(planned: PlannedRecord, batch: Sequence[PlannedRecord]) -> str | None:
    """A note when an earlier record of the call is the same person or company (one record for both)."""
    first = next((r for r in batch if r.item.crm_id == planned.item.crm_id), planned)
    if first is planned:
        return None
    return f"the same record as {first.item.external_id} in this call: one Dynamics record for both"


def _rule_view(target: MatchTarget, index: int) -> MatchRuleView | None:
    if not 0 <= index < len(target.rules):
        return None
    rule = target.rules[index]
    conditions = [MatchCondition(field=c.field, column=c.column, normaliser=c.normaliser.value) for c in rule.all_of]
    description = " and ".join(f"{c.field} = {c.column} ({c.normaliser})" for c in conditions)
    return MatchRuleView(index=index, conditions=conditions, description=description)


def _mapping_order(mapping: EntityExportMapping) -> dict[str, int]:
    """Each mapped column's position in the mapping (fields, fixed, export fields, engagement)."""
    groups = (mapping.fields, mapping.fixed, mapping.export_fields, mapping.engagement)
    columns = [item.column for group in groups for item in group]
    return {column: index for index, column in reversed(list(enumerate(columns)))}


def _column_diffs(plan: RecordPlan, current: Mapping[str, Any] | None) -> list[ColumnDiff]:
    """Every mapped column of the plan: written (or unchanged, or cut), skipped or dropped; then what the
    worker adds to the body beyond the mapping (campaign columns of a new contact)."""
    now = current or {}
    diffs: list[ColumnDiff] = []
    for write in plan.writes:
        if write.column == "ownerid":
            continue
        decision: Decision = "write"
        reason = None
        if current is not None and _same(now.get(write.column), write.value):
            decision = "unchanged"
        elif write.truncated:
            decision = "truncated"
            reason = next((w for w in plan.warnings if w.startswith(f"{write.column}: cut to")), None)
        diffs.append(
            ColumnDiff(
                column=write.column,
                source=write.source,
                current=now.get(write.column),
                value=write.value,
                decision=decision,
                reason=reason,
            )
        )
    for skipped in plan.skipped:
        diffs.append(
            ColumnDiff(
                column=skipped.column,
                source=skipped.source,
                current=now.get(skipped.column),
                value=skipped.value,
                decision=_SKIP_DECISIONS.get(skipped.code, "dropped"),
                reason=skipped.reason,
            )
        )
    written = {w.column for w in plan.writes}
    for column, value in plan.body.items():
        if column not in written and "@" not in column:
            diffs.append(
                ColumnDiff(column=column, source="campaign", current=now.get(column), value=value, decision="write")
            )
    return diffs


def _same(current: Any, value: Any) -> bool:
    """Whether writing `value` leaves the column as it is (Dataverse's forms: numbers, dates, choices)."""
    if current == value:
        return True
    if current is None or value is None or isinstance(current, bool) or isinstance(value, bool):
        return False
    if isinstance(current, int | float) or isinstance(value, int | float):
        try:
            return float(current) == float(value)
        except (TypeError, ValueError):
            return False
    if isinstance(current, str) and isinstance(value, str):  # a date-only column reads back as midnight
        return len(value) == 10 and current.startswith(value + "T00:00:00")
    return False


# ---------------------------------------------------------------------------------------------
# Identities


def identities(services: Services, workspace_id: str) -> IdentitiesReply:
    """`GET …/identities`: every Genesy identity seen in the workspace, and whom it resolves to now."""
    ctx = services.workspace(workspace_id)
    try:
        users = enabled_users(ctx)
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    directory = UserDirectory.of(users)
    by_id = {u.id.lower(): u for u in users}
    views = []
    for seen in services.identities.seen(workspace_id):
        decision = resolve_identity(seen.identity, seen.role, ctx.mappings.users, directory)
        found = by_id.get(decision.owner_id or "")
        views.append(
            IdentityView(
                identity=seen.identity,
                role="owner" if seen.role == "owner" else "sender",
                lastSeen=seen.last_seen,
                seenIn=[IdentitySource(source=s, lastSeen=at) for s, at in sorted(seen.sources.items())],
                resolution=_RESOLUTIONS.get(decision.source, "none"),
                source=decision.source,
                user=DynamicsUser(id=found.id.lower(), name=found.name, email=found.email) if found else None,
                note=decision.note,
            )
        )
    return IdentitiesReply(workspace_id=workspace_id, identities=views)
