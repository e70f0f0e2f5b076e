"""Schemathesis against the local host over a real socket: every operation of the document that
`GET /api/openapi.json` serves, with requests generated from the document itself (valid and invalid), must
never answer 5xx, and every reply must match the document's schema for its status.

Genesy routes get the stack's API key; admin routes need none (the test host checks no function key). A
path's `workspace_id` is most often replaced by the stack's workspace, so the calls get past the 404.
Examples are bounded and derandomized (`SCHEMATHESIS_EXAMPLES` per operation, default 20, valid and
invalid requests mixed); for a longer hunt, `SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_RANDOM=1`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from functions import openapi

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("SCHEMATHESIS_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)

SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def base_url(function_host: Any) -> Iterator[str]:
    url, stop = function_host.serve_in_thread(0, "127.0.0.1")
    try:
        yield url + "/api"
    finally:
        stop()


def _strategy(operation: Any) -> st.SearchStrategy[Any]:
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )


def _aim(case: Any, stack: Any) -> None:
    """Point most cases at what exists (the stack's workspace, a real queue) and send the right API key."""
    params = case.path_parameters or {}
    if "workspace_id" in params and len(str(params["workspace_id"])) % 4:
        params["workspace_id"] = stack.workspace_id
    if "queue" in params and len(str(params["queue"])) % 2:
        params["queue"] = stack.settings.writes_queue
    if any(req.get("genesyApiKey") is not None for req in case.operation.definition.raw.get("security", [])):
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
        case.headers = {**headers, "X-API-Key": stack.api_key}


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_operation_conforms_and_never_fails(operation: Any, stack: Any, base_url: str) -> None:
    @SETTINGS
    @given(case=_strategy(operation))
    def run(case: Any) -> None:
        _aim(case, stack)
        response = case.call(base_url=base_url, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()
