"""Bearer tokens: the sandbox accepts only tokens its identity endpoint would sign, for its own URL."""

from __future__ import annotations

import time

import httpx
import pytest
from azure.identity import ManagedIdentityCredential

from devstack.dataverse_sandbox import Sandbox
from tests.sandbox.conftest import error_of, make_client


def _whoami(sb: Sandbox, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{sb.api_url}WhoAmI", headers=headers, verify=sb.ssl_context())


def test_missing_token_is_401_with_dataverse_error_and_challenge(sandbox: Sandbox) -> None:
    resp = _whoami(sandbox, None)
    assert resp.status_code == 401
    assert error_of(resp)["code"].startswith("0x")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


@pytest.mark.parametrize("audience_suffix", ["", "/"])
def test_token_for_own_url_with_or_without_slash_is_accepted(sandbox: Sandbox, audience_suffix: str) -> None:
    resp = _whoami(sandbox, sandbox.mint_token(audience=sandbox.url + audience_suffix))
    assert resp.status_code == 200
    assert set(resp.json()) >= {"UserId", "BusinessUnitId", "OrganizationId"}


def test_token_for_another_audience_is_401(sandbox: Sandbox) -> None:
    resp = _whoami(sandbox, sandbox.mint_token(audience="https://other.crm.dynamics.com"))
    assert resp.status_code == 401
    assert "audience" in error_of(resp)["message"]


def test_expired_token_is_401(sandbox: Sandbox) -> None:
    token = sandbox.mint_token(ttl_s=60, issued_at=time.time() - 3600)
    resp = _whoami(sandbox, token)
    assert resp.status_code == 401
    assert "expired" in error_of(resp)["message"]


def test_forged_signature_is_401(sandbox: Sandbox) -> None:
    header, payload, _ = sandbox.mint_token().split(".")
    resp = _whoami(sandbox, f"{header}.{payload}.AAAA")
    assert resp.status_code == 401


def test_identity_endpoint_checks_the_secret_header(sandbox: Sandbox) -> None:
    params = {"api-version": "2019-08-01", "resource": sandbox.url}
    assert httpx.get(sandbox.identity_endpoint, params=params).status_code == 401
    wrong = httpx.get(sandbox.identity_endpoint, params=params, headers={"X-IDENTITY-HEADER": "nope"})
    assert wrong.status_code == 403
    ok = httpx.get(sandbox.identity_endpoint, params=params,
                   headers={"X-IDENTITY-HEADER": sandbox.identity_header})
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["resource"] == sandbox.url
    assert int(body["expires_on"]) > time.time()
    assert sandbox.tokens_issued == 1


def test_managed_identity_credential_gets_a_token_the_sandbox_accepts(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    credential = ManagedIdentityCredential()
    first = credential.get_token(f"{sandbox.url}/.default")
    second = credential.get_token(f"{sandbox.url}/.default")
    assert first.token == second.token
    assert sandbox.tokens_issued == 1  # azure-identity cached the token
    assert first.expires_on > time.time() + 600
    with make_client(sandbox, token=first.token) as client:
        assert client.get("WhoAmI").status_code == 200


def test_user_assigned_client_id_is_passed_and_becomes_the_caller(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    token = ManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555").get_token(
        f"{sandbox.url}/.default")
    assert sandbox.identity.issued[-1].client_id == "11111111-2222-3333-4444-555555555555"
    with make_client(sandbox, token=token.token) as client:
        assert client.get("WhoAmI").status_code == 200
    assert sandbox.request_log[-1].caller == "11111111-2222-3333-4444-555555555555"
