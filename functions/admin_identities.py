"""Admin API: the Genesy identities seen in exports and activities, and whom each resolves to now.

`GET manage/workspaces/{workspace_id}/identities` lists every owner (`ownerId`, the owner field) and sender
seen in the workspace with its resolution — mapped, auto-matched by e-mail, the default owner, or none —
and the Dynamics user it resolves to. Function-key protected, under `manage/` like the rest of the admin API.
"""

from __future__ import annotations

import azure.functions as func

from shared.platform.http import handle_errors, json_response
from shared.services import preview
from shared.services.root import ServicesProvider

__all__ = ["blueprint"]

_AUTH = func.AuthLevel.FUNCTION


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.function_name("manage_identities")
    @bp.route(route="manage/workspaces/{workspace_id}/identities", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def identities(req: func.HttpRequest) -> func.HttpResponse:
        reply = preview.identities(services(), req.route_params["workspace_id"])
        return json_response(reply.model_dump(mode="json"))

    return bp
