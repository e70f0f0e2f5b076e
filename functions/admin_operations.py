"""Admin API for running the sync: health, log, retry, reconciliation, dead-letter replay, export preview,
validation.

Function-key protected, under `manage/` like the rest of the admin API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from shared.platform.errors import BadRequest, NotFound
from shared.platform.http import handle_errors, json_response, parse_body, read_json
from shared.services import operations, validation
from shared.services import preview as export_preview
from shared.services.root import ServicesProvider

__all__ = ["ReconcileRequest", "SyncLogQuery", "blueprint"]

_Q = TypeVar("_Q", bound=BaseModel)


_AUTH = func.AuthLevel.FUNCTION

_STATUSES = {"accepted", "created", "updated", "skipped", "failed", "ambiguous", "retrying", "deleted_in_dynamics"}

_KINDS = {"contact", "company", "association", "campaign"}


def _param(req: func.HttpRequest, name: str, allowed: set[str]) -> str | None:
    value: str | None = req.params.get(name)
    if value is not None and value not in allowed:
        raise BadRequest(f"{name}: must be one of {', '.join(sorted(allowed))}")
    return value


class SyncLogQuery(BaseModel):
    """`GET manage/workspaces/{workspace_id}/sync-log` query parameters (all optional)."""

    model_config = ConfigDict(extra="ignore")  # `code=` and anything else a client adds
    limit: int = Field(default=200, ge=1, le=1000, description="Rows in this page (newest first).")
    since: datetime | None = Field(default=None, description="ISO 8601; only outcomes at or after it (naive = UTC).")
    until: datetime | None = Field(default=None, description="ISO 8601; only outcomes at or before it (naive = UTC).")
    continuation: str | None = Field(default=None, max_length=2000, description="A previous page's `next`.")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        since = info.data.get("since")
        if info.field_name == "until" and since is not None and since > value:
            raise ValueError("must not be before since")
        return value


class ReconcileRequest(BaseModel):
    """`POST manage/workspaces/{workspace_id}/reconcile` body (optional)."""

    model_config = ConfigDict(extra="forbid")
    stale_after_seconds: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Re-queue records left `retrying` for longer than this."
    )


def _query(req: func.HttpRequest, model: type[_Q]) -> _Q:
    """The request's query parameters as `model`: a 400 naming the parameter when one is wrong."""
    try:
        return model.model_validate(dict(req.params))
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = ".".join(str(part) for part in problem["loc"]) or "query"
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise BadRequest(f"{name}: {message}") from None


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    class RetryRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["contact", "company", "association"] | None = None
        keys: list[str] | None = Field(default=None, max_length=1000)
        statuses: list[Literal["failed", "retrying"]] = Field(default=["failed", "retrying"], min_length=1)


    @bp.function_name("manage_sync_health")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-health", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def sync_health(req: func.HttpRequest) -> func.HttpResponse:
        return json_response(operations.sync_health(services(), req.route_params["workspace_id"]))

    @bp.function_name("manage_sync_log")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-log", methods=["GET"], auth_level=_AUTH)
    @handle_errors
    def sync_log(req: func.HttpRequest) -> func.HttpResponse:
        status, kind = _param(req, "status", _STATUSES), _param(req, "kind", _KINDS)
        query = _query(req, SyncLogQuery)
        page = operations.sync_log(
            services(),
            req.route_params["workspace_id"],
            status=status,
            kind=kind,
            since=query.since,
            until=query.until,
            limit=query.limit,
            continuation=query.continuation,
        )
        return json_response(page)

    @bp.function_name("manage_sync_retry")
    @bp.route(route="manage/workspaces/{workspace_id}/sync-log/retry", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def sync_retry(req: func.HttpRequest) -> func.HttpResponse:
        body = parse_body(req, RetryRequest) if (req.get_body() or b"").strip() else RetryRequest()
        outcome = operations.retry_failed(
            services(), req.route_params["workspace_id"], statuses=body.statuses, kind=body.kind, keys=body.keys
        )
        return json_response(outcome, status=202)

    @bp.function_name("manage_reconcile")
    @bp.route(route="manage/workspaces/{workspace_id}/reconcile", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def reconcile(req: func.HttpRequest) -> func.HttpResponse:
        body = parse_body(req, ReconcileRequest) if (req.get_body() or b"").strip() else ReconcileRequest()
        workspace_id = req.route_params["workspace_id"]
        stale_after = timedelta(seconds=body.stale_after_seconds)
        report = operations.reconcile_workspace(services(), workspace_id, stale_after=stale_after)
        return json_response({"workspace_id": workspace_id, **report})

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
        body = parse_body(req, export_preview.PreviewRequest)
        ctx = services().workspace(req.route_params["workspace_id"])
        return json_response(export_preview.preview(ctx, body).model_dump(mode="json"))

    @bp.function_name("manage_validate_mappings")
    @bp.route(route="manage/workspaces/{workspace_id}/validate", methods=["POST"], auth_level=_AUTH)
    @handle_errors
    def validate(req: func.HttpRequest) -> func.HttpResponse:
        if (req.get_body() or b"").strip():
            read_json(req)  # tolerated, ignored: validation always checks the stored mappings
        report = validation.validate_mappings(services(), req.route_params["workspace_id"])
        return json_response(report.model_dump(mode="json"))

    return bp
