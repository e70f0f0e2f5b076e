"""The Genesy export path on the HTTP side: sync, accept exports/updates/associations, read back.

Answers fast: matching is one batched Dataverse read; writes go to the workspace's ordered queue and
the worker does them. Every id returned is final — a matched record's id, or a new id fixed now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mapping_store.models import EntityExportMapping
from shared.context import WorkspaceContext, enabled_users
from shared.dataverse import Budget, DataverseClient, DataverseError
from shared.dataverse.correlation import current_correlation_id
from shared.entities import EntityKind, is_guid, new_record_id
from shared.errors import BadRequest, UpstreamUnavailable
from shared.ledger import AliasStore, alias_store_for
from shared.logs import logger
from shared.mapping_engine import ExportValueError, resolve_export_values
from shared.matching import (
    CandidateQuery,
    Match,
    MatchTarget,
    group_identities,
    match_records,
    plan_candidate_queries,
)
from shared.queue import get_sender
from shared.write_messages import WriteItem, WriteMessage, to_outgoing

__all__ = [
    "accept_associations",
    "accept_export",
    "accept_update",
    "alias_store",
    "batch_get",
    "export_message",
    "find_matches",
    "list_users",
    "match_target",
    "run_queries",
    "sync_records",
]

log = logger("export")


def alias_store(ctx: WorkspaceContext) -> AliasStore:
    return alias_store_for(ctx.settings)


def match_target(ctx: WorkspaceContext, kind: str, extra_select: Iterable[str] = ()) -> MatchTarget:
    sync = ctx.mappings.sync
    if kind == "company":
        return MatchTarget.for_companies(sync.company, extra_select=[*sync.company_sync_back.values(), *extra_select])
    return MatchTarget.for_contacts(
        sync.contact, ctx.workspace.contact_entity, extra_select=[*sync.contact_sync_back.values(), *extra_select]
    )


def run_queries(
    client: DataverseClient, queries: Sequence[CandidateQuery], budget: Budget
) -> list[list[dict[str, Any]]]:
    """Planned queries in one `$batch` of GETs (one request for up to 1000 queries)."""
    if not queries:
        return []
    return client.query_many([(q.entity_set, q.filter, list(q.select), q.expand) for q in queries], budget=budget)


def find_matches(
    client: DataverseClient, target: MatchTarget, records: Sequence[Mapping[str, Any]], budget: Budget
) -> dict[str, Match]:
    """One batched read of candidates, then the pure matcher."""
    queries = plan_candidate_queries(target, records)
    return match_records(target, records, queries, run_queries(client, queries, budget)) if queries else {}


def _export_mapping(ctx: WorkspaceContext, kind: str) -> EntityExportMapping:
    return ctx.mappings.export.company if kind == "company" else ctx.mappings.export.contact


def _checked_export_values(ctx: WorkspaceContext, kind: str, chosen: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return resolve_export_values(_export_mapping(ctx, kind), chosen)
    except ExportValueError as exc:
        raise BadRequest(
            str(exc), details=[{"field": exc.field, "message": exc.message}], code="invalid_export_value"
        ) from None


def sync_records(ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`/…/sync`: only the records that exist, with the configured sync-back columns as `properties`."""
    target = match_target(ctx, kind)
    try:
        matches = find_matches(ctx.client, target, records, Budget(ctx.settings.match_timeout_seconds * 2))
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    sync_back = ctx.mappings.sync.company_sync_back if kind == "company" else ctx.mappings.sync.contact_sync_back
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


def _enqueue(ctx: WorkspaceContext, message: WriteMessage) -> None:
    get_sender(ctx.settings).send(ctx.settings.writes_queue, to_outgoing(message))


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
        matches = find_matches(ctx.client, target, unique, Budget(ctx.settings.match_timeout_seconds))
    except DataverseError as exc:
        # Dynamics is slow or down: hand out new ids; the worker matches again and records aliases.
        log.warning("matching skipped for %d %s records: %s", len(unique), kind, exc.code or type(exc).__name__)
        matches = {}
    leaders = group_identities(target, unique)
    # Copies of one person or company in the call become one record: later values fill in or update
    # earlier ones, but an empty value never erases one (an ownerId chosen on one copy is kept).
    merged: dict[str, dict[str, Any]] = {}
    for record in unique:
        bucket = merged.setdefault(leaders.get(str(record["externalId"]), str(record["externalId"])), {})
        bucket.update({k: v for k, v in record.items() if v is not None and v != ""})
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


