"""Admin API for workspaces: create (with the first API key), list, read, update, rotate keys.

Function-key protected (`AuthLevel.FUNCTION`); routes live under `manage/` because the Functions host
reserves `admin/`.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from mapping_store.store import MappingStore
from shared.domain.mappings import Workspace, WorkspaceCreate
from shared.platform.errors import BadRequest
from shared.platform.http import handle_errors, json_response, parse_body, read_json
from shared.services.root import ServicesProvider

__all__ = ["MAX_GRACE_SECONDS", "blueprint"]


MAX_GRACE_SECONDS = 30 * 86_400

_AUTH = func.AuthLevel.FUNCTION


def _actor(req: func.HttpRequest) -> str:
    return req.headers.get("x-actor") or "admin"


def _grace_seconds(req: func.HttpRequest) -> float | None:
    if not (req.get_body() or b"").strip():
        return None
    body: Any = read_json(req)
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object", details=[{"field": "body", "message": "not an object"}])
    unknown = sorted(set(body) - {"grace_seconds"})
    if unknown:
        raise BadRequest(
            f"{unknown[0]}: unknown field", details=[{"field": name, "message": "unknown field"} for name in unknown]
        )
    grace = body.get("grace_seconds")
    if grace is None:
        return None
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= MAX_GRACE_SECONDS:
        raise BadRequest(
            f"grace_seconds: must be a number from 0 to {MAX_GRACE_SECONDS}",
            details=[{"field": "grace_seconds", "message": f"must be a number from 0 to {MAX_GRACE_SECONDS}"}],
        )
    return float(grace)


def _workspace_reply(store: MappingStore, workspace: Workspace) -> func.HttpResponse:
    """A workspace with the ETag an update must send back as If-Match."""
    etag = store.workspace_etag(workspace.id)
    return json_response({"workspace": workspace.model_dump(mode="json")}, headers={"ETag": etag})


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    def _store() -> MappingStore:
        return services().store

    @bp.function_name("manage_create_workspace")
    @bp.route(route="manage/workspaces", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def create_workspace(req: func.HttpRequest) -> func.HttpResponse:
        spec = parse_body(req, WorkspaceCreate)
        workspace, api_key = _store().create_workspace(spec, _actor(req))
        body = {
            "workspace": workspace.model_dump(mode="json"),
            "api_key": api_key,
            "note": "shown once: store the API key now; only its hash is kept",
        }
        return json_response(body, status=201)

    @bp.function_name("manage_list_workspaces")
    @bp.route(route="manage/workspaces", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def list_workspaces(req: func.HttpRequest) -> func.HttpResponse:
        workspaces = _store().list_workspaces()
        return json_response({"workspaces": [w.model_dump(mode="json") for w in workspaces]})

    @bp.function_name("manage_get_workspace")
    @bp.route(route="manage/workspaces/{workspace_id}", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def get_workspace(req: func.HttpRequest) -> func.HttpResponse:
        store = _store()
        workspace_id = req.route_params.get("workspace_id", "")
        return _workspace_reply(store, store.get_workspace(workspace_id))

    @bp.function_name("manage_update_workspace")
    @bp.route(route="manage/workspaces/{workspace_id}", methods=["PATCH"], auth_level=_AUTH)
    @handle_errors
    def update_workspace(req: func.HttpRequest) -> func.HttpResponse:
        store = _store()
        workspace_id = req.route_params.get("workspace_id", "")
        store.get_workspace(workspace_id)
        return _workspace_reply(
            store, store.update_workspace(workspace_id, read_json(req), req.headers.get("if-match"))
        )

    @bp.function_name("manage_rotate_key")
    @bp.route(route="manage/workspaces/{workspace_id}/keys", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def rotate_key(req: func.HttpRequest) -> func.HttpResponse:
        grace = _grace_seconds(req)
        issued = _store().rotate_key(req.route_params.get("workspace_id", ""), grace)
        expire = issued.previous_keys_expire_at
        body = {
            "api_key": issued.api_key,
            "key_id": issued.key_id,
            "previous_keys_expire_at": expire.isoformat() if expire else None,
            "note": "shown once: store the API key now; only its hash is kept",
        }
        return json_response(body, status=201)

    return bp
