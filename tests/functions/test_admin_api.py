"""The admin API called the way the Functions host calls it: a fresh FunctionApp with the two
blueprints, each function's user function invoked with a real `func.HttpRequest`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest

from functions import admin_mappings, admin_workspaces
from mapping_store.store import SECTIONS
from shared.messaging.queue import InProcessQueue
from shared.platform.settings import Settings
from shared.services.root import Services

Call = Callable[..., func.HttpResponse]
WS_BODY = {"name": "Acme", "environment_url": "https://acme.crm.dynamics.com"}


@pytest.fixture
def functions(settings: Settings) -> Iterator[dict[str, func.FunctionBuilder | Any]]:
    services = Services(settings, sender=InProcessQueue())
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(admin_workspaces.blueprint(lambda: services))
    app.register_functions(admin_mappings.blueprint(lambda: services))
    yield {f.get_function_name(): f for f in app.get_functions()}
    services.close()


@pytest.fixture
def call(functions: dict[str, Any]) -> Call:
    def invoke(
        name: str,
        method: str,
        url: str,
        *,
        route: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> func.HttpResponse:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        request = func.HttpRequest(
            method,
            f"http://localhost/api/{url}",
            headers=headers or {},
            route_params=route or {},
            params=params or {},
            body=data,
        )
        response = functions[name].get_user_function()(request)
        assert isinstance(response, func.HttpResponse)
        return response

    return invoke


def _json(response: func.HttpResponse) -> Any:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def _error(response: func.HttpResponse, status: int, code: str | None = None) -> dict[str, Any]:
    body = _json(response)
    assert response.status_code == status, body
    assert set(body) <= {"error", "message", "details"} and body["message"]
    if code:
        assert body["error"] == code
    return dict(body)


@pytest.fixture
def created(call: Call) -> dict[str, Any]:
    response = call("manage_create_workspace", "POST", "manage/workspaces", body=WS_BODY, headers={"x-actor": "ana"})
    assert response.status_code == 201
    return dict(_json(response))


def _mapping(call: Call, ws: str, section: str, method: str = "GET", **kwargs: Any) -> func.HttpResponse:
    name = "manage_get_mapping" if method == "GET" else "manage_put_mapping"
    url = f"manage/workspaces/{ws}/mappings/{section}"
    return call(name, method, url, route={"workspace_id": ws, "section": section}, **kwargs)


def test_every_function_is_function_key_protected_under_manage(functions: dict[str, Any]) -> None:
    assert set(functions) == {
        "manage_create_workspace",
        "manage_list_workspaces",
        "manage_get_workspace",
        "manage_update_workspace",
        "manage_rotate_key",
        "manage_get_mapping",
        "manage_put_mapping",
        "manage_mapping_history",
        "manage_all_mappings",
    }
    for function in functions.values():
        trigger = function.get_trigger()
        assert trigger.auth_level == func.AuthLevel.FUNCTION
        assert trigger.route.startswith("manage/")


# -- workspaces ----------------------------------------------------------------------------------


def test_create_list_and_get_workspace(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]
    assert created["api_key"].startswith("gdk_") and "shown once" in created["note"]
    assert ws["environment_url"] == "https://acme.crm.dynamics.com"
    assert ws["contact_entity"] == "contact" and ws["key_header"] == "X-API-Key"
    assert [k["key_id"] for k in ws["keys"]] == [created["api_key"].split("_")[1]]

    listed = _json(call("manage_list_workspaces", "GET", "manage/workspaces"))
    assert [w["id"] for w in listed["workspaces"]] == [ws["id"]]
    got = call("manage_get_workspace", "GET", f"manage/workspaces/{ws['id']}", route={"workspace_id": ws["id"]})
    assert got.status_code == 200 and _json(got)["workspace"] == ws
    assert created["api_key"] not in got.get_body().decode()


@pytest.mark.parametrize(
    ("raw", "code", "fields"),
    [
        (b"{not json", "invalid_json", None),
        (b"", "invalid_body", None),
        (b"[]", "invalid_body", ["body"]),
        (json.dumps({"environment_url": "https://a.crm.dynamics.com"}).encode(), "invalid_body", ["name"]),
        (json.dumps({**WS_BODY, "environment_url": "ftp://x"}).encode(), "invalid_body", ["environment_url"]),
        (json.dumps({**WS_BODY, "contact_entity": "account"}).encode(), "invalid_body", ["contact_entity"]),
        (json.dumps({**WS_BODY, "key_header": "X Key!"}).encode(), "invalid_body", ["key_header"]),
        (json.dumps({**WS_BODY, "admin": True}).encode(), "invalid_body", ["admin"]),
        (json.dumps({**WS_BODY, "name": 5}).encode(), "invalid_body", ["name"]),
        (b'"' + b"x" * (5 * 1024 * 1024 + 10) + b'"', "body_too_large", None),
    ],
)
def test_create_workspace_rejects_bad_bodies(call: Call, raw: bytes, code: str, fields: list[str] | None) -> None:
    body = _error(call("manage_create_workspace", "POST", "manage/workspaces", raw=raw), 400, code)
    if fields:
        assert [d["field"] for d in body["details"]] == fields
    assert _json(call("manage_list_workspaces", "GET", "manage/workspaces")) == {"workspaces": []}


@pytest.mark.parametrize("workspace_id", ["0" * 32, "nope", "a%2Fb", "x" * 500])
def test_unknown_workspace_is_404_everywhere(call: Call, workspace_id: str) -> None:
    route = {"workspace_id": workspace_id, "section": "sync"}
    base = f"manage/workspaces/{workspace_id}"
    responses = [
        call("manage_get_workspace", "GET", base, route=route),
        call("manage_update_workspace", "PATCH", base, route=route, body={"name": "x"}, headers={"if-match": "*"}),
        call("manage_rotate_key", "POST", f"{base}/keys", route=route),
        _mapping(call, workspace_id, "sync"),
        _mapping(call, workspace_id, "sync", "PUT", body={}, headers={"if-match": '"0.new"'}),
        _mapping(call, workspace_id, "sync", "PUT", raw=b"{bad", headers={"if-match": '"0.new"'}),
        call("manage_mapping_history", "GET", f"{base}/mappings/sync/history", route=route),
        call("manage_all_mappings", "GET", f"{base}/mappings", route=route),
    ]
    for response in responses:
        _error(response, 404, "workspace_not_found")


def test_patch_workspace(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    route = {"workspace_id": ws}
    got = call("manage_get_workspace", "GET", f"manage/workspaces/{ws}", route=route)
    etag = got.headers["ETag"]
    url = f"manage/workspaces/{ws}"
    _error(call("manage_update_workspace", "PATCH", url, route=route, body={"name": "B"}), 428)
    patched = call("manage_update_workspace", "PATCH", url, route=route, body={"name": "B"}, headers={"If-Match": etag})
    assert patched.status_code == 200 and _json(patched)["workspace"]["name"] == "B"
    assert patched.headers["ETag"] != etag
    stale = call("manage_update_workspace", "PATCH", url, route=route, body={"name": "C"}, headers={"If-Match": etag})
    _error(stale, 412, "etag_mismatch")
    bad = call(
        "manage_update_workspace",
        "PATCH",
        url,
        route=route,
        body={"key_header": ""},
        headers={"If-Match": patched.headers["ETag"]},
    )
    assert _error(bad, 400)["details"][0]["field"] == "key_header"


def test_rotate_key(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    route = {"workspace_id": ws}
    url = f"manage/workspaces/{ws}/keys"
    response = call("manage_rotate_key", "POST", url, route=route, body={"grace_seconds": 30})
    assert response.status_code == 201
    body = _json(response)
    assert body["api_key"].startswith("gdk_") and body["api_key"] != created["api_key"]
    assert body["key_id"] == body["api_key"].split("_")[1]
    assert body["previous_keys_expire_at"]
    again = _json(call("manage_rotate_key", "POST", url, route=route))
    assert again["key_id"] not in (body["key_id"],)
    for bad in ({"grace_seconds": -1}, {"grace_seconds": "soon"}, {"grace_seconds": True}, {"grace": 3}, [1]):
        _error(call("manage_rotate_key", "POST", url, route=route, body=bad), 400)
    _error(call("manage_rotate_key", "POST", url, route=route, raw=b"{"), 400, "invalid_json")
    keys = _json(call("manage_get_workspace", "GET", f"manage/workspaces/{ws}", route=route))["workspace"]["keys"]
    assert len(keys) == 3


# -- mappings ------------------------------------------------------------------------------------


def test_get_put_history_of_a_section(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    first = _mapping(call, ws, "sync")
    assert first.status_code == 200 and first.headers["ETag"] == '"0.new"'
    body = _json(first)
    assert (body["section"], body["version"], body["updated_at"], body["updated_by"]) == ("sync", 0, None, None)
    assert body["document"]["contact"]["mode"] == "email_or_linkedin_or_name_company"

    _error(_mapping(call, ws, "sync", "PUT", body=body["document"]), 428, "if_match_required")
    document = {"contact": {"mode": "name_company"}, "company": {"mode": "domain"}}
    put = _mapping(call, ws, "sync", "PUT", body=document, headers={"If-Match": first.headers["ETag"], "x-actor": "bo"})
    assert put.status_code == 200
    saved = _json(put)
    assert (saved["version"], saved["updated_by"]) == (1, "bo")
    assert put.headers["ETag"] == saved["etag"] != first.headers["ETag"]
    _error(_mapping(call, ws, "sync", "PUT", body=document, headers={"If-Match": first.headers["ETag"]}), 412)
    _error(_mapping(call, ws, "sync", "PUT", body=document, headers={"If-Match": "garbage"}), 400, "invalid_etag")

    # A GET reply sent back as is (envelope) is accepted; the actor defaults to "admin".
    envelope = _json(_mapping(call, ws, "sync"))
    envelope["document"]["company"]["any_domain_extension"] = True
    second = _mapping(call, ws, "sync", "PUT", body=envelope, headers={"If-Match": put.headers["ETag"]})
    assert second.status_code == 200 and _json(second)["updated_by"] == "admin"

    route = {"workspace_id": ws, "section": "sync"}
    url = f"manage/workspaces/{ws}/mappings/sync/history"
    history = _json(call("manage_mapping_history", "GET", url, route=route))
    assert [e["version"] for e in history["entries"]] == [2, 1]
    assert [e["changed_by"] for e in history["entries"]] == ["admin", "bo"]
    assert history["entries"][0]["new"]["company"]["any_domain_extension"] is True
    assert history["entries"][1]["old"]["contact"]["mode"] == "email_or_linkedin_or_name_company"
    one = _json(call("manage_mapping_history", "GET", url, route=route, params={"limit": "1"}))
    assert len(one["entries"]) == 1
    for bad in ("0", "-1", "x", "501"):
        _error(call("manage_mapping_history", "GET", url, route=route, params={"limit": bad}), 400)


def test_invalid_document_is_400_with_field_paths(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    bad = {"contact": {"mode": "custom", "rules": [{"all_of": []}]}, "contact_sync_back": {"x": "BAD"}}
    body = _error(_mapping(call, ws, "sync", "PUT", body=bad, headers={"If-Match": '"0.new"'}), 400, "invalid_mapping")
    fields = {d["field"] for d in body["details"]}
    assert {"contact.rules[0].all_of", "contact_sync_back.x"} <= fields
    wrong_types = {"contact": {"fields": "firstname"}}
    body = _error(_mapping(call, ws, "export", "PUT", body=wrong_types, headers={"If-Match": '"0.new"'}), 400)
    assert body["details"][0]["field"] == "contact.fields"
    _error(_mapping(call, ws, "export", "PUT", raw=b"{nope", headers={"If-Match": '"0.new"'}), 400, "invalid_json")
    _error(_mapping(call, ws, "export", "PUT", raw=b"[1,2]", headers={"If-Match": '"0.new"'}), 400)


def test_big_documents(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    options = [f"{i:04d}" + "x" * 1200 for i in range(500)]
    too_big = {"contact": {"export_fields": [{"name": "pick", "column": "gd_pick", "options": options}]}}
    body = _error(_mapping(call, ws, "export", "PUT", body=too_big, headers={"If-Match": '"0.new"'}), 400)
    assert body["error"] == "document_too_large" and "limit" in body["message"]
    fits = {"contact": {"export_fields": [{"name": "pick", "column": "gd_pick", "options": options[:100]}]}}
    put = _mapping(call, ws, "export", "PUT", body=fits, headers={"If-Match": '"0.new"'})
    assert put.status_code == 200
    assert _json(_mapping(call, ws, "export"))["document"]["contact"]["export_fields"][0]["options"] == options[:100]


def test_unknown_section_is_404_naming_it(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    for response in (
        _mapping(call, ws, "owners"),
        _mapping(call, ws, "owners", "PUT", body={}, headers={"If-Match": '"0.new"'}),
        call(
            "manage_mapping_history",
            "GET",
            f"manage/workspaces/{ws}/mappings/owners/history",
            route={"workspace_id": ws, "section": "owners"},
        ),
    ):
        assert "'owners'" in _error(response, 404, "unknown_section")["message"]


def test_all_mappings(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    _mapping(call, ws, "campaign", "PUT", body={"enabled": False}, headers={"If-Match": '"0.new"'})
    body = _json(call("manage_all_mappings", "GET", f"manage/workspaces/{ws}/mappings", route={"workspace_id": ws}))
    assert body["workspace_id"] == ws
    assert list(body["sections"]) == list(SECTIONS)
    assert body["sections"]["campaign"]["version"] == 1
    assert body["sections"]["campaign"]["document"]["enabled"] is False
    assert body["sections"]["users"]["version"] == 0


def test_concurrent_puts_one_200_one_412(call: Call, created: dict[str, Any]) -> None:
    ws = created["workspace"]["id"]
    etag = _mapping(call, ws, "users").headers["ETag"]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def put(owner: str) -> None:
        barrier.wait()
        document = {"users": [{"genesy_user": owner, "systemuser_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}]}
        statuses.append(_mapping(call, ws, "users", "PUT", body=document, headers={"If-Match": etag}).status_code)

    threads = [threading.Thread(target=put, args=(name,)) for name in ("ana", "bo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 412]


def test_one_workspace_cannot_touch_another(call: Call, created: dict[str, Any]) -> None:
    a = created["workspace"]["id"]
    other = call("manage_create_workspace", "POST", "manage/workspaces", body={**WS_BODY, "contact_entity": "lead"})
    b = _json(other)["workspace"]["id"]
    put_a = _mapping(
        call, a, "sync", "PUT", body={"contact": {"mode": "name_company"}}, headers={"If-Match": '"0.new"'}
    )
    a_etag = put_a.headers["ETag"]
    # B still serves its own (lead) default; A's ETag cannot be used to write B.
    b_sync = _json(_mapping(call, b, "sync"))
    assert b_sync["version"] == 0 and b_sync["document"]["contact"]["company_column"] == "companyname"
    _mapping(call, b, "sync", "PUT", body={}, headers={"If-Match": '"0.new"'})
    _error(_mapping(call, b, "sync", "PUT", body={}, headers={"If-Match": a_etag}), 412)
    assert _json(_mapping(call, a, "sync"))["document"]["contact"]["mode"] == "name_company"
