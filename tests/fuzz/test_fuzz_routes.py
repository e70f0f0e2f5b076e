"""Property-based fuzzing of every Genesy route on the local stack: whatever the body, never a 5xx, and
every 4xx is `{error, message}`.

Bodies are either shaped like the route's schema with hostile values in any field (huge strings, lone
surrogates, brackets, objects where text is expected, huge or non-finite numbers, nulls, wrong types) or
arbitrary JSON / bytes. Examples are bounded and derandomized so the suite stays fast and deterministic;
for a longer hunt, `FUZZ_EXAMPLES=500 FUZZ_RANDOM=1 pytest tests/fuzz` (random draws, more of them).
Some hostile values cannot be written by `json.dumps` (an integer beyond Python's 4,300-digit limit,
`NaN`, raw surrogate bytes); they travel as placeholders replaced in the encoded body.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.dataverse_sandbox.seed import SEED_IDS

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# Placeholders: replaced in the encoded body by what json.dumps cannot produce.
RAW = {
    '"\\u00a7HUGE_INT\\u00a7"': b"9" * 4301,
    '"\\u00a7NAN\\u00a7"': b"NaN",
    '"\\u00a7INF\\u00a7"': b"-Infinity",
    '"\\u00a7BIG_FLOAT\\u00a7"': b"1e400",
    '"\\u00a7RAW_SURROGATE\\u00a7"': b'"a\xed\xa0\x80b"',
    '"\\u00a7BAD_UTF8\\u00a7"': b'"\xff\xfe"',
}
PLACEHOLDERS = [json.loads(key) for key in RAW]

GUIDS = [SEED_IDS[k] for k in ("contact:maria", "contact:sean", "account:acme", "lead:1", "user:alice")]
USERS = [SEED_IDS["user:alice"], SEED_IDS["user:disabled"], "user-123"]

ODD_TEXT = [  # text that passes validation and goes all the way to Dynamics and back
    " ",
    "[",
    "]",
    "{",
    "'",
    "''",
    "\\",
    "%",
    "%00",
    "\x00",
    "\udbff\udc00x",  # a valid pair: one astral character after decoding
    "😀",
    "x" * 70_000,
    "é" * 5_000,
    "a" * 201,
    "' or 1 eq 1 or '",
    "$filter=contactid ne null",
    "{{crmId}}",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "mailto:a@b.c",
    "@",
    "a@b",
    "https://",
    "https://linkedin.com/in/" + "x" * 3000,
    "00000000-0000-0000-0000-000000000000",
    "5074C0A2-020F-5A43-943E-D1358EB61505",
    "{5074c0a2-020f-5a43-943e-d1358eb61505}",
    "0000-00-00",
    "9999-12-31T23:59:59Z",
    "+275760-09-13T00:00:00Z",
    "2024-02-30T10:00:00Z",
    "1e400",
    "NaN",
    "-0",
]
ODD = st.one_of(st.sampled_from(ODD_TEXT), st.sampled_from([0, -1, 2**63, 10**4000, 1e308, 0.5, True]), st.none())
HOSTILE_TEXT = st.sampled_from(["", "\ud800", "a\udfffb", "\udc00", *ODD_TEXT, *PLACEHOLDERS])
HOSTILE_NUMBER = st.sampled_from(
    [0, -1, 2**31, 2**63, -(2**63) - 1, 10**4000, -(10**4000), 1e308, -1e-308, 0.5, *PLACEHOLDERS[:4]]
)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
SCALAR = st.one_of(PLAIN, HOSTILE_TEXT, HOSTILE_NUMBER)
JSON = st.recursive(
    SCALAR,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
DEEP = st.integers(min_value=20, max_value=120).map(lambda n: json.loads('{"a": [' * n + "1" + "]}" * n))


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy by weight (`st.one_of` flattens nested one_ofs, so it cannot weight a composite)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(min_value=0, max_value=len(table) - 1).flatmap(lambda i: table[i])


HOSTILE = weighted(
    (4, HOSTILE_TEXT),
    (2, HOSTILE_NUMBER),
    (1, PLAIN),
    (2, st.one_of(JSON, st.just({"a": {"b": ["c"]}}), st.just(["x"]))),
    (1, DEEP),
)


def rarely_hostile(common: st.SearchStrategy[Any], percent: int = 10) -> st.SearchStrategy[Any]:
    return weighted((100 - percent, common), (percent, HOSTILE))


def field(*plausible: Any) -> st.SearchStrategy[Any]:
    """A field's value: mostly plausible or odd-but-valid (so most bodies reach Dynamics), at times hostile."""
    common = weighted((3, st.sampled_from(plausible)), (2, ODD)) if plausible else ODD
    return rarely_hostile(common, 8)


