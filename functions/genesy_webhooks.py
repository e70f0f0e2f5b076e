"""Genesy's conversation-events webhooks (`POST /webhooks/genesy/{workspace_id}`): the URL an admin gives
Genesy when subscribing (`POST https://openapi.genesy.ai/v1/webhooks`).

Anonymous auth level: the delivery carries the workspace's webhook secret verbatim in `X-Webhook-Secret`
(issued through `POST /manage/workspaces/{workspace_id}/webhook-secret`). A wrong or missing secret, or an
unknown workspace, is one 401 and nothing is stored; otherwise the raw delivery is stored, processed once
and answered 202 `{accepted, duplicate, status}`. See docs/genesy-webhooks.md.
"""

from __future__ import annotations

import azure.functions as func

from shared.platform.http import genesy_call, json_response
from shared.services.root import ServicesProvider
from shared.services.webhooks import receive_webhook

__all__ = ["blueprint"]


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's function, calling the use case with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.function_name("genesy_webhook")
    @bp.route(route="webhooks/genesy/{workspace_id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @genesy_call
    def genesy_webhook(req: func.HttpRequest) -> func.HttpResponse:
        workspace_id = req.route_params.get("workspace_id", "")
        reply = receive_webhook(services(), workspace_id, req.headers, req.get_body() or b"")
        return json_response(reply.model_dump(mode="json"), status=202)

    return bp
