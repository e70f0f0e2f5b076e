"""Admin API for mapping editors: live Dynamics columns, the environment's users, a connection test.

Function-key protected, under `manage/` like the rest of the admin API. Replies are the models of
`shared.services.metadata`; Dynamics not answering is a 503 (`dynamics_unavailable`), except for the
connection test, which reports what failed in its 200 reply.
"""

from __future__ import annotations

import azure.functions as func

from shared.platform.errors import BadRequest
from shared.platform.http import handle_errors, json_response, read_json
from shared.services import metadata
from shared.services.root import ServicesProvider

__all__ = ["blueprint"]


_AUTH = func.AuthLevel.FUNCTION


def _refresh(req: func.HttpRequest) -> bool:
    value = (req.params.get("refresh") or "false").strip().lower()
    if value not in ("true", "false"):
        raise BadRequest(
            "refresh: must be true or false", details=[{"field": "refresh", "message": "must be true or false"}]
        )
    return value == "true"


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.function_name("manage_table_metadata")
    @bp.route(route="manage/workspaces/{workspace_id}/metadata/{table}", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def table_metadata(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id, table = req.route_params.get("workspace_id", ""), req.route_params.get("table", "")
        reply = metadata.table_metadata(services(), workspace_id, table, refresh=_refresh(req))
        return json_response(reply.model_dump(mode="json"))

    @bp.function_name("manage_workspace_users")
    @bp.route(route="manage/workspaces/{workspace_id}/users", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def workspace_users(req: func.HttpRequest) -> func.HttpResponse:
        reply = metadata.workspace_users(services(), req.route_params.get("workspace_id", ""))
        return json_response(reply.model_dump(mode="json"))

    @bp.function_name("manage_connection_test")
    @bp.route(route="manage/workspaces/{workspace_id}/connection-test", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def connection_test(req: func.HttpRequest) -> func.HttpResponse:
        if (req.get_body() or b"").strip():
            read_json(req)  # tolerated, ignored: the test takes no options
        reply = metadata.connection_test(services(), req.route_params.get("workspace_id", ""))
        return json_response(reply.model_dump(mode="json"))

    return bp
