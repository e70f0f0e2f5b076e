"""HTTP plumbing shared by every trigger: JSON replies, body parsing, and the error boundary.

Everything a caller can send wrong becomes a 4xx with `{error, message}` naming the field; only our
own faults are 500, and those are logged with a correlation id the reply repeats.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.errors import AppError, BadRequest
from shared.logs import logger

__all__ = [
    "MAX_BODY_BYTES",
    "error_response",
    "field_path",
    "genesy_call",
    "handle_errors",
    "json_response",
    "parse_body",
    "read_json",
    "validation_details",
]

log = logger("http")

MAX_BODY_BYTES = 5 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_response(error: AppError, correlation_id: str | None = None) -> func.HttpResponse:
    body = error.body()
    headers = {"x-correlation-id": correlation_id} if correlation_id else None
    return json_response(body, status=error.status, headers=headers)


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("contacts", 3, "email")` → `contacts[3].email`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": field_path(tuple(err["loc"])), "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validation_error(exc: ValidationError, what: str = "body") -> BadRequest:
    details = validation_details(exc)
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return BadRequest(f"{first['field']}: {first['message']}{more}", details=details, code="invalid_" + what)


def read_json(req: func.HttpRequest) -> Any:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body is larger than {MAX_BODY_BYTES} bytes", code="body_too_large")
    if not raw.strip():
        raise BadRequest("body: a JSON body is required", code="invalid_body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body: not valid JSON ({exc})", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply", code="invalid_json") from None


def parse_body(req: func.HttpRequest, model: type[M]) -> M:
    """Parse and validate the JSON body into `model`, turning any problem into a 400 naming the field."""
    data = read_json(req)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


Handler = Callable[..., func.HttpResponse]


def handle_errors(fn: Handler) -> Handler:
    """Error boundary for HTTP triggers: AppError → its status; anything else → logged 500."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return fn(*args, **kwargs)
        except AppError as exc:
            return error_response(exc)
        except ValidationError as exc:
            return error_response(validation_error(exc))
        except Exception:
            correlation_id = str(uuid.uuid4())
            log.exception("unhandled error in %s (correlation id %s)", fn.__name__, correlation_id)
            return error_response(AppError(f"internal error; quote correlation id {correlation_id}"), correlation_id)

    return wrapper


def genesy_call(fn: Handler) -> Handler:
    """Error boundary plus a correlation id for a Genesy call (taken from `x-correlation-id` or new)."""
    from shared.dataverse.correlation import correlation_scope

    guarded = handle_errors(fn)

    @functools.wraps(fn)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        supplied = (req.headers.get("x-correlation-id") or "").strip()
        correlation_id = supplied[:64] if supplied.replace("-", "").isalnum() else str(uuid.uuid4())
        with correlation_scope(correlation_id):
            response = guarded(req)
        response.headers["x-correlation-id"] = correlation_id
        return response

    return wrapper
