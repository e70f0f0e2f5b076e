"""The Genesy export path on the HTTP side: sync, accept exports/updates/associations, read back.

Answers fast: matching is one batched Dataverse read; writes go to the workspace's ordered queue and
the worker does them. Every id returned is final — a matched record's id, or a new id fixed now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.copies import merge_copies
from shared.domain.entities import EntityKind, is_guid, issued_kind, new_record_id
from shared.domain.mapping_engine import ExportValueError, UserDirectory, resolve_export_values, resolve_owner
from shared.domain.matching import Match, MatchTarget, group_identities
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.messaging.outgoing import to_outgoing
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import BadRequest, NotFound, UpstreamUnavailable
from shared.platform.logs import logger
from shared.services.matcher import find_matches
from shared.services.root import WorkspaceContext, enabled_users

__all__ = [
    "accept_export",
    "accept_update",
    "batch_get",
    "enqueue",
    "export_message",
    "is_pending",
    "list_users",
    "match_target",
    "pending_ids",
    "sync_records",
]

log = logger("export")


def match_target(ctx: WorkspaceContext, kind: str, extra_select: Iterable[str] = ()) -> MatchTarget:
    return ctx.record(kind).match_target(extra_select)


def _checked_export_values(ctx: WorkspaceContext, kind: str, chosen: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return resolve_export_values(ctx.record(kind).export, chosen)
    except ExportValueError as exc:
        raise BadRequest(
            str(exc), details=[{"field": exc.field, "message": exc.message}], code="invalid_export_value"
        ) from None


def sync_records(ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`/…/sync`: only the records that exist, with the configured sync-back columns as `properties`."""
    if not records:
        return []
    target = match_target(ctx, kind)
    try:
        matches = find_matches(ctx.client, target, records, Budget(ctx.settings.match_timeout_seconds * 2))
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    sync_back = ctx.record(kind).sync_back
    results = []
    for record in records:
        match = matches.get(str(record["externalId"]))
        if match is None:
            continue
        result: dict[str, Any] = {"externalId": match.external_id, "crmId": match.crm_id}
        properties = {name: match.row.get(column) for name, column in sync_back.items()}
        if properties:
            result["properties"] = properties
        results.append(result)
    return results


def enqueue(ctx: WorkspaceContext, message: WriteMessage) -> None:
    """Queue a write behind everything this workspace queued before (its ordered session)."""
    ctx.services.sender.send(ctx.settings.writes_queue, to_outgoing(message))


def pending_ids(ctx: WorkspaceContext, kind: str, ids: Iterable[str]) -> set[str]:
    """The ids among `ids` we issued for a new `kind` record that the worker has not written yet.

    Issued ids carry a tag (`shared.domain.entities.issued_kind`), so ids of records created elsewhere cost no
    lookup; for ours, one Table query per 40 ids tells whether the worker wrote them.
    """
    issued = [i.lower() for i in dict.fromkeys(ids) if issued_kind(ctx.workspace.id, i) == kind]
    if not issued:
        return set()
    return set(issued) - ctx.services.aliases.written(ctx.workspace.id, kind, issued)


def is_pending(ctx: WorkspaceContext, kind: str, crm_id: str) -> bool:
    return crm_id.lower() in pending_ids(ctx, kind, [crm_id])


def export_message(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], chosen_values: Mapping[str, Any]
) -> WriteMessage:
    """The create message for an export: every record's id fixed (matched, or new and stable)."""
    export_values = _checked_export_values(ctx, kind, chosen_values)
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        latest[str(record["externalId"])] = record  # a repeated externalId: the last copy wins
    unique = list(latest.values())
    target = match_target(ctx, kind)
    try:
        # One read: Genesy is waiting. A LinkedIn URL stored in an unusual form is found by the worker's
        # re-check (the slug fallback rides in its one $batch); the id handed out then becomes an alias.
        matches = find_matches(ctx.client, target, unique, Budget(ctx.settings.match_timeout_seconds), fallback=False)
    except DataverseError as exc:
        # Dynamics is slow or down: hand out new ids; the worker matches again and records aliases.
        log.warning("matching skipped for %d %s records: %s", len(unique), kind, exc.code or type(exc).__name__)
        matches = {}
    _remember_matches(ctx, kind, matches.values())
    leaders = group_identities(target, unique)
    # Copies of one person or company in the call become one record (shared.domain.copies has the rules).
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in unique:
        groups.setdefault(leaders.get(str(record["externalId"]), str(record["externalId"])), []).append(record)
    owner_resolves = _owner_check(ctx) if any(_owners_differ(copies) for copies in groups.values()) else None
    merged = {leader: merge_copies(copies, owner_resolves) for leader, copies in groups.items()}
    items: list[WriteItem] = []
    for record in unique:
        external_id = str(record["externalId"])
        leader = leaders.get(external_id, external_id)
        match = matches.get(external_id) or matches.get(leader)
        items.append(
            WriteItem(
                external_id=external_id,
                crm_id=match.crm_id if match else new_record_id(ctx.workspace.id, kind, leader),
                matched=match is not None,
                ambiguous_ids=match.ambiguous_ids if match else [],
                fields={**merged[leader], "externalId": external_id},
            )
        )
    return _message(ctx, "create", kind, items, export_values)


