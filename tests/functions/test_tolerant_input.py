"""What Genesy may plausibly send is accepted (empty lists, nulls, any-case enums, campaign lists, HEAD
/health); what cannot be understood is a 400 `{error, message}` naming the field; hostile input (huge
integers, lone UTF-16 surrogates, deep nesting, NaN) is a 400 at the body boundary, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.dataverse_sandbox.seed import SEED_IDS
from shared.domain.genesy_models import (
    ActivityCreate,
    AssociationsRequest,
    CompanyIn,
    ContactIn,
    ContactsRequest,
    ContactUpdate,
    IdsRequest,
    TaskCreate,
    TaskPatch,
    TasksBatchPatch,
)
from shared.platform.errors import BadRequest
from shared.platform.http import error_response, json_response

MARIA = SEED_IDS["contact:maria"]
ACME = SEED_IDS["account:acme"]


def _raw(stack: Any, method: str, path: str, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    """Send exact bytes (what `stack.call` cannot: invalid UTF-8, huge numbers, NaN…)."""
    response = stack.host.http(method, f"/api/{path}", headers=stack.headers if headers is None else headers, body=raw)
    payload = response.get_body()
    response.json = json.loads(payload) if payload else None
    return response


def _assert_400(response: Any, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.json)
    assert set(response.json) >= {"error", "message"}
    assert field in response.json["message"], response.json


# ---------------------------------------------------------------------------------------------------------
# Models


def test_models_accept_empty_lists() -> None:
    assert ContactsRequest.model_validate({"contacts": []}).contacts == []
    assert IdsRequest.model_validate({"ids": []}).ids == []
    assert AssociationsRequest.model_validate({"associations": []}).associations == []
    assert TasksBatchPatch.model_validate({"ids": []}).ids == []


def test_null_optional_fields_take_their_defaults() -> None:
    assert ContactsRequest.model_validate({"contacts": [{"externalId": "1"}], "exportValues": None}).exportValues == {}
    assert ActivityCreate.model_validate({"type": "EMAIL", "metadata": None}).metadata == {}
    assert TasksBatchPatch.model_validate({"ids": ["a"], "completed": None}).completed is True
    task = TaskCreate.model_validate({"subject": "x", "dueDate": None, "type": None, "contactId": None})
    assert task.dueDate is None and task.type is None
    # where null means something (clear the due date), it is kept as given
    patch = TaskPatch.model_validate({"dueDate": None, "completed": None})
    assert patch.dueDate is None and "dueDate" in patch.model_fields_set and patch.completed is None
    contact = ContactIn.model_validate({"externalId": "1", "email": None, "campaigns": None, "custom": None})
    assert contact.fields() == {"externalId": "1"}
    company = CompanyIn.model_validate({"externalId": "1", "numberOfEmployees": None, "employeeCount": 12})
    assert company.numberOfEmployees == 12
    assert ContactUpdate.model_validate({"crmId": "c", "externalId": None}).externalId is None


def test_required_fields_stay_required_even_when_null() -> None:
    for model, data in (
        (ContactsRequest, {"contacts": [{"externalId": None}]}),
        (ContactsRequest, {"contacts": None}),
        (IdsRequest, {"ids": None}),
        (TaskCreate, {"subject": None}),
        (ActivityCreate, {"type": None}),
    ):
        with pytest.raises(ValidationError):
            model.model_validate(data)


def test_activity_type_and_direction_in_any_case_are_upper_case() -> None:
    body = ActivityCreate.model_validate({"type": "email", "direction": "Outbound"})
    assert (body.type, body.direction) == ("EMAIL", "OUTBOUND")
    assert ActivityCreate.model_validate({"type": " linkedin_InMail "}).type == "LINKEDIN_INMAIL"
    assert ActivityCreate.model_validate({"type": "EMAIL", "direction": "inbound"}).direction == "INBOUND"
    assert ActivityCreate.model_validate({"type": "EMAIL", "direction": ""}).direction is None
    from shared.domain.genesy_models import DOCUMENTED_ACTIVITY_TYPES

    assert set(DOCUMENTED_ACTIVITY_TYPES) == {"EMAIL", "LINKEDIN", "LINKEDIN_CONNECTION", "LINKEDIN_INMAIL"}


@pytest.mark.parametrize("kind", ["CALL", "meeting", "Note", "whatsapp"])
def test_undocumented_activity_types_are_accepted_upper_case(kind: str) -> None:
    assert ActivityCreate.model_validate({"type": kind}).type == kind.upper()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": ""}, "type"),
        ({"type": "   "}, "type"),
        ({"type": ["EMAIL"]}, "type"),
        ({"type": "x" * 101}, "type"),
        ({"type": "EMAIL", "direction": "SIDEWAYS"}, "direction"),
        ({"type": "EMAIL", "direction": 1}, "direction"),
    ],
)
def test_bad_activity_type_or_direction_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ActivityCreate.model_validate(data)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_campaigns_as_text_or_list_of_names() -> None:
    assert ContactIn.model_validate({"externalId": "1", "campaigns": "Spring, Summer"}).campaigns == "Spring, Summer"
    listed = ContactIn.model_validate({"externalId": "1", "campaigns": ["Spring", "", "  ", None, "Summer"]})
    assert listed.campaigns == "Spring, Summer"
    assert CompanyIn.model_validate({"externalId": "1", "campaigns": ["Q3 push"]}).campaigns == "Q3 push"
    assert ContactIn.model_validate({"externalId": "1", "campaigns": []}).campaigns is None
    assert ContactIn.model_validate({"externalId": "1", "campaigns": [2024, "Q1"]}).campaigns == "2024, Q1"
    with pytest.raises(ValidationError) as caught:
        ContactIn.model_validate({"externalId": "1", "campaigns": [{"name": "x"}]})
    assert caught.value.errors()[0]["loc"][0] == "campaigns"


# ---------------------------------------------------------------------------------------------------------
# The error path itself never raises on what a caller sent


def test_error_replies_survive_lone_surrogates_and_huge_messages() -> None:
    response = error_response(BadRequest("contactId: '\ud800' is not valid", details=[{"field": "\udfff"}]))
    body = json.loads(response.get_body().decode("utf-8"))
    assert response.status_code == 400 and body["error"] == "bad_request"
    assert "\ud800" not in body["message"]
    huge = error_response(BadRequest("x" * 1_000_000))
    assert len(huge.get_body()) < 10_000
    assert json.loads(json_response({"v": "a\udc80b"}).get_body().decode("utf-8")) == {"v": "a\udc80b"}


# ---------------------------------------------------------------------------------------------------------
# On the stack: empty lists

EMPTY_CALLS = [
    ("POST", "contacts", {"contacts": []}, {"results": []}),
    ("POST", "contacts/sync", {"contacts": []}, {"results": []}),
    ("PUT", "contacts", {"contacts": []}, {"results": []}),
    ("POST", "contacts/batch", {"ids": []}, {"results": []}),
    ("POST", "companies", {"companies": []}, {"results": []}),
    ("POST", "companies/sync", {"companies": []}, {"results": []}),
    ("PUT", "companies", {"companies": []}, {"results": []}),
    ("POST", "companies/batch", {"ids": []}, {"results": []}),
    ("POST", "associations", {"associations": []}, {"success": True, "created": 0}),
    ("POST", "tasks/batch", {"ids": []}, []),
    ("PATCH", "tasks/batch", {"ids": []}, []),
    ("PATCH", "tasks/batch", {"ids": [], "completed": False}, []),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), EMPTY_CALLS)
def test_empty_lists_answer_200_with_empty_results_and_write_nothing(
    stack: Any, method: str, path: str, body: Any, expected: Any
) -> None:
    response = stack.call(method, path, body)
    assert response.status_code == 200, response.json
    assert response.json == expected
    assert stack.queue.pending() == 0


# ---------------------------------------------------------------------------------------------------------
# On the stack: nulls, cases, campaign lists


def test_null_optional_fields_are_accepted_on_every_kind_of_call(stack: Any) -> None:
    exported = stack.call("POST", "contacts", {"contacts": [{"externalId": "n1", "email": None}], "exportValues": None})
    assert exported.status_code == 200, exported.json
    assert [r["externalId"] for r in exported.json["results"]] == ["n1"]
    synced = stack.call("POST", "companies/sync", {"companies": [{"externalId": "c1", "domain": None}]})
    assert synced.status_code == 200, synced.json
    task = stack.call("POST", "tasks", {"subject": "Call", "dueDate": None, "ownerId": None, "contactId": MARIA})
    assert task.status_code == 201, task.json
    assert task.json["dueDate"] is None
    done = stack.call("PATCH", "tasks/batch", {"ids": [task.json["id"]], "completed": None})
    assert done.status_code == 200, done.json
    assert [t["completed"] for t in done.json] == [True]  # null → the default: complete
    activity = stack.call(
        "POST", "activities", {"type": "LINKEDIN", "direction": "OUTBOUND", "metadata": None, "occurredAt": None}
    )
    assert activity.status_code == 201, activity.json


def test_activity_type_and_direction_in_lower_or_mixed_case(stack: Any) -> None:
    body = {"type": "email", "direction": "Outbound", "subject": "Hi", "contactId": MARIA, "body": "<p>Hi</p>"}
    response = stack.call("POST", "activities", body)
    assert response.status_code == 201, response.json
    assert response.json["type"] == "EMAIL" and response.json["direction"] == "OUTBOUND"
    email = stack.sandbox.store.get("email", response.json["id"])
    assert email["directioncode"] is True
    bad = stack.call("POST", "activities", {"type": "EMAIL", "direction": "sideways"})
    _assert_400(bad, "direction")


@pytest.mark.parametrize("kind", ["call", "MEETING"])
def test_undocumented_activity_types_are_logged_not_refused(stack: Any, kind: str) -> None:
    body = {"type": kind, "direction": "outbound", "subject": f"{kind} with María", "contactId": MARIA}
    response = stack.call("POST", "activities", body)
    assert response.status_code == 201, response.json
    assert response.json["type"] == kind.upper()


def test_campaigns_as_a_list_are_exported(stack: Any) -> None:
    contacts = [{"externalId": "l1", "email": "list@example.com", "campaigns": ["Spring", "", "Summer"]}]
    response = stack.call("POST", "contacts", {"contacts": contacts})
    assert response.status_code == 200, response.json
    companies = [{"externalId": "k1", "name": "Listed Co", "campaigns": ["Spring"]}]
    assert stack.call("POST", "companies", {"companies": companies}).status_code == 200


# ---------------------------------------------------------------------------------------------------------
# On the stack: HEAD /health


def test_head_health_has_the_status_of_get_and_no_body(stack: Any) -> None:
    get = stack.call("GET", "health")
    head = stack.host.http("HEAD", "/api/health", headers=stack.headers)
    assert get.status_code == head.status_code == 200
    assert head.get_body() == b""
    bad = {"X-API-Key": "gdk_wrong"}
    assert stack.call("GET", "health", headers=bad).status_code == 401
    head_bad = stack.host.http("HEAD", "/api/health", headers=bad)
    assert head_bad.status_code == 401 and head_bad.get_body() == b""


def test_head_health_over_the_http_server(stack: Any) -> None:
    import httpx

    base_url, stop = stack.host.serve_in_thread()
    try:
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            head = client.head("/api/health", headers=stack.headers)
            get = client.get("/api/health", headers=stack.headers)
    finally:
        stop()
    assert head.status_code == get.status_code == 200
    assert head.content == b""


# ---------------------------------------------------------------------------------------------------------
# On the stack: what cannot be understood stays a 400


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'"contacts"', "body"),
        (b"null", "body"),
        (b'{"contacts": [{"email": "a@b.c"}]}', "contacts[0].externalId"),
        (b'{"contacts": [null]}', "contacts[0]"),
    ],
)
def test_what_cannot_be_understood_is_400(stack: Any, raw: bytes, field: str) -> None:
    _assert_400(_raw(stack, "POST", "contacts", raw), field)
    assert stack.queue.pending() == 0


# ---------------------------------------------------------------------------------------------------------
# On the stack: hostile input is a 400 at the body boundary

HUGE_INT = "9" * 4301


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "contacts", '{"contacts": [{"externalId": HUGE}]}'),
        ("POST", "companies", '{"companies": [{"externalId": "1", "numberOfEmployees": HUGE}]}'),
        ("POST", "tasks", '{"subject": "x", "n": HUGE}'),
        ("POST", "activities", '{"type": "EMAIL", "metadata": {"sequenceIndex": HUGE}}'),
    ],
)
def test_integer_beyond_the_conversion_limit_is_400_naming_the_body(
    stack: Any, method: str, path: str, raw: str
) -> None:
    _assert_400(_raw(stack, method, path, raw.replace("HUGE", HUGE_INT).encode()), "body")


@pytest.mark.parametrize(
    "raw",
    [b'{"subject": "x", "n": NaN}', b'{"subject": "x", "n": Infinity}', b'{"subject": "x", "n": -1e400}'],
)
def test_non_finite_numbers_are_400(stack: Any, raw: bytes) -> None:
    _assert_400(_raw(stack, "POST", "tasks", raw), "body")


def test_escaped_lone_surrogate_is_400_naming_the_field(stack: Any) -> None:
    response = stack.call("POST", "tasks", {"subject": "Call", "contactId": "\ud800"})
    _assert_400(response, "contactId")
    assert response.json["error"] == "invalid_text"
    contact = stack.call("POST", "contacts", {"contacts": [{"externalId": "1"}, {"externalId": "2", "x": "a\udfffb"}]})
    _assert_400(contact, "contacts[1].x")
    key = stack.call("POST", "activities", {"type": "EMAIL", "metadata": {"k\udc00": 1}})
    _assert_400(key, "metadata")
    assert stack.rows("task") == [] and stack.queue.pending() == 0


def test_raw_surrogate_bytes_are_400_naming_the_field(stack: Any) -> None:
    raw = b'{"contacts": [{"externalId": "1", "email": "a\xed\xa0\x80@b.c"}]}'
    _assert_400(_raw(stack, "POST", "contacts", raw), "contacts[0].email")
    task = _raw(stack, "POST", "tasks", b'{"subject": "Call", "contactId": "\xed\xa0\x80"}')
    _assert_400(task, "contactId")


def test_nesting_beyond_any_genesy_body_is_400(stack: Any) -> None:
    deep = b'{"type": "EMAIL", "metadata": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}"
    _assert_400(_raw(stack, "POST", "activities", deep), "body")
    very_deep = b"[" * 100_000 + b"]" * 100_000
    _assert_400(_raw(stack, "POST", "contacts", very_deep), "body")


def test_a_correlation_id_that_cannot_be_a_header_is_replaced(stack: Any) -> None:
    for supplied in ("中文ab", "é1", "a\ud800"):
        headers = {**stack.headers, "x-correlation-id": supplied}
        response = stack.host.http("GET", "/api/health", headers=headers)
        assert response.status_code == 200
        echoed = response.headers["x-correlation-id"]
        assert echoed.isascii() and echoed != supplied
    kept = stack.host.http("GET", "/api/health", headers={**stack.headers, "x-correlation-id": "abc-123"})
    assert kept.headers["x-correlation-id"] == "abc-123"
