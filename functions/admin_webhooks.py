"""Admin API for Genesy webhooks: issue (rotate) a workspace's webhook secret, list the deliveries received,
and run stored deliveries through the current parser again.

Function-key protected (`AuthLevel.FUNCTION`), under `manage/` like the other admin routes.
"""

from __future__ import annotations

from typing import TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.platform.errors import BadRequest
from shared.platform.http import handle_errors, json_response, parse_body, validation_error
from shared.services.root import ServicesProvider
from shared.services.webhooks import (
    DeliveriesQuery,
    ReprocessRequest,
    WebhookSecretRequest,
    issue_secret,
    list_deliveries,
    reprocess_deliveries,
)

__all__ = ["blueprint"]

_AUTH = func.AuthLevel.FUNCTION
_M = TypeVar("_M", bound=BaseModel)


def _query(req: func.HttpRequest, model: type[_M]) -> _M:
    """The request's query parameters as `model`: a 400 naming the parameter when one is wrong."""
    try:
        return model.model_validate({k: v for k, v in req.params.items() if v != ""})
    except ValidationError as exc:
        raise validation_error(exc, "query") from None


def _optional_body(req: func.HttpRequest, model: type[_M]) -> _M:
    if not (req.get_body() or b"").strip():
        return model()
    return parse_body(req, model)


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.function_name("manage_webhook_secret")
    @bp.route(route="manage/workspaces/{workspace_id}/webhook-secret", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def webhook_secret(req: func.HttpRequest) -> func.HttpResponse:
        body = _optional_body(req, WebhookSecretRequest)
        issued = issue_secret(services(), req.route_params.get("workspace_id", ""), body.grace_seconds)
        return json_response(issued.model_dump(mode="json"), status=201)

    @bp.function_name("manage_webhook_deliveries")
    @bp.route(route="manage/workspaces/{workspace_id}/webhook-deliveries", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def webhook_deliveries(req: func.HttpRequest) -> func.HttpResponse:
        query = _query(req, DeliveriesQuery)
        listed = list_deliveries(services(), req.route_params.get("workspace_id", ""), query)
        return json_response(listed.model_dump(mode="json"))

    @bp.function_name("manage_webhook_reprocess")
    @bp.route(route="manage/workspaces/{workspace_id}/webhook-deliveries/reprocess", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def webhook_reprocess(req: func.HttpRequest) -> func.HttpResponse:
        request = parse_body(req, ReprocessRequest)
        if request.ids is not None and any(not i.strip() for i in request.ids):
            raise BadRequest("ids: an id is empty")
        reply = reprocess_deliveries(services(), req.route_params.get("workspace_id", ""), request)
        return json_response(reply.model_dump(mode="json"))

    return bp
