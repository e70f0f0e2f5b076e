"""Service protection: per-caller request window and concurrency limits, Retry-After bookkeeping,
and the `x-ms-dop-hint` header. No timing assertions: waits only ever make the outcome more certain."""

from __future__ import annotations

import threading
import time

import httpx

from devstack.dataverse_sandbox import Sandbox
from tests.sandbox.conftest import error_of, make_client


def _wait_in_flight(sb: Sandbox, caller: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sb.protection.in_flight(caller) < n:
        assert time.monotonic() < deadline, f"never saw {n} requests in flight"
        time.sleep(0.01)


def test_dop_hint_on_every_response(api: httpx.Client, sandbox: Sandbox) -> None:
    assert api.get("WhoAmI").headers["x-ms-dop-hint"] == "4"
    assert api.get("nosuch").headers["x-ms-dop-hint"] == "4"
    sandbox.config.dop_hint = 8
    assert api.get("WhoAmI").headers["x-ms-dop-hint"] == "8"


def test_request_limit_per_caller(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.request_limit = 5
    statuses = [api.get("WhoAmI").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    last = api.get("WhoAmI")
    assert last.status_code == 429
    assert error_of(last)["code"] == "0x80072322"
    assert 1 <= int(last.headers["Retry-After"]) <= 300
    assert sandbox.counters["throttled"] == 2
    assert [e.code for e in sandbox.throttle_events] == ["0x80072322"] * 2
    with make_client(sandbox, token=sandbox.mint_token(client_id="another-app")) as other:
        assert other.get("WhoAmI").status_code == 200


def test_concurrency_limit(sandbox: Sandbox) -> None:
    sandbox.config.concurrency_limit = 2
    sandbox.config.latency_ms = 120_000  # held until released below, however loaded the machine is
    results: list[int] = []
    with make_client(sandbox, token=sandbox.mint_token(client_id="concurrency-test"), timeout=60) as client:
        threads = [threading.Thread(target=lambda: results.append(client.get("WhoAmI").status_code))
                   for _ in range(2)]
        for t in threads:
            t.start()
        _wait_in_flight(sandbox, "concurrency-test", 2)
        third = client.get("WhoAmI")
        sandbox.config.latency_ms = 0
        for t in threads:
            t.join()
    assert third.status_code == 429
    assert error_of(third)["code"] == "0x80072326"
    assert int(third.headers["Retry-After"]) >= 1
    assert results == [200, 200]
    assert sandbox.counters["max_concurrency_seen"] >= 2


def test_throttle_burst_and_early_retry_detection(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.throttle_burst = 2
    sandbox.config.throttle_retry_after_s = 7
    first, second, third = (api.get("WhoAmI") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "7"
    assert len(sandbox.retried_early()) == 2  # this client ignored Retry-After


def test_waiting_for_retry_after_is_recorded_as_compliant(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.throttle_burst = 1
    sandbox.config.throttle_retry_after_s = 1
    resp = api.get("WhoAmI")
    assert resp.status_code == 429
    time.sleep(int(resp.headers["Retry-After"]) + 0.1)
    assert api.get("WhoAmI").status_code == 200
    event = sandbox.throttle_events[0]
    assert event.next_request_at is not None and not event.retried_early
    assert sandbox.retried_early() == []


def test_counters_and_request_log(api: httpx.Client, sandbox: Sandbox) -> None:
    api.get("contacts", params={"$top": "1"})
    api.post("contacts", json={"lastname": "Logged"})
    assert sandbox.counters["requests"] == 2
    assert sandbox.counters["GET contacts"] == 1 and sandbox.counters["POST contacts"] == 1
    first = sandbox.request_log[0]
    assert (first.method, first.status, first["path"]) == ("GET", 200, "/api/data/v9.2/contacts")
    assert "%24top=1" in first.query or "$top=1" in first.query
    sandbox.reset_counters()
    assert sandbox.counters["requests"] == 0 and sandbox.request_log == []
