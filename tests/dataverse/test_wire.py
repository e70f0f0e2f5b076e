"""Pure pieces of the wire format: `$batch` multipart, error mapping, Retry-After, the concurrency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared.dataverse.batch import BatchRequest, decode_batch, encode_batch
from shared.dataverse.errors import (
    AuthFailed,
    BudgetExceeded,
    RecordConflict,
    RecordNotFound,
    Throttled,
    TransientError,
    ValidationFailed,
    error_from_payload,
)
from shared.dataverse.throttling import RetryAfterGate, parse_retry_after

ROOT = "https://org.crm.dynamics.com/api/data/v9.2/"


def test_encode_batch_parts_and_changesets() -> None:
    content_type, body = encode_batch(
        ROOT,
        [
            BatchRequest("GET", "contacts", params={"$filter": "emailaddress1 eq 'a+b@x.com'"}),
            BatchRequest("POST", "tasks", body={"subject": "ñ"}, changeset="c"),
            BatchRequest("PATCH", "tasks(00000000-0000-0000-0000-000000000001)", body={"statecode": 1},
                         headers={"If-Match": "*"}, changeset="c"),
        ],
    )
    boundary = content_type.split("boundary=")[1]
    text = body.decode("utf-8")
    assert text.startswith(f"--{boundary}\r\nContent-Type: application/http\r\n")
    assert text.endswith(f"--{boundary}--\r\n")
    assert f"GET {ROOT}contacts?$filter=emailaddress1%20eq%20'a%2Bb@x.com' HTTP/1.1\r\n" in text
    assert "Content-Type: multipart/mixed; boundary=changeset_" in text
    assert "Content-ID: 1\r\n" in text and "Content-ID: 2\r\n" in text
    assert f"POST {ROOT}tasks HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n" in text
    assert '{"subject":"ñ"}' in text
    assert "If-Match: *\r\n" in text


def test_decode_batch_with_changeset_and_errors() -> None:
    body = (
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\n\r\n"
        '{"value":[{"contactid":"1"}]}\r\n'
        "--batchresponse_1\r\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nOData-EntityId: " + ROOT + "tasks(00000000-0000-0000-0000-000000000001)\r\n\r\n\r\n"
        "--changesetresponse_2--\r\n"
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the '
        "'firstname' attribute of the 'contact' entity exceeded the maximum allowed length of '50'.\"}}\r\n"
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\n\r\n"
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\r\n"
        '{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit"}}\r\n'
        "--batchresponse_1--\r\n"
    )
    parts = decode_batch("multipart/mixed; boundary=batchresponse_1", body.encode())
    assert [p.status for p in parts] == [200, 204, 400, 429]
    assert parts[0].json() == {"value": [{"contactid": "1"}]}
    assert parts[1].content_id == "1" and parts[1].ok and parts[1].error is None
    assert parts[1].headers["odata-entityid"].endswith("(00000000-0000-0000-0000-000000000001)")
    invalid = parts[2].error
    assert isinstance(invalid, ValidationFailed)
    assert (invalid.code, invalid.column) == ("0x80044331", "firstname")
    throttled = parts[3].error
    assert isinstance(throttled, Throttled) and throttled.retry_after == 1.0


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "column"),
    [
        (404, "0x80040217", "contact With Id = x Does Not Exist", RecordNotFound, None),
        (412, "0x80040237", "A record with matching key values already exists.", RecordConflict, None),
        (400, "0x80040237", "Cannot insert duplicate key.", RecordConflict, None),
        (400, "0x80060888", "Could not find a property named 'new_x' on type 'Microsoft.Dynamics.CRM.contact'.",
         ValidationFailed, "new_x"),
        (400, "0x80040200", "A value for the required attribute 'lastname' of entity 'contact' must be provided.",
         ValidationFailed, "lastname"),
        (400, "0x8004431A", "A validation error occurred. The value 9 of 'industrycode' on record of type "
         "'contact' is outside the valid range.", ValidationFailed, "industrycode"),
        (401, None, "unauthorized", AuthFailed, None),
        (403, "0x80040220", "no privilege", AuthFailed, None),
        (503, "0x80040216", "unexpected", TransientError, None),
    ],
)
def test_error_mapping(status: int, code: str | None, message: str, kind: type, column: str | None) -> None:
    error = error_from_payload(status, {"error": {"code": code, "message": message}})
    assert type(error) is kind
    assert (error.status, error.code, error.message, error.column) == (status, code, message, column)


def test_budget_exceeded_keeps_last_code() -> None:
    last = error_from_payload(503, b'{"error":{"code":"0x80040216","message":"boom"}}')
    error = BudgetExceeded("out of time", last_error=last)
    assert isinstance(error, TransientError) and error.retryable
    assert (error.code, error.status, error.last_error) == ("0x80040216", 503, last)
    assert "boom" in str(error)


def test_parse_retry_after_forms() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(" ") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(format_datetime(now + timedelta(seconds=3), usegmt=True), now=now) == 3.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=3), usegmt=True), now=now) == 0.0


def test_gate_never_shortens_a_hold() -> None:
    gate = RetryAfterGate()
    assert gate.delay() == 0.0
    gate.push(5.0)
    gate.push(0.1)
    assert gate.delay() > 4.0
