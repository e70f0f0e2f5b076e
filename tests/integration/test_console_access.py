"""Who gets into the console, and what a cross-site request gets: nothing.

Sign-in (`CONSOLE_AUTH`): off by default; Easy Auth's principal with the admin app role, read only when
the setting says Easy Auth is in front; a development admin on loopback hosts only. Changes: same origin
(Sec-Fetch-Site / Origin) AND the page's signed double-submit token — each refused alone.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.platform.console_auth import CSRF_COOKIE

pytestmark = pytest.mark.integration

HOST = "127.0.0.1:7071"
SAME = {"Host": HOST, "Sec-Fetch-Site": "same-origin", "Origin": f"http://{HOST}"}


def _mode(stack: Any, mode: str, role: str = "GenesyDynamics.Admin") -> None:
    stack.settings = stack.settings.model_copy(update={"console_auth": mode, "console_admin_role": role})


def _principal(roles: list[str], oid: str = "0d3c0f4e-admin", name: str = "Jane Admin") -> str:
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "name", "val": name},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


def _get(stack: Any, path: str, headers: dict[str, str]) -> Any:
    return stack.host.http("GET", f"/api/console/{path}".rstrip("/"), headers=headers)


def _token(stack: Any, headers: dict[str, str]) -> str:
    """The page's token, as the cookie a page sets (and the page's meta tag repeats)."""
    page = _get(stack, "workspaces", headers)
    assert page.status_code == 200
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/console" in cookie
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    assert f'name="csrf-token" content="{token}"' in page.get_body().decode()
    return token


def _rotate(stack: Any, headers: dict[str, str]) -> Any:
    return stack.host.http(
        "POST", f"/api/console/api/workspaces/{stack.workspace_id}/keys", headers=headers, json={"grace_seconds": 0}
    )


def _keys(stack: Any) -> int:
    return len(stack.services.store.get_workspace(stack.workspace_id).keys)


def test_the_console_is_off_unless_configured_and_never_trusts_a_principal_it_was_not_told_about(stack: Any) -> None:
    forged = {"Host": HOST, "X-MS-CLIENT-PRINCIPAL": _principal(["GenesyDynamics.Admin"])}
    page = _get(stack, "", forged)
    assert page.status_code == 401 and "CONSOLE_AUTH" in page.get_body().decode()
    assert page.mimetype == "text/html"
    api = _rotate(stack, {**SAME, **forged})
    assert api.status_code == 401 and json.loads(api.get_body())["error"] == "console_disabled"
    _mode(stack, "development")
    assert _get(stack, "", {**forged, "Host": "genesy-dynamics.azurewebsites.net"}).status_code == 403


def test_easy_auth_needs_the_principal_and_the_admin_role(stack: Any) -> None:
    _mode(stack, "easyauth")
    signed_out = _get(stack, "", {"Host": HOST})
    assert signed_out.status_code == 401 and "/.auth/login/aad" in signed_out.get_body().decode()
    no_role = _get(stack, "", {"Host": HOST, "X-MS-CLIENT-PRINCIPAL": _principal(["Reader"])})
    assert no_role.status_code == 403 and "GenesyDynamics.Admin" in no_role.get_body().decode()
    garbage = _get(stack, "", {"Host": HOST, "X-MS-CLIENT-PRINCIPAL": "%%%not base64"})
    assert garbage.status_code == 401
    admin = _get(stack, "", {"Host": HOST, "X-MS-CLIENT-PRINCIPAL": _principal(["GenesyDynamics.Admin"])})
    body = admin.get_body().decode()
    assert admin.status_code == 200 and "Jane Admin" in body and "Development admin" not in body
    assert "script-src 'self'" in admin.headers["Content-Security-Policy"]
    _mode(stack, "easyauth", role="Custom.Role")
    assert _get(stack, "", {"Host": HOST, "X-MS-CLIENT-PRINCIPAL": _principal(["Custom.Role"])}).status_code == 200


def test_a_change_needs_the_same_origin_and_the_token_each_on_its_own(stack: Any) -> None:
    _mode(stack, "easyauth")
    jane = {"X-MS-CLIENT-PRINCIPAL": _principal(["GenesyDynamics.Admin"])}
    token = _token(stack, {"Host": HOST, **jane})
    with_token = {"X-CSRF-Token": token, "Cookie": f"{CSRF_COOKIE}={token}", **jane}
    before = _keys(stack)

    refused = {
        "no origin at all": {"Host": HOST, **with_token},
        "cross-site fetch": {**SAME, **with_token, "Sec-Fetch-Site": "cross-site"},
        "same-site, other origin": {**SAME, **with_token, "Sec-Fetch-Site": "same-site"},
        "another origin": {"Host": HOST, "Origin": "http://evil.example", **with_token},
        "no token": {**SAME, **jane},
        "token without cookie": {**SAME, **jane, "X-CSRF-Token": token},
        "cookie without token": {**SAME, **jane, "Cookie": f"{CSRF_COOKIE}={token}"},
        "token unlike cookie": {**SAME, **with_token, "X-CSRF-Token": token[:-2] + "xx"},
    }
    for why, headers in refused.items():
        reply = _rotate(stack, headers)
        assert reply.status_code == 403, why
        assert json.loads(reply.get_body())["error"] in ("cross_site", "csrf_token"), why
    # A token the page gave another admin is not Jane's.
    other = {"X-MS-CLIENT-PRINCIPAL": _principal(["GenesyDynamics.Admin"], oid="other-admin")}
    theirs = _token(stack, {"Host": HOST, **other})
    stolen = _rotate(stack, {**SAME, **jane, "X-CSRF-Token": theirs, "Cookie": f"{CSRF_COOKIE}={theirs}"})
    assert stolen.status_code == 403
    assert _keys(stack) == before  # nothing refused changed anything

    accepted = _rotate(stack, {**SAME, **with_token})
    assert accepted.status_code == 201 and json.loads(accepted.get_body())["api_key"].startswith("gdk_")
    origin_only = {"Host": HOST, "Origin": f"http://{HOST}", **with_token}  # a browser without fetch metadata
    assert _rotate(stack, origin_only).status_code == 201
    assert _keys(stack) == before + 2


def test_bad_input_is_a_400_naming_the_field_never_a_500(stack: Any) -> None:
    _mode(stack, "development")
    token = _token(stack, {"Host": HOST})
    headers = {**SAME, "X-CSRF-Token": token, "Cookie": f"{CSRF_COOKIE}={token}"}
    ws = f"/api/console/api/workspaces/{stack.workspace_id}"
    cases = [
        ("POST", "/api/console/api/workspaces", {"name": "x", "environment_url": "http://plain"}, "environment_url"),
        ("POST", f"{ws}/keys", {"grace_seconds": -1}, "grace_seconds"),
        ("POST", f"{ws}/mappings/sync/restore", {"version": "one"}, "version"),
        ("POST", f"{ws}/retry", {"keys": []}, "keys"),
        ("PUT", f"{ws}/mappings/sync", {"contact": {"mode": "psychic"}}, "contact.mode"),
    ]
    for method, path, body, field in cases:
        reply = stack.host.http(method, path, headers={**headers, "If-Match": "*"}, json=body)
        data = json.loads(reply.get_body())
        assert reply.status_code == 400, (path, data)
        assert field in data["message"], (path, data)
    raw = stack.host.http("PUT", f"{ws}/mappings/sync", headers={**headers, "If-Match": "*"}, body=b"{nope")
    assert raw.status_code == 400
    unknown = stack.host.http("PUT", f"{ws}/mappings/other", headers={**headers, "If-Match": "*"}, json={})
    assert unknown.status_code == 404
    preview = _get(stack, f"workspaces/{stack.workspace_id}/preview?run=1&kind=contact&record=%7Bbad", {"Host": HOST})
    assert preview.status_code == 200 and "record: not valid JSON" in preview.get_body().decode()
    assert _get(stack, "static/../../function_app.py", {"Host": HOST}).status_code == 404
