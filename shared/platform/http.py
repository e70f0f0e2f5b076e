"""HTTP plumbing shared by every trigger: JSON replies, body parsing, and the error boundary.

Everything a caller can send wrong becomes a 4xx with `{error, message}` naming the field; only our
own faults are 500, and those are logged with a correlation id the reply repeats.

The body boundary (`read_json`) refuses, as a 400 naming the body or the field, what no caller means and
what would break code further in: numbers Python cannot convert (integers of more than 4,300 digits),
`NaN`/`Infinity` and numbers out of float range, nesting deeper than `MAX_JSON_DEPTH`, and text holding
an unpaired UTF-16 surrogate (`"\\ud800"` escaped, or the raw bytes ED A0 80): invalid Unicode can be no
real name, e-mail or id, and it cannot be encoded to UTF-8 on its way to Dynamics or back to the caller.
Replies are always encodable: `json_response` never raises on what it echoes.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.platform.errors import AppError, BadRequest, field_path
from shared.platform.logs import logger

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "check_json",
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
MAX_JSON_DEPTH = 64  # a Genesy body nests 4 levels or so; a record's extra fields may add a few

M = TypeVar("M", bound=BaseModel)


def _json_bytes(body: Any) -> bytes:
    """UTF-8 JSON; text that UTF-8 cannot carry (a lone surrogate) is sent escaped (ASCII JSON) instead of raising."""
    try:
        return json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, ensure_ascii=True, default=str).encode("ascii")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        _json_bytes(body),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_response(error: AppError, correlation_id: str | None = None) -> func.HttpResponse:
    body = error.body()
    headers = {"x-correlation-id": correlation_id} if correlation_id else None
    return json_response(body, status=error.status, headers=headers)


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


class _BadNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber("a number is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise _BadNumber(f"{name} is not a JSON number")


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_error(path: tuple[int | str, ...], what: str) -> BadRequest:
    field = field_path(path)
    message = f"{what} an unpaired UTF-16 surrogate (invalid Unicode)"
    return BadRequest(f"{field}: {message}", details=[{"field": field, "message": message}], code="invalid_text")


def check_json(data: Any) -> None:
    """Refuse parsed JSON holding text that is not valid Unicode, or nesting deeper than `MAX_JSON_DEPTH`.

    Walks iteratively (no recursion on a caller's nesting); the error names the field path. Keys are
    checked before their values, so a path in a message is always valid text.
    """
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _has_lone_surrogate(value):
                raise _surrogate_error(path, "text contains")
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            field = field_path(path)
            raise BadRequest(
                f"body: JSON nested more than {MAX_JSON_DEPTH} levels deep",
                details=[{"field": field, "message": "nested too deeply"}],
                code="invalid_json",
            )
        if isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
            continue
        for key, item in value.items():
            if _has_lone_surrogate(key):
                raise _surrogate_error(path, "a field name contains")
            stack.append((item, (*path, key)))


def read_json(req: func.HttpRequest) -> Any:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body is larger than {MAX_BODY_BYTES} bytes", code="body_too_large")
    if not raw.strip():
        raise BadRequest("body: a JSON body is required", code="invalid_body")
    try:
        data = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body: not valid JSON ({exc})", code="invalid_json") from None
    except _BadNumber as exc:
        raise BadRequest(f"body: not valid JSON ({exc})", code="invalid_json") from None
    except ValueError:
        # int() refuses integers of more than sys.get_int_max_str_digits() digits (4,300 by default)
        raise BadRequest("body: not valid JSON (a number has too many digits)", code="invalid_json") from None
    except RecursionError:
        raise BadRequest(f"body: JSON nested more than {MAX_JSON_DEPTH} levels deep", code="invalid_json") from None
    check_json(data)
    return data


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
            try:
                return fn(*args, **kwargs)
            except AppError as exc:
                return error_response(exc)
            except ValidationError as exc:
                return error_response(validation_error(exc))
        except Exception:
            # also when turning a caller's error into its reply failed: never let it leave the boundary
            correlation_id = str(uuid.uuid4())
            log.exception("unhandled error in %s (correlation id %s)", fn.__name__, correlation_id)
            return error_response(AppError(f"internal error; quote correlation id {correlation_id}"), correlation_id)

    return wrapper


def genesy_call(fn: Handler) -> Handler:
    """Error boundary plus a correlation id for a Genesy call (taken from `x-correlation-id` or new)."""
    from shared.platform.correlation import correlation_scope

    guarded = handle_errors(fn)

    @functools.wraps(fn)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        supplied = (req.headers.get("x-correlation-id") or "").strip()
        usable = supplied.isascii() and supplied.replace("-", "").isalnum()  # echoed in a header: ASCII only
        correlation_id = supplied[:64] if usable else str(uuid.uuid4())
        with correlation_scope(correlation_id):
            response = guarded(req)
        response.headers["x-correlation-id"] = correlation_id
        return response

    return wrapper
