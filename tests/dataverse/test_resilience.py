"""Throttling, concurrency, retries, budgets, tokens, cookies and logging, proven with the sandbox's own
counters and logs rather than wall-clock timings."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from shared.dataverse.budget import Budget
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import AuthFailed, BudgetExceeded, Throttled, TransientError
from shared.platform.correlation import correlation_scope, request_id_for
from tests.dataverse.conftest import make_client

pytestmark = pytest.mark.integration


def _arrivals_inside_retry_after(sandbox: Any, retry_after: float) -> int:
    """The most requests that reached the server inside any 429's Retry-After window."""
    log = list(sandbox.request_log)
    worst = 0
    for throttled in (r for r in log if r.status == 429):
        window_end = throttled.ts + retry_after - 0.3
        inside = [r for r in log if r is not throttled and throttled.ts < r.ts - r.duration < window_end]
        worst = max(worst, len(inside))
    return worst


def test_sequential_storm_never_retries_before_retry_after(sandbox: Any, credential: Any) -> None:
    sandbox.config.throttle_burst = 3
    sandbox.config.throttle_retry_after_s = 1
    with make_client(sandbox, credential, max_concurrency=1) as client:
        rows = client.query("accounts", filter="name eq 'Contoso Ltd'", select=["name"])
    assert [r["name"] for r in rows] == ["Contoso Ltd"]
    assert sandbox.counters["throttled"] == 3
    assert len(sandbox.throttle_events) == 3
    assert sandbox.retried_early() == []
    assert all(e.next_request_at is not None for e in sandbox.throttle_events)


def test_concurrent_storm_pauses_all_threads_and_keeps_to_dop_hint(sandbox: Any, credential: Any) -> None:
    sandbox.config.dop_hint = 2
    sandbox.config.throttle_burst = 6
    sandbox.config.throttle_retry_after_s = 1
    items = [(str(uuid.uuid4()), {"lastname": f"Storm{i}"}, "upsert") for i in range(40)]
    with make_client(sandbox, credential, max_concurrency=8) as client:
        results = client.write_many("contacts", items, chunk_size=5)  # type: ignore[arg-type]
        assert client.concurrency_cap == 2
    assert all(r.ok for r in results)
    assert sandbox.store.count("contact") >= 40
    assert sandbox.counters["throttled"] == 6
    assert sandbox.counters["max_concurrency_seen"] <= 2
    # Only requests already on the wire when a 429 came back may land inside its window; a client
    # that retried at once (or let other threads carry on) would put the whole storm there.
    assert _arrivals_inside_retry_after(sandbox, 1.0) <= 2


def test_concurrency_overlaps_but_never_exceeds_dop_hint(sandbox: Any, credential: Any) -> None:
    sandbox.config.dop_hint = 3
    sandbox.config.latency_ms = 100
    values = [f"nobody{i}@example.com" for i in range(12)]
    with make_client(sandbox, credential, max_concurrency=8, in_chunk_size=1) as client:
        assert client.query_in("contacts", "emailaddress1", values, select=["emailaddress1"]) == []
    assert 2 <= sandbox.counters["max_concurrency_seen"] <= 3


def test_5xx_within_budget_is_retried_until_success(sandbox: Any, client: DataverseClient) -> None:
    sandbox.config.error_rate_5xx = 0.5
    sandbox.config.seed = 7
    sandbox.faults.reseed()
    for _ in range(8):
        assert client.whoami()["UserId"]
    assert sandbox.counters["injected_5xx"] > 0
    assert sandbox.counters["status_503"] == sandbox.counters["injected_5xx"]


def test_5xx_past_budget_raises_with_dataverse_code(sandbox: Any, client: DataverseClient) -> None:
    sandbox.config.error_rate_5xx = 1.0
    with pytest.raises(BudgetExceeded) as caught:
        client.query("contacts", select=["contactid"], budget=Budget(1.0))
    error = caught.value
    assert isinstance(error, TransientError) and error.retryable
    assert (error.status, error.code) == (503, "0x80040216")
    assert "injected fault" in error.message
    assert sandbox.counters["injected_5xx"] >= 1


