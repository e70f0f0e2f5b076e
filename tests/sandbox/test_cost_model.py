"""The cost model: execution time per operation, the three service-protection limits, the headers and the
counters. Deterministic: asserts on what the sandbox accounted, never on wall-clock time."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from devstack.dataverse_sandbox import Sandbox
from devstack.dataverse_sandbox.limits import format_retry_after, retry_after_wall_s
from tests.sandbox.conftest import error_of, make_client

_CONTACT = "Microsoft.Dynamics.CRM.contact"


def _batch(parts: list[tuple[str, str, str | None]]) -> tuple[str, str]:
    """A `$batch` body of independent parts (method, url, JSON body)."""
    boundary = f"batch_{uuid.uuid4()}"
    chunks = []
    for method, url, body in parts:
        lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary", "", f"{method} {url} HTTP/1.1"]
        if body is not None:
            lines += ["Content-Type: application/json", "", body]
        else:
            lines += [""]
        chunks.append(f"--{boundary}\r\n" + "\r\n".join(lines) + "\r\n")
    return f"multipart/mixed; boundary={boundary}", "".join(chunks) + f"--{boundary}--\r\n"


def _post_batch(api: httpx.Client, parts: list[tuple[str, str, str | None]]) -> httpx.Response:
    content_type, body = _batch(parts)
    return api.post("$batch", content=body.encode(), headers={"Content-Type": content_type,
                                                               "Prefer": "odata.continue-on-error"})


def _spent(resp: httpx.Response) -> float:
    return float(resp.headers["x-ms-sandbox-execution-ms"])


def test_a_batch_costs_the_sum_of_its_parts(api: httpx.Client, sandbox: Sandbox) -> None:
    cfg = sandbox.config
    single = api.post("contacts", json={"lastname": "Alone"})
    assert single.status_code == 204 and _spent(single) == cfg.exec_write_ms
    parts = [("POST", "contacts", f'{{"lastname": "Part {i}"}}') for i in range(5)]
    batch = _post_batch(api, parts)
    assert batch.status_code == 200
    assert _spent(batch) == pytest.approx(5 * cfg.exec_write_ms)
    assert sandbox.execution_ms("POST $batch") == pytest.approx(5 * cfg.exec_write_ms)
    assert sandbox.execution_ms("batch:POST contacts") == pytest.approx(5 * cfg.exec_write_ms)
    # Reads inside a batch cost per query and per row, like reads alone.
    reads = _post_batch(api, [("GET", "contacts?$top=2&$select=lastname", None),
                              ("GET", "accounts?$top=1&$select=name", None)])
    assert _spent(reads) == pytest.approx(2 * cfg.exec_query_ms + 3 * cfg.exec_row_ms)
    assert sandbox.execution_ms_total == pytest.approx(6 * cfg.exec_write_ms + _spent(reads))


def test_bulk_costs_less_per_record_than_the_same_records_in_a_batch(api: httpx.Client, sandbox: Sandbox) -> None:
    cfg = sandbox.config
    n = 10
    bulk = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple",
                    json={"Targets": [{"@odata.type": _CONTACT, "lastname": f"Bulk {i}"} for i in range(n)]})
    assert bulk.status_code == 200
    assert _spent(bulk) == pytest.approx(cfg.exec_bulk_request_ms + n * cfg.exec_bulk_record_ms)
    batch = _post_batch(api, [("POST", "contacts", f'{{"lastname": "Batch {i}"}}') for i in range(n)])
    assert _spent(bulk) < _spent(batch) == pytest.approx(n * cfg.exec_write_ms)
    # A bulk message that fails is rolled back but its execution time is still spent.
    failing = api.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
                       json={"Targets": [{"@odata.type": _CONTACT, "contactid": str(uuid.uuid4()), "lastname": "X"}]})
    assert failing.status_code == 404
    assert _spent(failing) == pytest.approx(cfg.exec_bulk_request_ms + cfg.exec_bulk_record_ms)


def test_reads_cost_per_query_and_per_row(api: httpx.Client, sandbox: Sandbox) -> None:
    cfg = sandbox.config
    for i in range(7):
        sandbox.store.insert("contact", {"lastname": f"Reader {i}", "emailaddress1": f"r{i}@cost.example"})
    few = api.get("contacts", params={"$select": "lastname", "$filter": "startswith(lastname,'Reader')", "$top": "3"})
    many = api.get("contacts", params={"$select": "lastname", "$filter": "startswith(lastname,'Reader')"})
    none = api.get("contacts", params={"$select": "lastname", "$filter": "lastname eq 'nobody'"})
    assert _spent(few) == pytest.approx(cfg.exec_query_ms + 3 * cfg.exec_row_ms)
    assert _spent(many) == pytest.approx(cfg.exec_query_ms + 7 * cfg.exec_row_ms)
    assert _spent(none) == pytest.approx(cfg.exec_query_ms)


def test_execution_time_limit_answers_429_with_retry_after(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.exec_write_ms = 400.0
    sandbox.config.execution_time_limit_s = 1.0  # 1,000 ms per window: three writes exceed it
    statuses = [api.post("contacts", json={"lastname": f"Costly {i}"}).status_code for i in range(3)]
    assert statuses == [204, 204, 204]
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    error = error_of(throttled)
    assert error["code"] == "0x80072321"
    assert "Combined execution time of incoming requests exceeded limit of 1,000 milliseconds" in error["message"]
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300
    assert [e.code for e in sandbox.throttle_events] == ["0x80072321"]
    assert _spent(throttled) == 0.0  # refused before it ran: nothing charged
    assert list(sandbox.stats()["execution_ms"]["window_used"].values()) == [pytest.approx(1200.0)]
    with make_client(sandbox, token=sandbox.mint_token(client_id="another-user")) as other:
        assert other.get("WhoAmI").status_code == 200  # per caller


def test_request_limit_counts_a_batch_as_one(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.request_limit = 2
    batch = _post_batch(api, [("POST", "contacts", f'{{"lastname": "Counted {i}"}}') for i in range(20)])
    assert batch.status_code == 200
    assert api.get("WhoAmI").status_code == 200
    third = api.get("WhoAmI")
    assert third.status_code == 429 and error_of(third)["code"] == "0x80072322"
    assert sandbox.counters["batch_parts"] == 20


def test_concurrency_limit_with_execution_held(sandbox: Sandbox) -> None:
    """A request waiting out its execution time still counts as concurrent."""
    sandbox.config.concurrency_limit = 1
    sandbox.config.execution_sleep = True
    sandbox.config.exec_query_ms = 600_000.0  # held until execution_sleep is turned off below
    caller = "held-caller"
    results: list[int] = []
    with make_client(sandbox, token=sandbox.mint_token(client_id=caller), timeout=120) as client:
        worker = threading.Thread(target=lambda: results.append(client.get("WhoAmI").status_code))
        worker.start()
        deadline = time.monotonic() + 60
        while sandbox.execution_ms_total < 600_000.0:  # charged: it ran and now waits its execution time
            assert time.monotonic() < deadline, "the request never ran"
            time.sleep(0.01)
        second = client.get("WhoAmI")
        assert worker.is_alive()  # still waiting out 600 s of execution time
        sandbox.config.execution_sleep = False
        worker.join(timeout=60)
    assert second.status_code == 429 and error_of(second)["code"] == "0x80072326"
    assert results == [200]


def test_dop_hint_and_rate_limit_headers(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.dop_hint = 6
    first = api.post("contacts", json={"lastname": "Header"})
    assert first.headers["x-ms-dop-hint"] == "6"
    limit_ms = sandbox.config.execution_time_limit_s * 1000
    assert float(first.headers["x-ms-ratelimit-time-remaining-xrm-requests"]) == limit_ms - sandbox.config.exec_write_ms
    assert int(first.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) == sandbox.config.request_limit - 1


def test_counters_and_admin_endpoint(api: httpx.Client, sandbox: Sandbox) -> None:
    api.post("contacts", json={"lastname": "Counted"})
    api.get("contacts", params={"$top": "1", "$select": "lastname"})
    with httpx.Client(base_url=f"{sandbox.url}/_sandbox/", verify=sandbox.ssl_context()) as admin:
        assert admin.get("stats").status_code == 401
        headers = {"X-Sandbox-Admin-Key": sandbox.admin_key}
        stats = admin.get("stats", headers=headers).json()
        expected = sandbox.config.exec_write_ms + sandbox.config.exec_query_ms + sandbox.config.exec_row_ms
        assert stats["execution_ms"]["total"] == pytest.approx(expected)
        assert stats["execution_ms"]["by_route"]["POST contacts"] == sandbox.config.exec_write_ms
        assert list(stats["execution_ms"]["by_caller"].values()) == [pytest.approx(expected)]
        assert stats["counters"]["requests"] == 2 and stats["throttled"]["total"] == 0
        rows = admin.get("rows/contact", params={"select": "lastname"}, headers=headers).json()["value"]
        assert {"lastname": "Counted"} in rows
        patched = admin.patch("config", json={"exec_write_ms": 3, "execution_sleep": False}, headers=headers)
        assert patched.status_code == 200 and sandbox.config.exec_write_ms == 3.0
        assert admin.patch("config", json={"nope": 1}, headers=headers).status_code == 400
        assert admin.patch("config", json={"execution_sleep": "yes"}, headers=headers).status_code == 400
        assert sandbox.protection.execution_used_ms(next(iter(stats["execution_ms"]["by_caller"]))) > 0
        assert admin.post("reset-limits", headers=headers).status_code == 204
        assert sandbox.protection.execution_used_ms(next(iter(stats["execution_ms"]["by_caller"]))) == 0
        assert admin.post("reset-counters", headers=headers).status_code == 204
        assert sandbox.execution_ms_total == 0.0 and sandbox.counters["requests"] == 0
    assert sandbox.request_log == []  # admin calls are not Web API requests


def test_time_scale_shrinks_retry_after_and_windows(api: httpx.Client, sandbox: Sandbox) -> None:
    assert retry_after_wall_s(0.2, 1.0) == 1  # at least one whole second, as Dataverse announces
    assert retry_after_wall_s(2.01, 1.0) == 3
    assert retry_after_wall_s(0.3, 0.1) == pytest.approx(0.3)
    assert format_retry_after(7.0) == "7" and format_retry_after(0.25) == "0.25"
    sandbox.config.time_scale = 0.001  # a 300 s window lasts 0.3 s of wall-clock time
    sandbox.config.request_limit = 1
    assert api.get("WhoAmI").status_code == 200
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    assert 0 < float(throttled.headers["Retry-After"]) <= 0.3
    time.sleep(float(throttled.headers["Retry-After"]) + 0.05)
    assert api.get("WhoAmI").status_code == 200
    assert sandbox.retried_early() == []