def _message(
    ctx: WorkspaceContext, operation: str, kind: str, items: list[WriteItem], export_values: Mapping[str, Any]
) -> WriteMessage:
    """A write message of this workspace, carrying the call's correlation id."""
    return WriteMessage.model_validate(
        {
            "operation": operation,
            "workspace_id": ctx.workspace.id,
            "kind": kind if kind in ("company", "association") else "contact",
            "items": items,
            "export_values": dict(export_values),
            "correlation_id": current_correlation_id(),
        }
    )


def accept_export(
    ctx: WorkspaceContext, kind: str, records: Sequence[Mapping[str, Any]], chosen_values: Mapping[str, Any]
) -> list[dict[str, str]]:
    """`POST /companies|/contacts`: fix every record's id now and queue the writes."""
    message = export_message(ctx, kind, records, chosen_values)
    _enqueue(ctx, message)
    crm_ids = {str(item.external_id): item.crm_id for item in message.items}
    return [{"externalId": str(r["externalId"]), "crmId": crm_ids[str(r["externalId"])]} for r in records]


def accept_update(
    ctx: WorkspaceContext, kind: str, updates: Sequence[Mapping[str, Any]], chosen_values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """`PUT /companies|/contacts`: queue updates of records Genesy knows by crmId."""
    export_values = _checked_export_values(ctx, kind, chosen_values)
    results: list[dict[str, Any]] = []
    items: list[WriteItem] = []
    for update in updates:
        crm_id = str(update["crmId"])
        if not is_guid(crm_id):
            results.append({"crmId": crm_id, "success": False, "error": "crmId is not a Dynamics record id"})
            continue
        fields = {k: v for k, v in update.items() if k != "crmId"}
        items.append(
            WriteItem(external_id=update.get("externalId"), crm_id=crm_id.lower(), matched=True, fields=fields)
        )
        results.append({"crmId": crm_id, "success": True})
    if items:
        _enqueue(ctx, _message(ctx, "update", kind, items, export_values))
    return results


def accept_associations(ctx: WorkspaceContext, pairs: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """`POST /associations`: queue contact → company links after the writes already queued."""
    errors: list[dict[str, str]] = []
    items: list[WriteItem] = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        contact_id, company_id = str(pair["contactCRMId"]), str(pair["companyCRMId"])
        problem = None
        if not is_guid(contact_id):
            problem = "Contact not found"
        elif not is_guid(company_id):
            problem = "Company not found"
        if problem:
            errors.append({"contactCRMId": contact_id, "companyCRMId": company_id, "error": problem})
            continue
        key = (contact_id.lower(), company_id.lower())
        if key in seen:
            continue
        seen.add(key)
        items.append(WriteItem(crm_id=key[0], company_id=key[1], matched=True))
    if items:
        _enqueue(ctx, _message(ctx, "associate", "association", items, {}))
    body: dict[str, Any] = {"success": bool(items) or not errors, "created": len(items)}
    if errors:
        body["errors"] = errors
    return body


def batch_get(ctx: WorkspaceContext, kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """`/…/batch`: current Dynamics values by crmId, in Genesy's field names, for the ids that exist."""
    entity: EntityKind = ctx.entity(kind)
    wanted = [i for i in dict.fromkeys(ids) if is_guid(i)]
    if not wanted:
        return []
    resolved = alias_store(ctx).resolve(ctx.workspace.id, kind, wanted)
    mapping = _export_mapping(ctx, kind)
    sync_back = ctx.mappings.sync.company_sync_back if kind == "company" else ctx.mappings.sync.contact_sync_back
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
