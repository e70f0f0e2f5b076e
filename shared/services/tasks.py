"""Genesy tasks ↔ Dataverse `task` activities, synchronously (Genesy needs the task id at once).

- Regarding: the contact (or lead, in lead workspaces) when `contactId` is given, else the account.
  Ids are resolved through the aliases first. Dataverse holds one regarding record, so a read gives
  back `contactId` *or* `companyId`.
- Owner: `ownerId` when it is an enabled Dynamics user (or mapped in the user mapping), else the
  mapping's default owner; otherwise Dataverse makes the app's user the owner.
- Type: a stock `task` has no column for Genesy's free-text type, and the custom-column route needs
  a solution change; it is kept as a first description line `[Genesy type: call]`, visible to
  Dynamics users and parsed back on every read.
- State is always read back from Dynamics, so a task completed in Dynamics is `completed` in Genesy
  (`completedAt` = `actualend`). Completing sets statecode 1/statuscode 5 and `actualend`; reopening
  sets statecode 0/statuscode 2.
- A task about a contact or company we accepted but have not written yet (an id we issued that is not
  in Dynamics) is accepted with its final id, queued behind that record in the workspace's ordered
  session, and answered from what we accepted until the worker writes it (`shared.storage.pending`). An id we
  never issued that Dynamics does not have is Genesy's 404.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.dataverse.activities import TASK_COMPLETED
from shared.dataverse.budget import Budget
from shared.dataverse.client import WriteSpec
from shared.dataverse.errors import DataverseError, RecordConflict, RecordNotFound, ValidationFailed
from shared.domain.entities import is_guid, issued_kind, new_record_id
from shared.domain.genesy_models import TaskCreate, TaskPatch
from shared.domain.mapping_engine import resolve_owner
from shared.domain.odata import odata_literal
from shared.domain.write_messages import WriteItem as QueuedItem
from shared.domain.write_messages import WriteMessage
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import BadRequest, NotFound, UpstreamUnavailable, regarding_not_found
from shared.services.export import enqueue, is_pending, refuse_deleted
from shared.services.root import WorkspaceContext, enabled_users

__all__ = [
    "TASK_OPEN",
    "TYPE_PATTERN",
    "batch_get_tasks",
    "batch_patch_tasks",
    "create_task",
    "get_task",
    "patch_task",
    "task_not_found",
    "to_genesy",
    "write_queued_task",
]

TASK_OPEN = {"statecode": 0, "statuscode": 2}
TASK_SELECT = [
    "activityid",
    "subject",
    "description",
    "scheduledend",
    "actualend",
    "statecode",
    "statuscode",
    "_regardingobjectid_value",
    "_ownerid_value",
]
TYPE_PATTERN = re.compile(r"\A\[Genesy type: ([^\]\n]{1,100})\](?:\r?\n|\Z)")
_SUBJECT_MAX = 200
_DESCRIPTION_MAX = 2000
_REGARDING_TYPE = "_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"


def task_not_found(task_id: str) -> NotFound:
    return NotFound(f"No task exists with ID: {task_id}", code="Task not found")


def _budget(ctx: WorkspaceContext) -> Budget:
    return Budget(ctx.settings.match_timeout_seconds * 2)


def _instant(value: Any) -> str | None:
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _compose_description(task_type: str | None, description: str | None) -> str | None:
    text = description or ""
    if task_type and task_type.strip():
        clean = " ".join(task_type.replace("]", ")").split())[:100]
        text = f"[Genesy type: {clean}]" + (f"\n{text}" if text else "")
    if not text:
        return None
    return text if len(text) <= _DESCRIPTION_MAX else text[: _DESCRIPTION_MAX - 1] + "…"


def _split_description(text: str | None) -> tuple[str | None, str | None]:
    """(type, description) from a stored description."""
    if not text:
        return None, None
    found = TYPE_PATTERN.match(text)
    if not found:
        return None, text
    rest = text[found.end() :]
    return found.group(1).strip(), rest or None


def to_genesy(row: Mapping[str, Any], regarding_kinds: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Dataverse task row in Genesy's shape."""
    task_type, description = _split_description(row.get("description"))
    regarding = row.get("_regardingobjectid_value")
    regarding_kind = row.get(_REGARDING_TYPE) or (regarding_kinds or {}).get(str(regarding or "").lower())
    completed = row.get("statecode") == 1
    return {
        "id": str(row["activityid"]).lower(),
        "subject": row.get("subject"),
        "description": description,
        "type": task_type,
        "ownerId": row.get("_ownerid_value"),
        "dueDate": _instant(row.get("scheduledend")),
        "contactId": regarding if regarding and regarding_kind in ("contact", "lead") else None,
        "companyId": regarding if regarding and regarding_kind == "account" else None,
        "completed": completed,
        "completedAt": _instant(row.get("actualend")) if completed else None,
    }