def test_retry_after_beyond_budget_raises_throttled_at_once(sandbox: Any, client: DataverseClient) -> None:
    sandbox.config.throttle_burst = 5
    sandbox.config.throttle_retry_after_s = 5
    with pytest.raises(Throttled) as caught:
        client.whoami(budget=Budget(2.0))
    assert caught.value.retry_after == 5.0
    assert caught.value.code == "0x80072322"
    assert sandbox.counters["throttled"] == 1


def test_read_timeouts_are_retried(sandbox: Any, credential: Any) -> None:
    sandbox.config.timeout_rate = 0.5
    sandbox.config.timeout_hang_s = 2.0
    sandbox.config.seed = 3
    sandbox.faults.reseed()
    with make_client(sandbox, credential, timeout=0.5) as client:
        for _ in range(4):
            assert client.whoami()["UserId"]
    assert sandbox.counters["timeouts"] > 0


def test_token_is_fetched_once_for_many_concurrent_requests(sandbox: Any, client: DataverseClient) -> None:
    values = [f"v{i}@x.com" for i in range(30)]
    client.in_chunk_size = 2
    client.query_in("contacts", "emailaddress1", values, select=["emailaddress1"])
    client.whoami()
    assert sandbox.counters["requests"] >= 16
    assert sandbox.tokens_issued == 1


class _StaticCredential:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 4_102_444_800)


def test_a_refused_token_is_auth_failed(sandbox: Any) -> None:
    forged = _StaticCredential(sandbox.mint_token(audience="https://other.crm.dynamics.com"))
    with DataverseClient(sandbox.url, forged, ca_bundle=sandbox.ca_cert_path) as client, pytest.raises(
        AuthFailed
    ) as caught:
        client.whoami()
    assert caught.value.status == 401


def test_affinity_cookie_is_never_stored_or_sent() -> None:
    seen_cookies: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_cookies.append(request.headers.get("cookie"))
        return httpx.Response(
            200,
            json={"UserId": str(uuid.uuid4())},
            headers={"Set-Cookie": "ARRAffinity=abc123; Path=/; HttpOnly; Domain=org.crm.dynamics.com"},
        )

    with DataverseClient(
        "https://org.crm.dynamics.com", _StaticCredential("t"), transport=httpx.MockTransport(handler)
    ) as client:
        client.whoami()
        client.whoami()
        assert len(client.http.cookies.jar) == 0
    assert seen_cookies == [None, None]


def test_logs_carry_path_status_and_correlation_never_values_or_tokens(
    sandbox: Any, client: DataverseClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="genesy_dynamics.dataverse")
    secret_email = "very.private+person@example.com"
    with correlation_scope("message-42"):
        client.query_in("contacts", "emailaddress1", [secret_email, "other@example.com"], select=["contactid"],
                        key="contactid")
        client.query("contacts", filter=f"emailaddress1 eq '{secret_email}'", select=["contactid"])
    records = [r for r in caplog.records if r.name == "genesy_dynamics.dataverse"]
    assert len(records) >= 2
    for record in records:
        text = record.getMessage()
        assert "private" not in text and "Bearer" not in text and "eyJ" not in text
        assert record.dataverse_path == "/api/data/v9.2/contacts"  # type: ignore[attr-defined]
        assert record.dataverse_status == 200  # type: ignore[attr-defined]
        assert record.correlation_id == "message-42"  # type: ignore[attr-defined]
        assert record.client_request_id == request_id_for("message-42")  # type: ignore[attr-defined]


def test_one_client_per_environment_and_one_credential(
    sandbox: Any, managed_identity: None, settings_env: dict[str, str]
) -> None:
    from azure.identity import ManagedIdentityCredential

    from shared.messaging.queue import InProcessQueue
    from shared.platform.settings import load_settings
    from shared.services.root import Services

    services = Services(load_settings({**settings_env, **sandbox.env()}), sender=InProcessQueue())
    try:
        assert isinstance(services.credential, ManagedIdentityCredential)
        first = services.dataverse(sandbox.url)
        assert services.dataverse(sandbox.url.upper().replace("HTTPS", "https") + "/") is first
        assert first.whoami()["UserId"]
        assert sandbox.tokens_issued == 1
    finally:
        services.close()


def test_default_credential_without_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import DefaultAzureCredential

    from shared.platform.credential import azure_credential

    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    assert isinstance(azure_credential(None), DefaultAzureCredential)

