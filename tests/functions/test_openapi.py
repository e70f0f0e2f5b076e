"""The OpenAPI 3.1 document: valid, complete (every registered HTTP function, nothing else), consistent with
the handlers (security by auth level, extensions, mirrored models, examples that fit their schemas, the
replies of a realistic session on the local stack), served at `GET /api/openapi.json`, and the admin
reference generated from it up to date."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from functions import openapi
from shared.platform.openapi import EXTENSION, openapi_path, operations_of
from shared.services import api_catalog

ROOT = Path(__file__).resolve().parents[2]

# Operations Genesy documents (docs/reference: Custom CRM API); everything else is our extension.
GENESY_DOCUMENTED = {
    ("GET", "/health"),
    ("GET", "/users"),
    ("POST", "/contacts"),
    ("PUT", "/contacts"),
    ("POST", "/contacts/sync"),
    ("POST", "/companies"),
    ("PUT", "/companies"),
    ("POST", "/companies/sync"),
    ("POST", "/associations"),
    ("POST", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("PATCH", "/tasks/{id}"),
    ("POST", "/tasks/batch"),
    ("PATCH", "/tasks/batch"),
    ("POST", "/activities"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document()


def _http_functions(function_host: Any) -> list[Any]:
    return [f for f in function_host.functions.values() if f.trigger_type == "httpTrigger"]


def _described(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for method, path, op in operations_of(document)}


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message[:300]}" for e in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert not errors, "\n".join(errors)
    ids = [op["operationId"] for _, _, op in operations_of(document)]
    assert len(ids) == len(set(ids))


def test_every_registered_http_function_is_described_and_nothing_else(
    function_host: Any, document: dict[str, Any]
) -> None:
    described = _described(document)
    registered: dict[tuple[str, str], str] = {}
    any_method = [f.name for f in _http_functions(function_host) if not f.methods]
    assert not any_method, f"HTTP functions accepting any method cannot be described: {any_method}"
    for info in _http_functions(function_host):
        if info.route in api_catalog.CONSOLE_ROUTES:
            continue  # the console's pages and their own calls: left out on purpose, with the reason
        for method in info.methods:
            registered[(method.upper(), openapi_path(info.route))] = info.name
    missing = sorted(
        f"{name}: {method} {path} (functions/, route {path[1:]!r})"
        for (method, path), name in registered.items()
        if (method, path) not in described
    )
    assert not missing, "add these to shared/services/api_catalog.py:\n" + "\n".join(missing)
    extra = sorted(f"{method} {path}" for method, path in described if (method, path) not in registered)
    assert not extra, "described in shared/services/api_catalog.py but not registered:\n" + "\n".join(extra)


def test_each_operation_is_its_function(function_host: Any, document: dict[str, Any]) -> None:
    """The operation id is the registered function's name (with a suffix for a second method)."""
    described = _described(document)
    wrong = []
    for info in _http_functions(function_host):
        for method in info.methods:
            op = described.get((method.upper(), openapi_path(info.route)))
            if op is None:
                continue  # reported by the coverage test
            op_id = op["operationId"]
            if op_id != info.name and not op_id.startswith(info.name + "_"):
                wrong.append(f"{method} {info.route}: operationId {op_id}, function {info.name}")
    assert not wrong, "\n".join(wrong)