def _remember_matches(ctx: WorkspaceContext, kind: str, matches: Iterable[Match]) -> None:
    recent = ctx.services.recent
    parent = str(ctx.contact.parent_value)
    for match in matches:
        seen_parent = str(match.row.get(parent) or "") if kind == "contact" and parent in match.row else None
        recent.saw(ctx.workspace.id, kind, match.crm_id, seen_parent)


def _saw_owners(ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]]) -> None:
    """Note the Genesy users the records name as owners (a Table write only for ones new to this process)."""
    fields = ("ownerId", ctx.mappings.users.owner_field, "ownerEmail")
    ctx.services.identities.saw_records(ctx.workspace.id, kind, records, fields)


def _owners_differ(copies: Sequence[Mapping[str, Any]]) -> bool:
    return len({str(c.get("ownerId")).strip().lower() for c in copies if c.get("ownerId") not in (None, "")}) > 1


def _owner_check(ctx: WorkspaceContext) -> Callable[[Any], bool]:
    """Whether a Genesy `ownerId` resolves to an enabled Dynamics user (directly or by the user mapping)."""
    try:
        enabled = UserDirectory.of(enabled_users(ctx))
    except DataverseError:
        enabled = UserDirectory.of([])
    users = ctx.mappings.users

    def resolves(owner_id: Any) -> bool:
        decision = resolve_owner({"ownerId": owner_id}, users, enabled, creating=False)
        return decision.source in ("ownerId", "users", "auto-matched")

    return resolves


def _message(
    ctx: WorkspaceContext, operation: str, kind: str, items: list[WriteItem], export_values: Mapping[str, Any]
) -> WriteMessage:
    """A write message of this workspace, carrying the call's correlation id."""
    return WriteMessage.model_validate(
        {
            "operation": operation,
            "workspace_id": ctx.workspace.id,
            "kind": kind,
            "items": items,
            "export_values": dict(export_values),
            "correlation_id": current_correlation_id(),
        }
    )


def accept_export(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], chosen_values: Mapping[str, Any]
) -> list[dict[str, str]]:
    """`POST /companies|/contacts`: fix every record's id now and queue the writes."""
    if not records:
        return []
    message = export_message(ctx, kind, records, chosen_values)
    enqueue(ctx, message)
    _saw_owners(ctx, kind, records)
    crm_ids = {str(item.external_id): item.crm_id for item in message.items}
    return [{"externalId": str(r["externalId"]), "crmId": crm_ids[str(r["externalId"])]} for r in records]


def _existing_ids(ctx: WorkspaceContext, kind: str, ids: Sequence[str]) -> set[str] | None:
    """Which of these Dynamics ids exist (one query per URL-sized chunk); None when Dynamics cannot say."""
    if not ids:
        return set()
    entity = ctx.entity(kind)
    try:
        rows = ctx.client.query_in(
            entity.entity_set,
            entity.primary_id,
            sorted(set(ids)),
            select=[entity.primary_id],
            key=entity.primary_id,
            budget=Budget(ctx.settings.match_timeout_seconds * 2),
        )
    except DataverseError as exc:
        log.warning("could not check %d %s ids: %s", len(ids), kind, exc.code or type(exc).__name__)
        return None
    return {str(row[entity.primary_id]).lower() for row in rows}


def _not_found(kind: str, crm_id: str) -> str:
    return f"{'Company' if kind == 'company' else 'Contact'} not found: no record with ID {crm_id} in Dynamics"


def deleted_in_dynamics(ctx: WorkspaceContext, kind: str, ids: Iterable[str]) -> dict[str, str]:
    """id → why it cannot be written ("Contact deleted in Dynamics (…)"), for the ids reconciliation saw
    deleted in Dynamics (`shared.services.reconciliation`)."""
    label = "Company" if kind == "company" else "Contact"
    found = ctx.services.aliases.deleted(ctx.workspace.id, kind, ids)
    return {i: f"{label} deleted in Dynamics ({when.isoformat()})" for i, when in found.items()}