GUID = field(*GUIDS, str(uuid.UUID(int=7)))
TEXT = field("Ana", "Acme Inc", "CEO", "+34 600 000 000")
DATE = field("2024-12-31T10:00:00Z", "2024-12-31", "2024-12-31T10:00:00+02:00")
CAMPAIGNS = weighted((3, field("Spring", "Spring, Summer")), (1, st.lists(field("Q1", ""), max_size=3)))
EXTRAS = st.dictionaries(st.one_of(st.text(max_size=10), HOSTILE_TEXT), rarely_hostile(ODD, 30), max_size=2)


def record(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    shaped = st.builds(
        lambda fixed, extra: {**extra, **fixed},
        st.fixed_dictionaries(required, optional=optional),
        EXTRAS,
    )
    return rarely_hostile(shaped, 5)


CONTACT_FIELDS = {
    "email": field("ana@example.com", "ANA@EXAMPLE.COM ", "maria.garcia@contoso.com"),
    "firstName": TEXT,
    "lastName": TEXT,
    "phone": TEXT,
    "company": TEXT,
    "title": TEXT,
    "linkedinUrl": field("https://linkedin.com/in/ana", "linkedin.com/in/ana/"),
    "ownerId": field(*USERS),
    "campaigns": CAMPAIGNS,
}
COMPANY_FIELDS = {
    "name": TEXT,
    "domain": field("acme.com", "https://www.acme.com/", "ACME.COM"),
    "industry": TEXT,
    "linkedinUrl": field("https://linkedin.com/company/acme"),
    "ownerId": field(*USERS),
    "campaigns": CAMPAIGNS,
    "numberOfEmployees": field(150, "11-50", 0),
    "employeeCount": field(150, "150"),
}
EXTERNAL_ID = field("lead-1", "lead-2", "123", 42)
EXPORT_VALUES = rarely_hostile(
    st.dictionaries(weighted((9, st.sampled_from(["leadsource", "status"])), (1, HOSTILE_TEXT)), ODD, max_size=2)
)


def records(key: str, required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    items = rarely_hostile(st.lists(record(required, optional), max_size=3))
    return st.fixed_dictionaries({key: items}, optional={"exportValues": EXPORT_VALUES})


IDS = weighted(
    (17, st.lists(GUID, max_size=4)), (1, st.just([str(uuid.UUID(int=i)) for i in range(1001)])), (2, HOSTILE)
)

TASK = st.fixed_dictionaries(
    {"subject": field("Follow up", "x" * 300)},
    optional={
        "description": TEXT,
        "type": field("call", "email", "todo"),
        "ownerId": field(*USERS),
        "dueDate": DATE,
        "contactId": GUID,
        "companyId": GUID,
    },
)
TASK_PATCH = st.fixed_dictionaries(
    {},
    optional={
        "completed": field(True, False),
        "subject": field("Renamed"),
        "description": TEXT,
        "type": field("call"),
        "dueDate": DATE,
    },
)
ACTIVITY = st.fixed_dictionaries(
    {"type": field("EMAIL", "linkedin", "LINKEDIN_CONNECTION", "LINKEDIN_INMAIL", "CALL", "MEETING", "NOTE")},
    optional={
        "subject": field("[1/3] [FROM Acme Corp] John Smith", "[TechStartup Inc] Jane Doe"),
        "body": field("<div>Hi</div>"),
        "direction": field("INBOUND", "outbound"),
        "ownerId": field(*USERS),
        "occurredAt": DATE,
        "contactId": GUID,
        "companyId": GUID,
        "metadata": rarely_hostile(
            st.fixed_dictionaries(
                {},
                optional={
                    "messageId": field("msg-1", 7),
                    "sequenceIndex": field(1, "2", 0),
                    "sequenceMessageCount": field(3, "3"),
                    "campaignName": TEXT,
                    "senderEmail": field("alice@contoso.com"),
                },
            ),
        ),
    },
)

SCHEMAS: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("POST", "contacts"): records("contacts", {"externalId": EXTERNAL_ID}, CONTACT_FIELDS),
    ("POST", "contacts/sync"): records("contacts", {"externalId": EXTERNAL_ID}, CONTACT_FIELDS),
    ("PUT", "contacts"): records("contacts", {"crmId": GUID}, {"externalId": EXTERNAL_ID, **CONTACT_FIELDS}),
    ("POST", "contacts/batch"): st.fixed_dictionaries({"ids": IDS}),
    ("POST", "companies"): records("companies", {"externalId": EXTERNAL_ID}, COMPANY_FIELDS),
    ("POST", "companies/sync"): records("companies", {"externalId": EXTERNAL_ID}, COMPANY_FIELDS),
    ("PUT", "companies"): records("companies", {"crmId": GUID}, {"externalId": EXTERNAL_ID, **COMPANY_FIELDS}),
    ("POST", "companies/batch"): st.fixed_dictionaries({"ids": IDS}),
    ("POST", "associations"): st.fixed_dictionaries(
        {
            "associations": rarely_hostile(
                st.lists(
                    rarely_hostile(st.fixed_dictionaries({"contactCRMId": GUID, "companyCRMId": GUID})), max_size=3
                )
            )
        }
    ),
    ("POST", "tasks"): TASK,
    ("PATCH", "tasks/{id}"): TASK_PATCH,
    ("POST", "tasks/batch"): st.fixed_dictionaries({"ids": IDS}),
    ("PATCH", "tasks/batch"): st.fixed_dictionaries({"ids": IDS}, optional={"completed": field(True, False)}),
    ("POST", "activities"): ACTIVITY,
}
ROUTES = list(SCHEMAS)
TASK_IDS = st.sampled_from(["{task}", str(uuid.UUID(int=3)), "batch", "BATCH", "%ED%A0%80", "%00", "x" * 300, "a%2Fb"])
GARBAGE_BYTES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b"{}",
    b"[[[[",
    b'{"a":',
    b'"\\ud800"',
    b'{"x": "\\ud800"}',
    b"\xed\xa0\x80",
    b'{"x": "\xed\xa0\x80"}',
    b"9" * 5000,
    b'{"x": ' + b"9" * 5000 + b"}",
    b"NaN",
    b'{"x": -Infinity}',
    b"[" * 100_000,
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
]
GARBAGE = weighted((2, st.binary(max_size=40)), (2, st.sampled_from(GARBAGE_BYTES)), (3, JSON.map(lambda v: encode(v))))