def _regarding(ctx: WorkspaceContext, contact_id: str | None, company_id: str | None) -> tuple[str, str] | None:
    """(logical name, Dynamics id) of the record the task is about, aliases resolved; 400 naming a malformed
    id."""
    for field, value in (("contactId", contact_id), ("companyId", company_id)):
        if value is not None and value.strip() and not is_guid(value):
            raise BadRequest(
                f"{field}: '{value}' is not a Dynamics record id",
                details=[{"field": field, "message": "not a Dynamics record id"}],
                code="invalid_body",
            )
    aliases = ctx.services.aliases
    if contact_id and contact_id.strip():
        resolved = aliases.resolve(ctx.workspace.id, "contact", [contact_id.strip()])
        return ctx.contact.logical_name, resolved[contact_id.strip().lower()]
    if company_id and company_id.strip():
        resolved = aliases.resolve(ctx.workspace.id, "company", [company_id.strip()])
        return "account", resolved[company_id.strip().lower()]
    return None


def _owner(ctx: WorkspaceContext, owner_id: str | None) -> str | None:
    """An enabled user by id, by the user mapping or auto-matched by e-mail; else the default owner."""
    return resolve_owner({"ownerId": owner_id}, ctx.mappings.users, enabled_users(ctx), creating=True).owner_id


