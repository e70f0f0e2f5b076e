"""`$batch` requests: multipart/mixed encoding of parts (optionally grouped into change sets) and decoding
of the multipart response back into one `BatchResponse` per part, in order."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.dataverse.errors import DataverseError, error_from_response
from shared.domain.odata import encode_query

__all__ = ["BatchRequest", "BatchResponse", "decode_batch", "encode_batch"]

_CRLF = "\r\n"
_BOUNDARY_RE = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One operation inside a `$batch`.

    `url` is relative to the service root (`contacts(…)`) or absolute; `params` are encoded by httpx.
    Consecutive requests with the same `changeset` name form one atomic change set.
    """

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None
    changeset: str | None = None
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """One part of a `$batch` response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def error(self) -> DataverseError | None:
        """The typed error for a failed part (None when it succeeded)."""
        if self.ok:
            return None
        return error_from_response(self.status, self.headers, self.body)


def _absolute(service_root: str, request: BatchRequest) -> str:
    url = request.url if request.url.startswith(("https://", "http://")) else service_root + request.url
    return f"{url}?{encode_query(request.params)}" if request.params else url


def _http_part(service_root: str, request: BatchRequest, boundary: str, content_id: str | None) -> str:
    lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines.append("")
    lines.append(f"{request.method.upper()} {_absolute(service_root, request)} HTTP/1.1")
    headers = dict(request.headers)
    body = None
    if request.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
        body = json.dumps(request.body, ensure_ascii=False, separators=(",", ":"))
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.append("")
    if body is not None:
        lines.append(body)
    return _CRLF.join(lines) + _CRLF


def encode_batch(service_root: str, requests: Sequence[BatchRequest]) -> tuple[str, bytes]:
    """The `Content-Type` header and body of a `$batch` POST for `requests` (service_root ends with '/')."""
    boundary = f"batch_{uuid.uuid4()}"
    chunks: list[str] = []
    index = 0
    next_content_id = 1
    while index < len(requests):
        request = requests[index]
        if request.changeset is None:
            chunks.append(_http_part(service_root, request, boundary, request.content_id))
            index += 1
            continue
        group = request.changeset
        cs_boundary = f"changeset_{uuid.uuid4()}"
        inner: list[str] = []
        while index < len(requests) and requests[index].changeset == group:
            member = requests[index]
            content_id = member.content_id or str(next_content_id)
            next_content_id += 1
            inner.append(_http_part(service_root, member, cs_boundary, content_id))
            index += 1
        inner.append(f"--{cs_boundary}--{_CRLF}")
        chunks.append(
            f"--{boundary}{_CRLF}Content-Type: multipart/mixed; boundary={cs_boundary}{_CRLF}{_CRLF}" + "".join(inner)
        )
    chunks.append(f"--{boundary}--{_CRLF}")
    return f"multipart/mixed; boundary={boundary}", "".join(chunks).encode("utf-8")


def boundary_of(content_type: str) -> str | None:
    found = _BOUNDARY_RE.search(content_type)
    return found.group(1) if found else None


def _split_parts(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    parts: list[str] = []
    current: list[str] | None = None
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        if line == delimiter:
            if current is not None:
                parts.append("\n".join(current))
            current = []
        elif line == f"{delimiter}--":
            if current is not None:
                parts.append("\n".join(current))
            current = None
            break
        elif current is not None:
            current.append(line)
    return parts


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    if text.startswith("\n"):
        return {}, text[1:]
    head, _, rest = text.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_response(text: str, content_id: str | None) -> BatchResponse:
    status_line, _, remainder = text.lstrip("\n").partition("\n")
    pieces = status_line.split(" ", 2)
    if len(pieces) < 2 or not pieces[0].startswith("HTTP/"):
        raise DataverseError(f"malformed $batch part status line: {status_line[:80]!r}")
    headers, body = _headers_and_rest(remainder)
    return BatchResponse(int(pieces[1]), headers, body.strip("\n").encode("utf-8"), content_id)


def decode_batch(content_type: str, body: bytes) -> list[BatchResponse]:
    """Every part of a `$batch` response, change-set members flattened in order."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise DataverseError(f"$batch response is not multipart (Content-Type {content_type!r})")
    responses: list[BatchResponse] = []
    for part in _split_parts(body.decode("utf-8", "replace"), boundary):
        headers, rest = _headers_and_rest(part)
        part_type = headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            inner_boundary = boundary_of(part_type)
            if inner_boundary is None:
                raise DataverseError("change-set response without a boundary")
            for inner in _split_parts(rest, inner_boundary):
                inner_headers, inner_rest = _headers_and_rest(inner)
                responses.append(_http_response(inner_rest, inner_headers.get("content-id")))
        else:
            responses.append(_http_response(rest, headers.get("content-id")))
    return responses
