"""OData 4.0 `$batch` over multipart/mixed: parts are HTTP requests, change sets are atomic groups with
`Content-ID` references (`$1`), and the response mirrors the request's structure part by part."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.api import ApiRequest, ApiResponse, DataverseApi, error_response, parse_query_string
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.keys import API_PREFIX

__all__ = ["BatchOutcome", "BatchPart", "handle_batch", "parse_batch"]

_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)


@dataclass
class BatchPart:
    """One HTTP request of the batch; `changeset` groups the members of one change set."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[BatchPart] = field(default_factory=list)


@dataclass
class BatchOutcome:
    status: int
    content_type: str
    body: bytes
    part_count: int
    part_routes: list[str]


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not match:
        raise DataverseError.bad_request("The batch request must have a multipart/mixed boundary.",
                                         errors.INVALID_PAYLOAD)
    return match.group(1)


def _split(body: str, boundary: str) -> list[str]:
    """Body parts between `--boundary` lines, up to the closing `--boundary--`."""
    delimiter = f"--{boundary}"
    parts: list[str] = []
    current: list[str] | None = None
    for line in body.split("\n"):
        stripped = line.rstrip("\r")
        if stripped == delimiter or stripped == f"{delimiter}--":
            if current is not None:
                parts.append("\n".join(current))
            if stripped.endswith("--") and stripped != delimiter:
                return parts
            current = []
        elif current is not None:
            current.append(line)
    raise DataverseError.bad_request("The batch body is missing its closing boundary.", errors.INVALID_PAYLOAD)


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    normalized = text.replace("\r\n", "\n")
    head, sep, rest = normalized.partition("\n\n")
    if not sep:
        head, rest = normalized, ""
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_part(mime_headers: dict[str, str], text: str) -> BatchPart:
    if "application/http" not in mime_headers.get("content-type", "").lower():
        raise DataverseError.bad_request("Each batch part must have Content-Type: application/http.",
                                         errors.INVALID_PAYLOAD)
    normalized = text.replace("\r\n", "\n").lstrip("\n")
    request_line, _, rest = normalized.partition("\n")
    bits = request_line.split(" ")
    if len(bits) < 2:
        raise DataverseError.bad_request(f"Invalid request line in batch: '{request_line}'", errors.INVALID_PAYLOAD)
    headers, body = _headers_and_rest(rest)
    if not rest.strip() or rest.startswith("\n"):
        headers, body = {}, rest.lstrip("\n") if rest.strip() else ""
    body = body.rstrip("\n")
    content_id = mime_headers.get("content-id") or headers.get("content-id")
    return BatchPart(bits[0].upper(), bits[1], headers, body.encode("utf-8"), content_id)


def parse_batch(content_type: str, body: bytes) -> list[BatchPart | ChangeSet]:
    text = body.decode("utf-8")
    items: list[BatchPart | ChangeSet] = []
    for raw in _split(text, _boundary(content_type)):
        mime_headers, rest = _headers_and_rest(raw)
        ctype = mime_headers.get("content-type", "")
        if ctype.lower().startswith("multipart/mixed"):
            changeset = ChangeSet()
            for inner in _split(rest, _boundary(ctype)):
                inner_headers, inner_rest = _headers_and_rest(inner)
                part = _http_part(inner_headers, inner_rest)
                if part.method == "GET":
                    raise DataverseError.bad_request("GET requests are not allowed inside a change set.",
                                                     errors.INVALID_PAYLOAD)
                changeset.parts.append(part)
            items.append(changeset)
        else:
            items.append(_http_part(mime_headers, rest))
    return items


