"""The application's typed errors: each maps to one HTTP status and a stable `error` code."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "MAX_MESSAGE_CHARS",
    "AppError",
    "BadRequest",
    "Conflict",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "Unauthorized",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "field_path",
    "regarding_not_found",
    "safe_text",
]

MAX_MESSAGE_CHARS = 1000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text fit to send back: lone surrogates (unencodable) become U+FFFD; at most `limit` characters."""
    if not text.isascii():
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


class AppError(Exception):
    """An error with a caller-facing shape: `{"error": code, "message": text, "details"?: [...]}`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """The reply body. Messages may quote what a caller sent: here it is made safe to encode and short."""
        body: dict[str, Any] = {"error": safe_text(self.code), "message": safe_text(self.message)}
        if self.details:
            body["details"] = _safe(self.details)
        return body


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PreconditionFailed(AppError):
    status = 412
    code = "precondition_failed"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class PreconditionRequired(AppError):
    status = 428
    code = "precondition_required"


class UpstreamUnavailable(AppError):
    """Dynamics could not answer in time; the caller may retry. Not the caller's fault."""

    status = 503
    code = "dynamics_unavailable"

    @classmethod
    def from_error(cls, error: Exception) -> AppError:
        """From a Dataverse error, naming its code. A query Dynamics refused (an unknown column: a mapping
        problem) says so with the column, never with the values the query carried."""
        code = getattr(error, "code", None) or type(error).__name__
        column = getattr(error, "column", None)
        if getattr(error, "status", None) == 400:
            where = f" (column '{column}')" if column else ""
            return UpstreamRejected(
                f"Dynamics refused the query{where}, code {code}: check the workspace's mappings "
                "(POST /api/manage/workspaces/{id}/validate)"
            )
        return cls(f"Dynamics did not answer: {code}")


class UpstreamRejected(AppError):
    """Dynamics refused what we asked (usually a mapping naming a column the environment lacks)."""

    status = 502
    code = "dynamics_rejected_query"


def regarding_not_found(contact_id: str | None, company_id: str | None) -> NotFound:
    """The contact (else company) an activity or task refers to does not exist in Dynamics."""
    field, value, label = ("contactId", contact_id, "Contact") if contact_id else ("companyId", company_id, "Company")
    return NotFound(
        f"No {label.lower()} exists with ID: {value}",
        code=f"{label} not found",
        details=[{"field": field, "message": "not found in Dynamics"}],
    )


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("contacts", 3, "email")` → `contacts[3].email`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"
