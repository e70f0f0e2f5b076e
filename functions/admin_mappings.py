"""Admin API for the four mapping sections: read with ETag, replace with If-Match, history.

Function-key protected (`AuthLevel.FUNCTION`), under `manage/`. PUT without If-Match is refused with
428 so that no admin silently overwrites another's change; a stale If-Match gets 412. A PUT is checked
against the environment's live Dynamics metadata and the other sections first
(`shared.services.validation`): any error answers 422 with every problem and saves nothing; warnings
come back with the saved section.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from mapping_store.store import SECTIONS, MappingStore
from shared.platform.errors import BadRequest
from shared.platform.http import handle_errors, json_response, read_json
from shared.services.root import ServicesProvider
from shared.services.validation import save_section

__all__ = ["blueprint"]


_AUTH = func.AuthLevel.FUNCTION

_ENVELOPE = {"section", "version", "etag", "updated_at", "updated_by", "document", "warnings"}


def _ids(req: func.HttpRequest) -> tuple[str, str]:
    return req.route_params.get("workspace_id", ""), req.route_params.get("section", "")


def _document(body: Any) -> Any:
    """The document to store: the body itself, or the `document` of a GET reply sent back as is."""
    if isinstance(body, dict) and "document" in body and set(body) <= _ENVELOPE:
        return body["document"]
    return body


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    def _store() -> MappingStore:
        return services().store

    @bp.function_name("manage_get_mapping")
    @bp.route(route="manage/workspaces/{workspace_id}/mappings/{section}", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def get_mapping(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id, section = _ids(req)
        current = _store().get_section(workspace_id, section)
        return json_response(current.body(), headers={"ETag": current.etag})

    @bp.function_name("manage_put_mapping")
    @bp.route(route="manage/workspaces/{workspace_id}/mappings/{section}", methods=["PUT"], auth_level=_AUTH)
    @handle_errors
    def put_mapping(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id, section = _ids(req)
        _store().get_section(workspace_id, section)  # 404 for an unknown workspace/section before body errors
        actor = req.headers.get("x-actor") or "admin"
        document = _document(read_json(req))
        result = save_section(services(), workspace_id, section, document, req.headers.get("if-match"), actor)
        return json_response(result.reply().model_dump(mode="json"), headers={"ETag": result.saved.etag})

    @bp.function_name("manage_mapping_history")
    @bp.route(route="manage/workspaces/{workspace_id}/mappings/{section}/history", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def mapping_history(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id, section = _ids(req)
        raw = req.params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            raise BadRequest(
                "limit: must be a whole number from 1 to 500",
                details=[{"field": "limit", "message": "must be a whole number from 1 to 500"}],
            )
        entries = _store().history(workspace_id, section, int(raw))
        return json_response({"section": section, "entries": [entry.body() for entry in entries]})

    @bp.function_name("manage_all_mappings")
    @bp.route(route="manage/workspaces/{workspace_id}/mappings", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def all_mappings(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id = req.route_params.get("workspace_id", "")
        store = _store()
        sections = {name: store.get_section(workspace_id, name).body() for name in SECTIONS}
        return json_response({"workspace_id": workspace_id, "sections": sections})

    return bp
