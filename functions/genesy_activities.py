"""Genesy Custom CRM activity logging (`POST /activities`) and read-back (`GET /activities/{id}`)."""

from __future__ import annotations

import azure.functions as func

from shared.domain.genesy_models import ActivityCreate
from shared.platform.http import genesy_call, json_response, parse_body
from shared.services.activities import get_activity, log_activity
from shared.services.root import ServicesProvider


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="activities", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @genesy_call
    def activities_create(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, ActivityCreate)
        activity = log_activity(ctx, body)
        return json_response(activity, status=201 if activity.get("created") else 200)

    @bp.route(route="activities/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    @genesy_call
    def activities_get(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        return json_response(get_activity(ctx, str(req.route_params.get("id", ""))))

    return bp
