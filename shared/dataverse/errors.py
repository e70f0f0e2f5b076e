"""Typed Dataverse errors, built from the Web API's `{"error": {"code", "message"}}` payloads.

Callers branch on the class (retry, ledger, redeliver) and read `.code`/`.message`/`.column`
for the ledger; nothing here carries request bodies, filter values or tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shared.dataverse.throttling import parse_retry_after

__all__ = [
    "AuthFailed",
    "BudgetExceeded",
    "DataverseError",
    "RecordConflict",
    "RecordNotFound",
    "Throttled",
    "TransientError",
    "ValidationFailed",
    "error_from_payload",
    "error_from_response",
]

RECORD_NOT_FOUND = "0x80040217"
DUPLICATE_KEY = "0x80040237"
STRING_TOO_LONG = "0x80044331"
UNKNOWN_PROPERTY = "0x80060888"

_VALIDATION_CODES = frozenset({STRING_TOO_LONG, UNKNOWN_PROPERTY, "0x80040203", "0x8004431a", "0x80048d19"})
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})

# Dataverse names the column in several message shapes; the first group that matches wins.
_COLUMN_PATTERNS = (
    re.compile(r"length of the '([A-Za-z_]\w*)' attribute"),
    re.compile(r"property named '([A-Za-z_][\w@.]*)'"),
    re.compile(r"[Pp]roperty '([A-Za-z_][\w@.]*)'"),
    re.compile(r"'([A-Za-z_]\w*)' (?:attribute|column|field)"),
    re.compile(r"of '([A-Za-z_]\w*)' on record"),
    re.compile(r"(?:[Aa]ttribute|[Cc]olumn|[Ff]ield)[: ]+'([A-Za-z_]\w*)'"),
    re.compile(r"'([a-z_][a-z0-9_]*)'"),
)


class DataverseError(Exception):
    """Any failure talking to Dataverse; `code` is Dataverse's hex code when it sent one."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        column: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.column = column
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code={self.code}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class RecordNotFound(DataverseError):
    """The record (or entity set) does not exist (404 / 0x80040217)."""


class RecordConflict(DataverseError):
    """A precondition failed or the key already exists (412 / 0x80040237)."""


class ValidationFailed(DataverseError):
    """Dataverse rejected the record's content (400); `.column` names the column when it could be parsed."""


class AuthFailed(DataverseError):
    """The token was refused (401) or the identity lacks privileges (403)."""


class TransientError(DataverseError):
    """A 5xx, a connection failure or a timeout: worth retrying later."""

    retryable = True


class Throttled(DataverseError):
    """Service-protection limit (429); `retry_after` seconds must pass before the next attempt."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BudgetExceeded(TransientError):
    """The caller's time budget ran out while retrying; keeps the last Dataverse code and message."""

    def __init__(self, message: str, *, last_error: DataverseError | None = None, **kwargs: Any) -> None:
        if last_error is not None:
            kwargs.setdefault("status", last_error.status)
            kwargs.setdefault("code", last_error.code)
            kwargs.setdefault("column", last_error.column)
            message = f"{message}: {last_error.message}"
        super().__init__(message, **kwargs)
        self.last_error = last_error


def _column_from_message(message: str) -> str | None:
    for pattern in _COLUMN_PATTERNS:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None


def _parse_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if body is None:
        return None, None
    payload: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            return None, text.strip()[:500] or None
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            message = error.get("message")
            return (str(code) if code else None), (str(message) if message else None)
    return None, None


def error_from_payload(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    *,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> DataverseError:
    """Map a failed status and its error payload to the most specific error class."""
    code, message = _parse_body(body)
    text = message or f"Dataverse returned HTTP {status}"
    kwargs: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    lowered_code = (code or "").lower()
    if status == 429:
        return Throttled(text, retry_after=retry_after if retry_after is not None else 0.0, **kwargs)
    if status == 404 or lowered_code == RECORD_NOT_FOUND:
        return RecordNotFound(text, **kwargs)
    if status == 412 or lowered_code == DUPLICATE_KEY:
        return RecordConflict(text, **kwargs)
    if status in (401, 403):
        return AuthFailed(text, **kwargs)
    if status in _TRANSIENT_STATUSES or status >= 500:
        return TransientError(text, **kwargs)
    if status == 400 or lowered_code in _VALIDATION_CODES:
        return ValidationFailed(text, column=_column_from_message(text), **kwargs)
    return DataverseError(text, **kwargs)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    request_id: str | None = None,
) -> DataverseError:
    """Like `error_from_payload`, also reading `Retry-After` from the headers."""
    retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    return error_from_payload(status, body, retry_after=retry_after, request_id=request_id)
