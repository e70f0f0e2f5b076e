"""Genesy Custom CRM task endpoints: create, read, update/complete, and their batch forms."""

from __future__ import annotations

import azure.functions as func

from shared.domain.genesy_models import IdsRequest, TaskCreate, TaskPatch, TasksBatchPatch
from shared.platform.http import genesy_call, json_response, parse_body
from shared.services import tasks
from shared.services.root import ServicesProvider

ANON = func.AuthLevel.ANONYMOUS


def _task_id(req: func.HttpRequest) -> str:
    task_id = str(req.route_params.get("id", ""))
    if task_id.lower() == "batch":  # the literal route wins; never treat "batch" as an id
        raise tasks.task_not_found(task_id)
    return task_id


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="tasks", methods=["POST"], auth_level=ANON)
    @genesy_call
    def tasks_create(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, TaskCreate)
        return json_response(tasks.create_task(ctx, body), status=201)

    @bp.route(route="tasks/batch", methods=["POST"], auth_level=ANON)
    @genesy_call
    def tasks_batch_get(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, IdsRequest)
        return json_response(tasks.batch_get_tasks(ctx, body.ids))

    @bp.route(route="tasks/batch", methods=["PATCH"], auth_level=ANON)
    @genesy_call
    def tasks_batch_patch(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, TasksBatchPatch)
        return json_response(tasks.batch_patch_tasks(ctx, body.ids, body.completed))

    @bp.route(route="tasks/{id}", methods=["GET"], auth_level=ANON)
    @genesy_call
    def tasks_get(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        return json_response(tasks.get_task(ctx, _task_id(req)))

    @bp.route(route="tasks/{id}", methods=["PATCH"], auth_level=ANON)
    @genesy_call
    def tasks_patch(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        task_id = _task_id(req)
        body = parse_body(req, TaskPatch)
        return json_response(tasks.patch_task(ctx, task_id, body))

    return bp