def _regarding_kinds(ctx: WorkspaceContext, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Which table each regarding id belongs to, for rows that came without the lookup annotation."""
    ids = sorted(
        {
            str(r["_regardingobjectid_value"]).lower()
            for r in rows
            if r.get("_regardingobjectid_value") and not r.get(_REGARDING_TYPE)
        }
    )
    if not ids:
        return {}
    contact = ctx.contact
    kinds: dict[str, str] = {}
    people = ctx.client.query_in(
        contact.entity_set,
        contact.primary_id,
        ids,
        select=[contact.primary_id],
        key=contact.primary_id,
        budget=_budget(ctx),
    )
    for row in people:
        kinds[str(row[contact.primary_id]).lower()] = contact.logical_name
    for rid in ids:
        kinds.setdefault(rid, "account")
    return kinds


def _read(ctx: WorkspaceContext, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Genesy-shaped tasks by id, one query for all of them."""
    wanted = sorted({i.strip().lower() for i in ids if is_guid(i)})
    if not wanted:
        return {}
    try:
        rows = ctx.client.query_in(
            "tasks", "activityid", wanted, select=TASK_SELECT, key="activityid", budget=_budget(ctx)
        )
        kinds = _regarding_kinds(ctx, rows)
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    return {str(r["activityid"]).lower(): to_genesy(r, kinds) for r in rows}


def _regarding_kind(ctx: WorkspaceContext, regarding: tuple[str, str]) -> str:
    return "company" if regarding[0] == "account" else "contact"


def create_task(ctx: WorkspaceContext, body: TaskCreate) -> dict[str, Any]:
    """`POST /tasks`: create the task in Dynamics and return it as stored — or, when the record it is
    about is still on its way to Dynamics, accept it with its final id and queue it behind that record."""
    regarding = _regarding(ctx, body.contactId, body.companyId)
    if regarding is not None:
        refuse_deleted(ctx, _regarding_kind(ctx, regarding), regarding[1])
    if regarding is not None and is_pending(ctx, _regarding_kind(ctx, regarding), regarding[1]):
        return _queue_task(ctx, body, regarding)
    try:
        owner = _owner(ctx, body.ownerId)
        task_id = ctx.client.create_task(
            subject=body.subject[:_SUBJECT_MAX],
            description=_compose_description(body.type, body.description),
            regarding=regarding,
            scheduled_end=body.dueDate,
            owner_id=owner,
            budget=_budget(ctx),
        )
    except RecordNotFound:
        raise regarding_not_found(body.contactId, body.companyId) from None
    except ValidationFailed as exc:
        raise BadRequest(f"Dynamics refused the task: {exc.message}", code="invalid_task") from None
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    created = _read(ctx, [task_id]).get(task_id)
    if created is None:
        raise UpstreamUnavailable(f"task {task_id} was created but could not be read back")
    return created


def _queue(ctx: WorkspaceContext, operation: str, task_id: str, fields: dict[str, Any]) -> None:
    message = WriteMessage.model_validate(
        {
            "operation": operation,
            "workspace_id": ctx.workspace.id,
            "kind": "task",
            "items": [QueuedItem(crm_id=task_id, fields=fields)],
            "correlation_id": current_correlation_id(),
        }
    )
    enqueue(ctx, message)


def _queue_task(ctx: WorkspaceContext, body: TaskCreate, regarding: tuple[str, str]) -> dict[str, Any]:
    task_id = new_record_id(ctx.workspace.id, "task", str(uuid.uuid4()))
    try:
        owner = _owner(ctx, body.ownerId)
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    description = _compose_description(body.type, body.description)
    view = {
        "id": task_id,
        "subject": body.subject[:_SUBJECT_MAX],
        "description": _split_description(description)[1],
        "type": _split_description(description)[0],
        "ownerId": owner,
        "dueDate": _instant(body.dueDate),
        "contactId": body.contactId.strip().lower() if regarding[0] != "account" and body.contactId else None,
        "companyId": body.companyId.strip().lower() if regarding[0] == "account" and body.companyId else None,
        "completed": False,
        "completedAt": None,
    }
    fields = {
        "subject": view["subject"],
        "description": description,
        "regarding_kind": _regarding_kind(ctx, regarding),
        "regarding_id": regarding[1],
        "scheduled_end": _instant(body.dueDate),
        "owner_id": owner,
    }
    ctx.services.pending.put(ctx.workspace.id, "task", task_id, view)
    _queue(ctx, "task", task_id, fields)
    return view


def write_queued_task(
    ctx: WorkspaceContext, operation: str, task_id: str, fields: Mapping[str, Any], budget: Budget
) -> None:
    """The worker's side of a queued task: create it (regarding resolved through the aliases now), or apply a
    change Genesy made while it was queued. Raises the Dataverse error; a repeat of a create is a no-op."""
    pending = ctx.services.pending
    if operation == "task_update":
        ctx.client.update("tasks", task_id, dict(fields["body"]), budget=budget)
        pending.remove(ctx.workspace.id, "task", task_id)
        return
    kind = str(fields["regarding_kind"])
    regarding_id = ctx.services.aliases.resolve(ctx.workspace.id, kind, [str(fields["regarding_id"])])
    logical = "account" if kind == "company" else ctx.contact.logical_name
    due = fields.get("scheduled_end")
    with contextlib.suppress(RecordConflict):  # a redelivery: the task exists already
        ctx.client.create_task(
            subject=str(fields["subject"]),
            description=fields.get("description"),
            regarding=(logical, regarding_id[str(fields["regarding_id"]).lower()]),
            scheduled_end=datetime.fromisoformat(str(due).replace("Z", "+00:00")) if due else None,
            owner_id=fields.get("owner_id"),
            task_id=task_id,
            budget=budget,
        )
    pending.remove(ctx.workspace.id, "task", task_id)


def _read_all(ctx: WorkspaceContext, ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Tasks by id from Dynamics, plus the ones we accepted and have not written yet; and which are those."""
    found = _read(ctx, ids)
    queued = [
        i.strip().lower()
        for i in ids
        if is_guid(i) and i.strip().lower() not in found and issued_kind(ctx.workspace.id, i) == "task"
    ]
    pending = ctx.services.pending.get_many(ctx.workspace.id, "task", queued) if queued else {}
    return {**found, **pending}, set(pending)


def get_task(ctx: WorkspaceContext, task_id: str) -> dict[str, Any]:
    task = _read_all(ctx, [task_id])[0].get(task_id.strip().lower())
    if task is None:
        raise task_not_found(task_id)
    return task


def _patched_view(view: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """What a queued task will look like once `body` (a Dataverse change) is applied to it."""
    out = dict(view)
    if "subject" in body:
        out["subject"] = body["subject"]
    if "description" in body:
        out["type"], out["description"] = _split_description(body["description"])
    if "scheduledend" in body:
        out["dueDate"] = _instant(body["scheduledend"])
    if "statecode" in body:
        out["completed"] = body["statecode"] == 1
        out["completedAt"] = _instant(body.get("actualend")) if out["completed"] else None
    return out


def _patch_queued(ctx: WorkspaceContext, view: Mapping[str, Any], patch: TaskPatch) -> dict[str, Any]:
    body = _patch_body(view, patch)
    if not body:
        return dict(view)
    updated = _patched_view(view, body)
    ctx.services.pending.put(ctx.workspace.id, "task", str(view["id"]), updated)
    _queue(ctx, "task_update", str(view["id"]), {"body": body})
    return updated


def _patch_body(current: Mapping[str, Any], patch: TaskPatch) -> dict[str, Any]:
    body: dict[str, Any] = {}
    fields = patch.model_fields_set
    if "subject" in fields:
        if not patch.subject or not patch.subject.strip():
            raise BadRequest(
                "subject: must not be empty", details=[{"field": "subject", "message": "empty"}], code="invalid_body"
            )
        body["subject"] = patch.subject.strip()[:_SUBJECT_MAX]
    if "description" in fields or "type" in fields:
        body["description"] = _compose_description(
            patch.type if "type" in fields else current.get("type"),
            patch.description if "description" in fields else current.get("description"),
        )
    if "dueDate" in fields:
        body["scheduledend"] = odata_literal(patch.dueDate) if patch.dueDate else None
    if patch.completed is True and not current.get("completed"):
        body.update(TASK_COMPLETED)
        body["actualend"] = odata_literal(datetime.now(UTC))
    elif patch.completed is False and current.get("completed"):
        body.update(TASK_OPEN)
        body["actualend"] = None
    return body


def patch_task(ctx: WorkspaceContext, task_id: str, patch: TaskPatch) -> dict[str, Any]:
    """`PATCH /tasks/{id}`: update fields and/or complete or reopen; the task as stored afterwards."""
    found, queued = _read_all(ctx, [task_id])
    current = found.get(task_id.strip().lower())
    if current is None:
        raise task_not_found(task_id)
    if current["id"] in queued:
        return _patch_queued(ctx, current, patch)
    body = _patch_body(current, patch)
    if not body:
        return current
    try:
        ctx.client.update("tasks", current["id"], body, budget=_budget(ctx))
    except RecordNotFound:
        raise task_not_found(task_id) from None
    except ValidationFailed as exc:
        raise BadRequest(f"Dynamics refused the change: {exc.message}", code="invalid_task") from None
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    return get_task(ctx, task_id)


def _in_order(found: Mapping[str, dict[str, Any]], ids: Sequence[str]) -> list[dict[str, Any]]:
    ordered = dict.fromkeys(i.strip().lower() for i in ids)
    return [found[i] for i in ordered if i in found]


def batch_get_tasks(ctx: WorkspaceContext, ids: Sequence[str]) -> list[dict[str, Any]]:
    """`POST /tasks/batch`: the tasks that exist or are queued, in the order asked (unknown ids omitted)."""
    if not ids:
        return []
    return _in_order(_read_all(ctx, ids)[0], ids)


def batch_patch_tasks(ctx: WorkspaceContext, ids: Sequence[str], completed: bool) -> list[dict[str, Any]]:
    """`PATCH /tasks/batch`: complete (or reopen) many tasks in one batched write; the updated tasks."""
    if not ids:
        return []
    current, queued = _read_all(ctx, ids)
    patch = TaskPatch(completed=completed)
    writes: list[WriteSpec] = []
    for task_id, task in current.items():
        if task_id in queued:
            current[task_id] = _patch_queued(ctx, task, patch)
            continue
        body = _patch_body(task, patch)
        if body:
            writes.append((task_id, body, "update_only"))
    if not writes:
        return _in_order(current, ids)
    try:
        results = ctx.client.write_many("tasks", writes, budget=_budget(ctx))
    except DataverseError as exc:
        raise UpstreamUnavailable.from_error(exc) from None
    if any(r.retryable for r in results):
        raise UpstreamUnavailable("Dynamics was too busy to update every task; retry the call")
    written = _read(ctx, [str(w[0]) for w in writes])
    return _in_order({**current, **written}, ids)