def refuse_deleted(ctx: WorkspaceContext, kind: str, record_id: str) -> None:
    """404 naming the deletion when the record was deleted in Dynamics."""
    found = deleted_in_dynamics(ctx, kind, [record_id])
    if found:
        field = "companyId" if kind == "company" else "contactId"
        message = found[record_id.lower()]
        raise NotFound(
            f"{message}: {record_id}",
            code=f"{message.split(' ', 1)[0]} deleted in Dynamics",
            details=[{"field": field, "message": "deleted in Dynamics"}],
        )


def _missing(kind: str, crm_id: str, target: str, pending: set[str], existing: set[str] | None) -> str | None:
    """Why an update cannot be queued when its record is neither on its way nor in Dynamics, else None."""
    if existing is not None and target not in pending and target not in existing:
        return _not_found(kind, crm_id)
    return None


def accept_update(
    ctx: WorkspaceContext, kind: str, updates: Sequence[Mapping[str, Any]], chosen_values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """`PUT /companies|/contacts`: queue updates of records Genesy knows by crmId.

    An id we issued for a record not written yet is queued behind it; any other id must exist in
    Dynamics (one read for the call) or it is answered `success: false` — nothing is queued for it.
    """
    if not updates:
        return []
    export_values = _checked_export_values(ctx, kind, chosen_values)
    valid = [str(u["crmId"]).strip() for u in updates if is_guid(str(u["crmId"]))]
    resolved = ctx.services.aliases.resolve(ctx.workspace.id, kind, valid)
    pending = pending_ids(ctx, kind, resolved.values())
    existing = _existing_ids(ctx, kind, [i for i in resolved.values() if i not in pending])
    deleted = deleted_in_dynamics(ctx, kind, resolved.values()) if resolved else {}
    results: list[dict[str, Any]] = []
    items: list[WriteItem] = []
    for update in updates:
        crm_id = str(update["crmId"])
        if not is_guid(crm_id):
            results.append({"crmId": crm_id, "success": False, "error": "crmId is not a Dynamics record id"})
            continue
        target = resolved[crm_id.strip().lower()]
        refused = deleted.get(target) or _missing(kind, crm_id, target, pending, existing)
        if refused:
            results.append({"crmId": crm_id, "success": False, "error": refused})
            continue
        fields = {k: v for k, v in update.items() if k != "crmId"}
        items.append(
            WriteItem(external_id=update.get("externalId"), crm_id=crm_id.strip().lower(), matched=True, fields=fields)
        )
        results.append({"crmId": crm_id, "success": True})
    if items:
        enqueue(ctx, _message(ctx, "update", kind, items, export_values))
    _saw_owners(ctx, kind, updates)
    return results


def batch_get(ctx: WorkspaceContext, kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """`/…/batch`: current Dynamics values by crmId, in Genesy's field names, for the ids that exist."""
    entity: EntityKind = ctx.entity(kind)
    wanted = [i for i in dict.fromkeys(ids) if is_guid(i)]
    if not wanted:
        return []
    resolved = ctx.services.aliases.resolve(ctx.workspace.id, kind, wanted)
    record_type = ctx.record(kind)
    mapping, sync_back = record_type.export, record_type.sync_back
    columns = {entity.primary_id, *(f.column for f in mapping.fields), *sync_back.values()}
    try:
        rows = ctx.client.query_in(
            entity.entity_set,
            entity.primary_id,
            sorted(set(resolved.values())),
            select=sorted(columns),
            key=entity.primary_id,
            budget=Budget(ctx.settings.match_timeout_seconds * 2),
        )
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    by_id = {str(row[entity.primary_id]).lower(): row for row in rows}
    results = []
    for requested in wanted:
        row = by_id.get(resolved.get(requested.lower(), requested.lower()))
        if row is None:
            continue
        item: dict[str, Any] = {"id": requested}
        for field_map in mapping.fields:
            if row.get(field_map.column) is not None:
                item.setdefault(field_map.source, row[field_map.column])
        properties = {name: row.get(column) for name, column in sync_back.items()}
        if properties:
            item["properties"] = properties
        results.append(item)
    return results


def list_users(ctx: WorkspaceContext) -> list[dict[str, str]]:
    """`GET /users`: enabled, interactive Dynamics users for owner selection."""
    try:
        users = enabled_users(ctx)
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    out = []
    for user in sorted(users, key=lambda u: u.name.casefold()):
        item = {"id": user.id, "name": user.name}
        if user.email:
            item["email"] = user.email
        out.append(item)
    return out