def encode(body: Any) -> bytes:
    text = json.dumps(body).encode()  # ensure_ascii: escaped surrogates travel as \udXXX, like any client
    for placeholder, raw in RAW.items():
        text = text.replace(placeholder.encode(), raw)
    return text


def printable(text: str) -> str:
    """A failure report must survive what it quotes: pytest-xdist cannot ship a lone surrogate."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.fixture(autouse=True)
def printable_logs() -> Iterator[None]:
    """Log records (and their tracebacks) made printable when created, so a captured log that quotes a
    hostile value does not crash the xdist worker reporting a failure."""
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.msg, record.args = printable(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = printable("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)
    yield
    logging.setLogRecordFactory(make)


def check(response: Any, method: str, path: str, raw: bytes) -> None:
    status = response.status_code
    where = f"{method} {path} with {raw[:300]!r}"
    assert status < 500, f"{status} for {where}: {response.get_body()[:500]!r}"
    if status >= 400:
        body = json.loads(response.get_body())
        assert isinstance(body, dict) and isinstance(body.get("error"), str), where
        assert isinstance(body.get("message"), str), where


def send(stack: Any, method: str, path: str, raw: bytes) -> Any:
    try:
        response = stack.host.http(method, f"/api/{path}", headers=stack.headers, body=raw)
    except Exception as exc:  # escaped the app's error boundary: the real host would answer 500
        trace = "".join(traceback.format_exception(exc))
        raise AssertionError(printable(f"500 (raised) for {method} {path} with {raw[:300]!r}:\n{trace}")) from None
    check(response, method, path, raw)
    return response


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body a value sits (the root included), to put a hostile one there."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*path, index))
    return found


def mutated(body: Any, data: st.DataObject) -> Any:
    """A copy of the body with one value (any field, item or the whole body) replaced by a hostile one."""
    body = copy.deepcopy(body)  # st.just() hands out one shared object
    where = data.draw(st.sampled_from(paths(body)), label="where")
    value = data.draw(HOSTILE, label="hostile")
    if not where:
        return value
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = value
    return body


def _a_task(stack: Any) -> str:
    created = stack.call("POST", "tasks", {"subject": "Fuzz target", "contactId": SEED_IDS["contact:maria"]})
    assert created.status_code == 201, created.json
    return str(created.json["id"])


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_schema_shaped_hostile_bodies_never_get_a_5xx(stack: Any, method: str, route: str) -> None:
    task_id = _a_task(stack) if "{id}" in route else ""

    @FUZZ
    @given(body=SCHEMAS[(method, route)], task=TASK_IDS, data=st.data())
    def run(body: Any, task: str, data: st.DataObject) -> None:
        if data.draw(st.booleans(), label="mutate"):
            body = mutated(body, data)
        path = route.replace("{id}", task.replace("{task}", task_id))
        send(stack, method, path, encode(body))

    run()


ALL_ROUTES = [*ROUTES, ("GET", "tasks/{id}"), ("GET", "activities/{id}")]


@pytest.mark.parametrize(("method", "route"), ALL_ROUTES, ids=[f"{m} {r}" for m, r in ALL_ROUTES])
def test_known_garbage_never_gets_a_5xx(stack: Any, method: str, route: str) -> None:
    path = route.replace("{id}", str(uuid.UUID(int=5)))
    for raw in GARBAGE_BYTES:
        send(stack, method, path, raw)


@FUZZ
@given(route=st.sampled_from(ALL_ROUTES), raw=GARBAGE, task=TASK_IDS)
def test_garbage_bodies_never_get_a_5xx(stack: Any, route: tuple[str, str], raw: bytes, task: str) -> None:
    method, template = route
    send(stack, method, template.replace("{id}", task.replace("{task}", str(uuid.UUID(int=5)))), raw)