def _to_request(part: BatchPart, refs: dict[str, str], max_url: int) -> ApiRequest:
    url = part.url
    if len(url) > max_url:
        raise DataverseError(414, errors.UNEXPECTED, f"The request URL is longer than {max_url} characters.")
    if url.startswith("$"):
        ref, sep, tail = url[1:].partition("/")
        if ref not in refs:
            raise DataverseError.bad_request(f"Content-ID reference ${ref} is not defined.", errors.INVALID_PAYLOAD)
        url = refs[ref].lstrip("/") + (sep + tail if sep else "")
    split = urlsplit(url)
    path = split.path
    idx = path.find(API_PREFIX)
    if idx >= 0:
        path = path[idx + len(API_PREFIX):]
    path = path.lstrip("/")
    headers = {k.lower(): v for k, v in part.headers.items()}
    return ApiRequest(part.method, path, parse_query_string(split.query), headers, part.body)


def _render_part(resp: ApiResponse, content_id: str | None) -> str:
    reason = HTTPStatus(resp.status).phrase if resp.status in HTTPStatus._value2member_map_ else ""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {resp.status} {reason}"]
    headers = {"OData-Version": "4.0", **resp.headers}
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["", resp.body.decode("utf-8") if resp.body else ""]
    return "\r\n".join(lines)


def handle_batch(api: DataverseApi, content_type: str, body: bytes, prefer: str,
                 on_part: Callable[[ApiResponse], None] | None = None) -> BatchOutcome:
    """Execute a batch; default stops at the first failure, `odata.continue-on-error` answers every part."""
    cfg = api.config
    items = parse_batch(content_type, body)
    count = sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)
    if count > cfg.max_batch_requests:
        raise DataverseError.bad_request(
            f"The number of requests in the batch ({count}) exceeds the maximum of {cfg.max_batch_requests}.",
            "0x8005f21a")
    continue_on_error = "odata.continue-on-error" in prefer.lower()
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[str] = []
    routes: list[str] = []
    failed = False
    for item in items:
        if isinstance(item, BatchPart):
            try:
                resp = api.handle(_to_request(item, {}, cfg.max_batch_url_length))
            except DataverseError as err:
                resp = error_response(err)
            routes.append(resp.route)
            if on_part:
                on_part(resp)
            chunks.append(_render_part(resp, item.content_id))
            failed = resp.status >= 400
        else:
            chunk, failed = _run_changeset(api, item, routes, on_part)
            chunks.append(chunk)
        if failed and not continue_on_error:
            break
    text = "".join(f"--{boundary}\r\n{c}\r\n" for c in chunks) + f"--{boundary}--\r\n"
    status = 400 if failed and not continue_on_error else 200
    return BatchOutcome(status, f"multipart/mixed; boundary={boundary}", text.encode("utf-8"), count, routes)


def _run_changeset(api: DataverseApi, changeset: ChangeSet, routes: list[str],
                   on_part: Callable[[ApiResponse], None] | None) -> tuple[str, bool]:
    refs: dict[str, str] = {}

    def resolve(value: str) -> str:
        if value.startswith("$") and value[1:] in refs:
            return refs[value[1:]]
        return value

    responses: list[tuple[ApiResponse, str | None]] = []
    failure: tuple[ApiResponse, str | None] | None = None
    try:
        with api.store.transaction():
            for part in changeset.parts:
                try:
                    req = _to_request(part, refs, api.config.max_batch_url_length)
                except DataverseError as err:
                    resp = error_response(err)
                else:
                    resp = api.handle(req, resolve)
                routes.append(resp.route)
                if on_part:
                    on_part(resp)
                if resp.status >= 400:
                    failure = (resp, part.content_id)
                    raise _Rollback
                if part.content_id and resp.entity_path:
                    refs[part.content_id] = resp.entity_path
                responses.append((resp, part.content_id))
    except _Rollback:
        assert failure is not None
        return _render_part(*failure), True
    cs_boundary = f"changesetresponse_{uuid.uuid4()}"
    inner = "".join(f"--{cs_boundary}\r\n{_render_part(r, cid)}\r\n" for r, cid in responses)
    return (f"Content-Type: multipart/mixed; boundary={cs_boundary}\r\n\r\n{inner}--{cs_boundary}--", False)


class _Rollback(Exception):
    """Unwinds the change set's transaction after a failed part."""
