"""Fault injection: seeded 5xx, hangs beyond the client's timeout, and latency that does not block."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from devstack.dataverse_sandbox import Sandbox
from tests.sandbox.conftest import error_of, make_client


def _statuses(sb: Sandbox, seed: int, n: int = 30) -> list[int]:
    sb.reset()
    sb.config.seed = seed
    sb.faults.reseed()
    sb.config.error_rate_5xx = 0.4
    with make_client(sb, timeout=30) as client:
        return [client.get("WhoAmI").status_code for _ in range(n)]


def test_same_seed_same_faults(sandbox: Sandbox) -> None:
    first = _statuses(sandbox, 1234)
    second = _statuses(sandbox, 1234)
    assert first == second
    assert set(first) == {200, 503}
    assert _statuses(sandbox, 99) != first


def test_injected_5xx_has_a_dataverse_body(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.error_rate_5xx = 1.0
    resp = api.get("WhoAmI")
    assert resp.status_code == 503
    assert error_of(resp)["code"].startswith("0x")
    assert sandbox.counters["injected_5xx"] == 1


def test_timeout_hangs_past_the_client_timeout(sandbox: Sandbox) -> None:
    sandbox.config.timeout_rate = 1.0
    sandbox.config.timeout_hang_s = 10.0
    slow_read = httpx.Timeout(30.0, read=1.0)  # generous connect: only the injected hang may time out
    with make_client(sandbox, timeout=slow_read) as client, pytest.raises(httpx.ReadTimeout):
        client.get("WhoAmI")
    assert sandbox.counters["timeouts"] == 1


def test_latency_does_not_serialise_requests(sandbox: Sandbox) -> None:
    sandbox.config.latency_ms = 120_000  # every request waits until the knob is lowered below
    statuses: list[int] = []
    with make_client(sandbox, token=sandbox.mint_token(client_id="latency-test"), timeout=60) as client:
        threads = [threading.Thread(target=lambda: statuses.append(client.get("WhoAmI").status_code))
                   for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while sandbox.protection.in_flight("latency-test") < 4:
            assert time.monotonic() < deadline, "requests were not served concurrently"
            time.sleep(0.01)
        sandbox.config.latency_ms = 0
        for t in threads:
            t.join()
    assert statuses == [200] * 4
    assert sandbox.counters["max_concurrency_seen"] >= 4


def test_config_knobs_are_restored_by_reset(sandbox: Sandbox) -> None:
    sandbox.config.latency_ms = 123
    sandbox.config.request_limit = 1
    sandbox.reset()
    assert sandbox.config.latency_ms == 0 and sandbox.config.request_limit == 6000
