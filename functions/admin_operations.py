"""Admin API for running the sync: health, log, retry, dead-letter replay, export preview, validation.

Function-key protected, under `manage/` like the rest of the admin API.
"""

from __future__ import annotations

from typing import Any, Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from shared.domain.genesy_models import CompanyIn, ContactIn, ExportValues
from shared.platform.errors import BadRequest, NotFound
from shared.platform.http import handle_errors, json_response, parse_body, read_json
from shared.services import operations
from shared.services.root import ServicesProvider

__all__ = ["blueprint"]


_AUTH = func.AuthLevel.FUNCTION

_STATUSES = {"accepted", "created", "updated", "skipped", "failed", "ambiguous", "retrying"}

_KINDS = {"contact", "company", "association", "campaign"}


def _param(req: func.HttpRequest, name: str, allowed: set[str]) -> str | None:
    value: str | None = req.params.get(name)
    if value is not None and value not in allowed:
        raise BadRequest(f"{name}: must be one of {', '.join(sorted(allowed))}")
    return value


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    class RetryRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["contact", "company", "association"] | None = None
        keys: list[str] | None = Field(default=None, max_length=1000)
        statuses: list[Literal["failed", "retrying"]] = Field(default=["failed", "retrying"], min_length=1)

    class PreviewRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["contact", "company"]
        records: list[dict[str, Any]] = Field(min_length=1, max_length=100)
        exportValues: ExportValues = Field(default_factory=dict)

    @bp.function_name("manage_sync_health")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-health", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def sync_health(req: func.HttpRequest) -> func.HttpResponse:
        return json_response(operations.sync_health(services(), req.route_params["workspace_id"]))

    @bp.function_name("manage_sync_log")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-log", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def sync_log(req: func.HttpRequest) -> func.HttpResponse:
        limit_text = req.params.get("limit", "200")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            raise BadRequest("limit: must be a whole number from 1 to 1000")
        entries = operations.sync_log(
            services(),
            req.route_params["workspace_id"],
            status=_param(req, "status", _STATUSES),
            kind=_param(req, "kind", _KINDS),
            limit=int(limit_text),
        )
        return json_response({"entries": entries})

    @bp.function_name("manage_sync_retry")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-log/retry", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def sync_retry(req: func.HttpRequest) -> func.HttpResponse:
        body = parse_body(req, RetryRequest) if (req.get_body() or b"").strip() else RetryRequest()
        outcome = operations.retry_failed(
            services(), req.route_params["workspace_id"], statuses=body.statuses, kind=body.kind, keys=body.keys
        )
        return json_response(outcome, status=202)

    @bp.function_name("manage_replay_dead_letters")
    @bp.route(route="manage/queues/{queue}/replay-dead-letters", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def replay(req: func.HttpRequest) -> func.HttpResponse:
        settings = services().settings
        queue = req.route_params["queue"]
        if queue not in (settings.writes_queue, settings.campaign_queue):
            raise NotFound(f"queue: no queue named '{queue}'")
        return json_response({"queue": queue, "replayed": operations.replay_dead_letters(services(), queue)})

    @bp.function_name("manage_preview_export")
    @bp.route(route="manage/workspaces/{workspace_id}/preview", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def preview(req: func.HttpRequest) -> func.HttpResponse:
        body = parse_body(req, PreviewRequest)
        model = CompanyIn if body.kind == "company" else ContactIn
        records = []
        for index, raw in enumerate(body.records):
            try:
                records.append(model.model_validate(raw).fields())
            except ValueError as exc:
                raise BadRequest(f"records[{index}]: {exc}") from None
        ctx = services().workspace(req.route_params["workspace_id"])
        return json_response({"records": operations.preview_export(ctx, body.kind, records, body.exportValues)})

    @bp.function_name("manage_validate_mappings")
    @bp.route(route="manage/workspaces/{workspace_id}/validate", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def validate(req: func.HttpRequest) -> func.HttpResponse:
        if (req.get_body() or b"").strip():
            read_json(req)  # tolerated, ignored: validation always checks the stored mappings
        return json_response(operations.validate_mappings(services(), req.route_params["workspace_id"]))

    return bp
