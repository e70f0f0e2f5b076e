"""write_many's per-part retries, driven through a swapped-in transport (the sandbox throttles whole
requests, not single `$batch` parts)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from shared.dataverse.budget import Budget
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import BudgetExceeded, Throttled, ValidationFailed

ENV = "https://org.crm.dynamics.com"


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 4_102_444_800)


def _part(status: int, reason: str, body: str = "", headers: str = "") -> str:
    return (
        "--batchresponse_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"HTTP/1.1 {status} {reason}\r\n{headers}\r\n{body}\r\n"
    )


def _batch_response(*parts: str) -> httpx.Response:
    return httpx.Response(
        200,
        content=("".join(parts) + "--batchresponse_x--\r\n").encode(),
        headers={"Content-Type": "multipart/mixed; boundary=batchresponse_x", "x-ms-dop-hint": "4"},
    )


def _patched_ids(request: httpx.Request) -> list[str]:
    return [line.split("(")[1].split(")")[0] for line in request.content.decode().split("\r\n")
            if line.startswith("PATCH ")]


def test_throttled_and_failed_parts_are_resent_alone_after_retry_after() -> None:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    calls: list[tuple[float, list[str]]] = []
    too_long = ('{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the '
                "'lastname' attribute of the 'contact' entity exceeded the maximum allowed length of '50'.\"}}")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((time.monotonic(), _patched_ids(request)))
        if len(calls) == 1:
            return _batch_response(
                _part(201, "Created", json.dumps({"contactid": ids[0]})),
                _part(429, "Too Many Requests", '{"error":{"code":"0x80072322","message":"slow down"}}',
                      "Retry-After: 1\r\n"),
                _part(503, "Service Unavailable", '{"error":{"code":"0x80040216","message":"blip"}}'),
                _part(400, "Bad Request", too_long),
            )
        return _batch_response(_part(200, "OK", "{}"), _part(204, "No Content"))

    with DataverseClient(ENV, _Token(), transport=httpx.MockTransport(handler), use_bulk=False) as client:
        results = client.write_many("contacts", [(i, {"lastname": "x"}, "upsert") for i in ids])

    assert [c[1] for c in calls] == [ids, ids[1:3]]
    assert calls[1][0] - calls[0][0] >= 1.0
    assert [r.ok for r in results] == [True, True, True, False]
    assert [r.created for r in results] == [True, False, None, None]
    assert isinstance(results[3].error, ValidationFailed) and results[3].error.column == "lastname"


def test_parts_still_failing_when_the_budget_ends_come_back_retryable() -> None:
    ids = [str(uuid.uuid4()) for _ in range(2)]

    def handler(request: httpx.Request) -> httpx.Response:
        parts = [_part(204, "No Content") if i == ids[0] else
                 _part(503, "Service Unavailable", '{"error":{"code":"0x80040216","message":"down"}}')
                 for i in _patched_ids(request)]
        return _batch_response(*parts)

    with DataverseClient(ENV, _Token(), transport=httpx.MockTransport(handler), use_bulk=False) as client:
        results = client.write_many("contacts", [(i, {"lastname": "x"}, "update_only") for i in ids],
                                    budget=Budget(0.3))
    assert results[0].ok and results[0].created is False
    error = results[1].error
    assert isinstance(error, BudgetExceeded) and results[1].retryable
    assert (error.code, error.status) == ("0x80040216", 503)


def test_part_throttled_longer_than_the_budget_is_returned_as_throttled() -> None:
    record_id = str(uuid.uuid4())

    def handler(request: httpx.Request) -> httpx.Response:
        return _batch_response(_part(429, "Too Many Requests",
                                     '{"error":{"code":"0x80072321","message":"execution time"}}',
                                     "Retry-After: 30\r\n"))

    with DataverseClient(ENV, _Token(), transport=httpx.MockTransport(handler), use_bulk=False) as client:
        started = time.monotonic()
        [result] = client.write_many("contacts", [(record_id, {"lastname": "x"}, "create_only")], budget=Budget(5))
        assert time.monotonic() - started < 5
    assert isinstance(result.error, Throttled)
    assert (result.error.retry_after, result.error.code) == (30.0, "0x80072321")