def test_security_follows_the_auth_level(function_host: Any, document: dict[str, Any]) -> None:
    described = _described(document)
    for info in _http_functions(function_host):
        for method in info.methods:
            op = described.get((method.upper(), openapi_path(info.route)))
            if op is None:
                continue  # reported by the coverage test
            security = op["security"]
            if info.auth_level == "function":
                assert security == [{"functionKey": []}, {"functionKeyQuery": []}], info.name
            elif info.route == "openapi.json":
                assert security == [], info.name
            elif info.route.startswith("webhooks/"):
                assert security == [{"webhookSecret": []}], info.name
            else:
                assert info.auth_level == "anonymous"
                assert security == [{"genesyApiKey": []}], info.name
    schemes = document["components"]["securitySchemes"]
    assert schemes["genesyApiKey"] == {**schemes["genesyApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert (schemes["functionKey"]["in"], schemes["functionKey"]["name"]) == ("header", "x-functions-key")
    assert (schemes["functionKeyQuery"]["in"], schemes["functionKeyQuery"]["name"]) == ("query", "code")


def test_our_extensions_are_marked(document: dict[str, Any]) -> None:
    for method, path, op in operations_of(document):
        documented = (method, path) in GENESY_DOCUMENTED
        assert op.get(EXTENSION, False) is (not documented), f"{method} {path}"


def test_every_error_reply_is_the_error_body(document: dict[str, Any]) -> None:
    for method, path, op in operations_of(document):
        for status, response in op["responses"].items():
            if int(status) >= 400 and "content" in response:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"} or status == "422", (
                    f"{method} {path} {status}"
                )


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(
        {**schema, "components": document["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    out = []
    for method, path, op in operations_of(document):
        for param in op.get("parameters", []):
            if "example" in param:
                out.append((f"{method} {path} {param['name']}", param["schema"], param["example"]))
        media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in media:
            out.append((f"{method} {path} body", media["schema"], media["example"]))
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json", {})
            if "example" in media:
                out.append((f"{method} {path} {status}", media["schema"], media["example"]))
    return out


def test_every_example_fits_its_schema(document: dict[str, Any]) -> None:
    examples = _examples(document)
    assert len(examples) > 40
    wrong = []
    for where, schema, example in examples:
        errors = list(_validator(document, schema).iter_errors(example))
        wrong += [f"{where}: {'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors]
    assert not wrong, "\n".join(wrong)


def test_every_admin_operation_has_an_example_request_and_reply(document: dict[str, Any]) -> None:
    for method, path, op in operations_of(document, api_catalog.ADMIN_TAGS):
        ok = [r for s, r in op["responses"].items() if s.startswith("2")]
        assert any("example" in r.get("content", {}).get("application/json", {}) for r in ok), f"{method} {path}"
        if "requestBody" in op:
            assert "example" in op["requestBody"]["content"]["application/json"], f"{method} {path}"


def test_request_bodies_are_the_handlers_models(function_host: Any) -> None:
    """Models local to a handler's module are mirrored in the catalog: the two must stay the same."""

    def local(function_name: str, model_name: str) -> Any:
        fn = inspect.unwrap(function_host.functions[function_name].user_function)
        return inspect.getclosurevars(fn).nonlocals[model_name]

    for function_name, model in (("manage_sync_retry", api_catalog.RetryRequest),):
        try:
            handler_model = local(function_name, model.__name__)
        except KeyError:
            continue  # the handler no longer has a local model: the catalog should then import its model
        assert handler_model.model_json_schema() == model.model_json_schema(), function_name


def test_hand_checked_limits_match_the_handlers() -> None:
    from functions import admin_mappings, admin_operations, admin_workspaces
    from shared.storage.ledger import LedgerStatus

    assert set(api_catalog.SectionEnvelope.model_fields) == admin_mappings._ENVELOPE

    assert api_catalog.MAX_GRACE_SECONDS == admin_workspaces.MAX_GRACE_SECONDS
    assert set(api_catalog.SYNC_LOG_KINDS) == admin_operations._KINDS
    assert set(LedgerStatus.__args__) == admin_operations._STATUSES  # type: ignore[attr-defined]


def test_the_route_prefix_is_the_server_url(document: dict[str, Any]) -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert document["servers"] == [{"url": "/" + host["extensions"]["http"]["routePrefix"]}]


def test_get_openapi_json_answers_the_document(function_host: Any, document: dict[str, Any]) -> None:
    response = function_host.http("GET", "/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == json.loads(json.dumps(document))
    assert function_host.http("POST", "/api/openapi.json").status_code == 405


def test_the_admin_reference_is_generated_from_the_document() -> None:
    current = (ROOT / "docs" / "admin-api.md").read_text()
    assert current == openapi.admin_reference(), (
        "docs/admin-api.md is out of date: python -m functions.openapi --markdown > docs/admin-api.md"
    )


def test_the_models_the_catalog_names_are_supplied() -> None:
    assert api_catalog.named_models() == set(openapi.HANDLER_MODELS)


# ---------------------------------------------------------------------------------------------
# Replies of a realistic session (matches, sync-back, refused pairs, tasks, repeats, every admin read)
# against the document: the fuzzer's random ids rarely reach these shapes.


class _Conformance:
    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, response: Any) -> Any:
        op = _described(self.document)[(method, path)]
        status = str(response.status_code)
        assert status in op["responses"], f"{method} {path}: {status} not documented ({response.get_body()[:300]!r})"
        self.seen.add((method, path))
        media = op["responses"][status].get("content", {}).get("application/json")
        body = response.get_body()
        if media is None:
            return None
        data = json.loads(body)
        errors = list(_validator(self.document, media["schema"]).iter_errors(data))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors
        )
        return data


@pytest.mark.integration
def test_replies_of_a_realistic_session_fit_the_document(stack: Any, document: dict[str, Any]) -> None:
    from devstack.dataverse_sandbox.seed import SEED_IDS

    maria, acme, unknown = SEED_IDS["contact:maria"], SEED_IDS["account:acme"], "00000000-0000-4000-8000-000000000001"
    check = _Conformance(document)
    ws = f"manage/workspaces/{stack.workspace_id}"
    admin = {"Content-Type": "application/json"}

    def call(method: str, route: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        path = openapi_path(route.split("?")[0])
        for name, value in ((stack.workspace_id, "{workspace_id}"), (maria, "{id}")):
            path = path.replace(name, value)
        return check(
            method,
            path if path in document["paths"] else _template(document, method, path),
            stack.call(method, route, body, headers),
        )

    # A sync-back column, so sync and batch reads carry `properties`.
    sync = call("GET", f"{ws}/mappings/sync", headers=admin)
    document_ = {**sync["document"], "contact_sync_back": {"title": "jobtitle"}}
    etag = stack.call("GET", f"{ws}/mappings/sync", headers=admin).headers["ETag"]
    call("PUT", f"{ws}/mappings/sync", document_, headers={**admin, "If-Match": etag})

    call("GET", "health")
    call("GET", "users")
    contacts = [{"externalId": "m", "email": "maria.garcia@acme.com"}, {"externalId": "n", "email": "new@new.example"}]
    call("POST", "contacts/sync", {"contacts": contacts})
    created = call("POST", "contacts", {"contacts": contacts})
    call("POST", "companies", {"companies": [{"externalId": "c", "name": "Acme Corporation", "domain": "acme.com"}]})
    call("POST", "companies/sync", {"companies": [{"externalId": "c", "domain": "acme.com"}]})
    call("PUT", "contacts", {"contacts": [{"crmId": maria, "title": "CTO"}, {"crmId": unknown}, {"crmId": "x"}]})
    call("PUT", "companies", {"companies": [{"crmId": acme, "industry": "Software"}]})
    call("POST", "contacts/batch", {"ids": [maria, created["results"][1]["crmId"], unknown]})
    call("POST", "companies/batch", {"ids": [acme]})
    call("POST", "associations", {"associations": [{"contactCRMId": maria, "companyCRMId": acme}]})
    call("POST", "associations", {"associations": [{"contactCRMId": unknown, "companyCRMId": acme}]})
    stack.drain()

    task = call("POST", "tasks", {"subject": "Call", "contactId": maria, "dueDate": "2030-01-01T10:00:00Z"})
    call("POST", "tasks", {"subject": "Call", "contactId": created["results"][1]["crmId"]})  # queued behind it
    call("POST", "tasks", {"subject": "Call", "contactId": unknown})
    call("GET", f"tasks/{task['id']}")
    call("PATCH", f"tasks/{task['id']}", {"completed": True, "type": "email"})
    call("GET", f"tasks/{unknown}")
    call("POST", "tasks/batch", {"ids": [task["id"], unknown]})
    call("PATCH", "tasks/batch", {"ids": [task["id"]], "completed": False})
    activity = {
        "type": "EMAIL",
        "subject": "Hi",
        "direction": "OUTBOUND",
        "contactId": maria,
        "metadata": {"messageId": "m1"},
    }
    logged = call("POST", "activities", activity)
    call("POST", "activities", activity)  # a repeat: 200
    call("POST", "activities", {**activity, "type": "linkedin", "metadata": {"messageId": "m2", "campaign": "Q3"}})
    call("GET", f"activities/{logged['id']}")
    event = {
        "contact_id": maria,
        "campaign": "Q3",
        "event": "open",
        "occurred_at": "2025-01-10T10:00:00Z",
        "event_id": "e1",
    }
    call("POST", "campaign-events", {"events": [event]})
    call("GET", "health", headers={"X-API-Key": "gdk_wrong"})
    call("HEAD", "health")
    stack.drain()

    issued = call("POST", f"{ws}/webhook-secret", headers=admin)
    hook = {"Content-Type": "application/json", "X-Webhook-Secret": issued["secret"]}
    reply = {"eventType": "MESSAGE_REPLIED", "eventId": "w1", "email": "maria.garcia@acme.com", "campaignName": "Q3"}
    call("POST", f"webhooks/genesy/{stack.workspace_id}", reply, headers=hook)
    call("POST", f"webhooks/genesy/{stack.workspace_id}", reply, headers={**hook, "X-Webhook-Secret": "wrong-one"})
    call("POST", f"webhooks/genesy/{stack.workspace_id}", {"hello": 1}, headers=hook)
    call("GET", f"{ws}/webhook-deliveries?limit=5", headers=admin)
    call("POST", f"{ws}/webhook-deliveries/reprocess", {"status": "unparsed"}, headers=admin)
    stack.drain()

    call("GET", "manage/workspaces", headers=admin)
    call("GET", ws, headers=admin)
    etag = stack.call("GET", ws, headers=admin).headers["ETag"]
    call("PATCH", ws, {"name": "Renamed"}, headers={**admin, "If-Match": etag})
    call("PATCH", ws, {"name": "Again"}, headers={**admin, "If-Match": etag})  # stale: 412
    call("PATCH", ws, {"name": "Again"}, headers=admin)  # 428
    call("GET", f"{ws}/mappings", headers=admin)
    call("GET", f"{ws}/mappings/sync/history", headers=admin)
    call("GET", f"{ws}/sync-health", headers=admin)
    call("GET", f"{ws}/sync-log?limit=5", headers=admin)
    call("POST", f"{ws}/sync-log/retry", headers=admin)
    call("POST", f"{ws}/reconcile", headers=admin)
    call("POST", f"{ws}/preview", {"kind": "contact", "records": contacts}, headers=admin)
    call("POST", f"{ws}/preview", {"kind": "contact", "crmIds": [maria], "records": [{"title": "CEO"}]}, headers=admin)
    call("POST", f"{ws}/validate", headers=admin)
    call("GET", f"{ws}/metadata/contact", headers=admin)
    call("GET", f"{ws}/users", headers=admin)
    call("POST", f"{ws}/connection-test", headers=admin)
    call("GET", f"{ws}/identities", headers=admin)
    call("POST", f"manage/queues/{stack.settings.writes_queue}/replay-dead-letters", headers=admin)
    call("POST", f"{ws}/keys", {"grace_seconds": 60}, headers=admin)
    call(
        "POST",
        "manage/workspaces",
        {"name": "Other", "environment_url": "https://other.crm.dynamics.com"},
        headers=admin,
    )
    call("GET", "manage/workspaces/nope", headers=admin)
    call("GET", "openapi.json")

    untouched = sorted(f"{m} {p}" for m, p, _ in operations_of(document) if (m, p) not in check.seen)
    assert not untouched, "operations this session does not call yet:\n" + "\n".join(untouched)


def _template(document: dict[str, Any], method: str, path: str) -> str:
    """The documented path template a concrete path belongs to (`/tasks/abc` → `/tasks/{id}`)."""
    parts = path.strip("/").split("/")
    for template, item in document["paths"].items():
        names = template.strip("/").split("/")
        same = len(names) == len(parts) and all(
            n == p or (n.startswith("{") and n.endswith("}")) for n, p in zip(names, parts, strict=True)
        )
        if same and method.lower() in item:
            return template
    raise AssertionError(f"{method} {path}: no documented path")
