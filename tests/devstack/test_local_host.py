"""The local Functions host: routing, auth levels, Service Bus sessions, timers and the real HTTP server.

Everything runs against a small FunctionApp built here, not the product's functions.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest

from devstack.local_host import FunctionHost, RouteTemplate, host_json_batch_size
from shared.messaging.queue import InProcessQueue, OutgoingMessage

KEY = "local-admin-key-for-tests"
WRITES = "test-writes"
FOLLOWUPS = "test-followups"


@dataclass
class Recorder:
    """What the test functions saw, shared with the test through the closure."""

    deliveries: list[tuple[str, str, str, int]] = field(default_factory=list)  # queue, session, seq, delivery
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    timer_calls: list[bool] = field(default_factory=list)
    barrier: threading.Barrier | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, queue: str, session: str) -> list[str]:
        return [seq for q, s, seq, _ in self.deliveries if q == queue and s == session]


def reply(payload: dict[str, Any], status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json")


def build_app(queue: InProcessQueue, rec: Recorder) -> func.FunctionApp:
    http = func.Blueprint()

    @http.route(route="tasks/{id}", methods=["GET", "PATCH"])
    def task_by_id(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "task_by_id", "id": req.route_params["id"], "method": req.method})

    @http.route(route="tasks/batch", methods=["POST", "PATCH"])
    def tasks_batch(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "tasks_batch", "method": req.method})

    @http.route(route="items/{id:guid}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def item_by_guid(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "item_by_guid", "id": req.route_params["id"]})

    @http.route(route="items/{name}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "item_by_name", "name": req.route_params["name"]})

    @http.route(route="admin/things", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
    def admin_things(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "admin_things"})

    @http.route(route="files/{*rest}", methods=["GET"])
    def files(req: func.HttpRequest) -> func.HttpResponse:
        return reply({"fn": "files", "rest": req.route_params.get("rest")})

    @http.route(route="echo/{name}", methods=["POST", "PUT"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        return reply(
            {
                "method": req.method,
                "url": req.url,
                "name": req.route_params["name"],
                "params": dict(req.params),
                "custom": req.headers.get("X-CUSTOM"),
                "content_type": req.headers.get("content-type"),
                "body": req.get_body().decode(),
            },
            status=201,
        )

    @http.route(route="async/{n:int}", methods=["GET"])
    async def async_double(req: func.HttpRequest) -> func.HttpResponse:
        await asyncio.sleep(0)
        return reply({"double": int(req.route_params["n"]) * 2})

    @http.route(route="context", methods=["GET"])
    def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return reply({"function_name": context.function_name, "invocation_id": context.invocation_id})

    @http.route(route="plain", methods=["GET"])
    def plain(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("héllo", headers={"X-Extra": "1"})

    @http.route(route="boom", methods=["GET"])
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("kaboom")

    @http.route(route="rendezvous", methods=["GET"])
    def rendezvous(req: func.HttpRequest) -> func.HttpResponse:
        assert rec.barrier is not None
        rec.barrier.wait()
        return reply({"met": True})

    bus = func.Blueprint()

    def handle(queue_name: str, msg: func.ServiceBusMessage) -> None:
        body = json.loads(msg.get_body())
        session = str(msg.session_id)
        with rec.lock:
            rec.in_flight[session] += 1
            rec.max_in_flight[session] = max(rec.max_in_flight[session], rec.in_flight[session])
        try:
            if body.get("meet") and rec.barrier is not None:
                rec.barrier.wait()
            if body.get("sleep"):
                time.sleep(body["sleep"])
            if body.get("fail") == "always":
                raise RuntimeError(f"poison {body['seq']}")
            if body.get("fail") == "once" and msg.delivery_count == 1:
                raise ValueError("transient")
            for seq in body.get("then", []):
                queue.send(FOLLOWUPS, [OutgoingMessage({"seq": seq}, session_id=session, message_id=f"f-{seq}")])
            with rec.lock:
                rec.deliveries.append((queue_name, session, str(body["seq"]), int(msg.delivery_count or 0)))
        finally:
            with rec.lock:
                rec.in_flight[session] -= 1

    @bus.service_bus_queue_trigger(
        arg_name="msg",
        queue_name="%LOCAL_HOST_TEST_QUEUE%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
    )
    def writes_worker(msg: func.ServiceBusMessage) -> None:
        handle(WRITES, msg)

    @bus.service_bus_queue_trigger(
        arg_name="message", queue_name=FOLLOWUPS, connection="ServiceBusConnection", is_sessions_enabled=True
    )
    def followups_worker(message: func.ServiceBusMessage) -> None:
        handle(FOLLOWUPS, message)

    @bus.service_bus_queue_trigger(arg_name="msg", queue_name="%WRITES_QUEUE_NAME%", connection="ServiceBusConnection")
    def default_named(msg: func.ServiceBusMessage) -> None:
        return None

    timers = func.Blueprint()

    @timers.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
    def reconcile(timer: func.TimerRequest) -> None:
        rec.timer_calls.append(timer.past_due)

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for bp in (http, bus, timers):
        app.register_functions(bp)
    return app


@pytest.fixture
def queue() -> InProcessQueue:
    return InProcessQueue(max_delivery_count=3)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def host(queue: InProcessQueue, rec: Recorder) -> Iterator[FunctionHost]:
    h = FunctionHost(
        build_app(queue, rec),
        queue=queue,
        admin_key=KEY,
        route_prefix="api",
        app_settings={"LOCAL_HOST_TEST_QUEUE": WRITES},
    )
    yield h
    h.stop_pump()


def body(resp: func.HttpResponse) -> Any:
    return json.loads(resp.get_body())


def send(queue: InProcessQueue, session: str, *items: dict[str, Any], target: str = WRITES) -> None:
    queue.send(
        target, [OutgoingMessage(item, session_id=session, message_id=f"{session}-{item['seq']}") for item in items]
    )


# ---- index ------------------------------------------------------------------------------------------------


def test_functions_are_indexed_from_their_bindings(host: FunctionHost) -> None:
    fns = host.functions
    assert fns["task_by_id"].trigger_type == "httpTrigger"
    assert fns["task_by_id"].route == "tasks/{id}"
    assert fns["task_by_id"].methods == ("GET", "PATCH")
    assert fns["task_by_id"].auth_level == "anonymous"
    assert fns["item_by_guid"].auth_level == "function"
    assert fns["admin_things"].auth_level == "admin"
    assert fns["async_double"].is_async
    worker = fns["writes_worker"]
    assert (worker.trigger_type, worker.queue_name, worker.sessions_enabled) == ("serviceBusTrigger", WRITES, True)
    assert worker.queue_name_expression == "%LOCAL_HOST_TEST_QUEUE%"
    assert fns["default_named"].queue_name == "genesy-writes"
    assert fns["default_named"].sessions_enabled is False
    assert fns["reconcile"].schedule == "0 */5 * * * *"
    assert set(host.listened_queues) == {WRITES, FOLLOWUPS, "genesy-writes"}
    assert any("tasks/{id}" in line for line in host.describe())


def test_an_unresolvable_queue_setting_fails_at_start() -> None:
    bp = func.Blueprint()

    @bp.service_bus_queue_trigger(arg_name="msg", queue_name="%NOT_SET_ANYWHERE%", connection="C")
    def worker(msg: func.ServiceBusMessage) -> None:
        return None

    app = func.FunctionApp()
    app.register_functions(bp)
    with pytest.raises(ValueError, match="NOT_SET_ANYWHERE"):
        FunctionHost(app, queue=InProcessQueue(), app_settings={})


# ---- HTTP routing -------------------------------------------------------------------------------------------


def test_literal_segment_beats_parameter_and_methods_select_among_matches(host: FunctionHost) -> None:
    assert body(host.http("POST", "/api/tasks/batch")) == {"fn": "tasks_batch", "method": "POST"}
    assert body(host.http("PATCH", "/api/tasks/batch")) == {"fn": "tasks_batch", "method": "PATCH"}
    # only tasks/{id} allows GET, so GET tasks/batch is that route with id=batch (ASP.NET endpoint selection)
    assert body(host.http("GET", "/api/tasks/batch")) == {"fn": "task_by_id", "id": "batch", "method": "GET"}
    assert body(host.http("PATCH", "/api/tasks/42")) == {"fn": "task_by_id", "id": "42", "method": "PATCH"}


def test_constrained_parameter_beats_plain_parameter(host: FunctionHost) -> None:
    guid = str(uuid.uuid4())
    headers = {"x-functions-key": KEY}
    assert body(host.http("GET", f"/api/items/{guid}", headers=headers)) == {"fn": "item_by_guid", "id": guid}
    assert body(host.http("GET", "/api/items/widget", headers=headers)) == {"fn": "item_by_name", "name": "widget"}


def test_catch_all_and_percent_decoding(host: FunctionHost) -> None:
    assert body(host.http("GET", "/api/files/a/b/c.txt"))["rest"] == "a/b/c.txt"
    assert body(host.http("GET", "/api/files"))["rest"] is None
    resp = host.http("POST", "/api/echo/two%20words")
    assert body(resp)["name"] == "two words"


def test_unknown_path_is_404_json(host: FunctionHost) -> None:
    for path in ("/api/nothing", "/api/tasks/1/extra", "/other/tasks/1", "/tasks/1", "/api//tasks"):
        resp = host.http("GET", path)
        assert resp.status_code == 404, path
        assert resp.mimetype == "application/json"
        assert body(resp)["error"] == "not_found"
        assert "message" in body(resp)


def test_known_path_with_other_method_is_405_with_allow(host: FunctionHost) -> None:
    resp = host.http("POST", "/api/tasks/42")
    assert resp.status_code == 405
    assert body(resp)["error"] == "method_not_allowed"
    assert resp.headers["Allow"] == "GET, PATCH"
    assert host.http("DELETE", "/api/tasks/batch").headers["Allow"] == "GET, PATCH, POST"


def test_key_levels_require_the_admin_key(host: FunctionHost) -> None:
    assert host.http("GET", "/api/items/widget").status_code == 401
    assert body(host.http("GET", "/api/items/widget"))["error"] == "unauthorized"
    assert host.http("GET", "/api/items/widget", headers={"x-functions-key": "wrong"}).status_code == 401
    assert host.http("GET", "/api/items/widget", headers={"X-Functions-Key": KEY}).status_code == 200
    assert host.http("GET", "/api/items/widget", params={"code": KEY}).status_code == 200
    assert host.http("GET", f"/api/items/widget?code={KEY}").status_code == 200
    assert host.http("GET", "/api/admin/things").status_code == 401
    assert host.http("GET", "/api/admin/things", headers={"x-functions-key": KEY}).status_code == 200
    # anonymous functions need no key
    assert host.http("GET", "/api/tasks/1").status_code == 200


def test_no_admin_key_means_no_key_checks(queue: InProcessQueue, rec: Recorder) -> None:
    h = FunctionHost(build_app(queue, rec), queue=queue, app_settings={"LOCAL_HOST_TEST_QUEUE": WRITES})
    assert h.http("GET", "/api/admin/things").status_code == 200


def test_request_carries_url_params_headers_and_body(host: FunctionHost) -> None:
    resp = host.http(
        "post",
        "/api/echo/alice?a=1",
        headers={"X-Custom": "yes"},
        json={"hello": "wörld"},
        params={"b": "2"},
    )
    assert resp.status_code == 201
    seen = body(resp)
    assert seen["method"] == "POST"
    assert seen["url"] == "http://127.0.0.1:7071/api/echo/alice?a=1&b=2"
    assert seen["name"] == "alice"
    assert seen["params"] == {"a": "1", "b": "2"}
    assert seen["custom"] == "yes"
    assert seen["content_type"] == "application/json"
    assert json.loads(seen["body"]) == {"hello": "wörld"}
    assert body(host.http("PUT", "/api/echo/x", body="raw text"))["body"] == "raw text"


def test_async_function_and_context(host: FunctionHost) -> None:
    assert body(host.http("GET", "/api/async/21")) == {"double": 42}
    assert host.http("GET", "/api/async/abc").status_code == 404  # {n:int} constraint

    async def from_inside_a_loop() -> func.HttpResponse:
        return host.http("GET", "/api/async/2")

    assert body(asyncio.run(from_inside_a_loop())) == {"double": 4}
    ctx = body(host.http("GET", "/api/context"))
    assert ctx["function_name"] == "with_context"
    assert uuid.UUID(ctx["invocation_id"])


def test_function_exception_is_500(host: FunctionHost) -> None:
    resp = host.http("GET", "/api/boom")
    assert resp.status_code == 500
    assert body(resp)["error"] == "internal_error"
    host.raise_server_exceptions = True
    with pytest.raises(RuntimeError, match="kaboom"):
        host.http("GET", "/api/boom")


def test_route_prefix_is_configurable(queue: InProcessQueue, rec: Recorder) -> None:
    h = FunctionHost(build_app(queue, rec), queue=queue, route_prefix="", app_settings={"LOCAL_HOST_TEST_QUEUE": "q"})
    assert body(h.http("GET", "/tasks/7"))["id"] == "7"
    assert h.http("GET", "/api/tasks/7").status_code == 404


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("tasks/{id}", "tasks/1", {"id": "1"}),
        ("Tasks/{id}", "tASKS/1", {"id": "1"}),
        ("tasks/{id:int}", "tasks/x", None),
        ("tasks/{id:int:min(10)}", "tasks/9", None),
        ("tasks/{id:int:min(10)}", "tasks/10", {"id": "10"}),
        ("tasks/{id:guid}", "tasks/not-a-guid", None),
        ("tasks/{id?}", "tasks", {}),
        ("tasks/{page=1}", "tasks", {"page": "1"}),
        ("tasks/{page=1}", "tasks/3", {"page": "3"}),
        ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("codes/{c:regex(^[a-z]{{2}}:\\d+$)}", "codes/ab:12", {"c": "ab:12"}),
        ("codes/{c:regex(^[a-z]{{2}}:\\d+$)}", "codes/abc", None),
        ("a/{*rest}", "a", {}),
        ("a/{*rest}", "a/b/c", {"rest": "b/c"}),
        ("a/b", "a", None),
        ("a", "a/b", None),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path.split("/")) == expected


def test_bad_route_templates_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown constraint"):
        RouteTemplate("x/{id:nope}")
    with pytest.raises(ValueError, match="catch-all"):
        RouteTemplate("{*rest}/x")


# ---- Service Bus -------------------------------------------------------------------------------------------


def test_drain_delivers_each_session_in_order(host: FunctionHost, queue: InProcessQueue, rec: Recorder) -> None:
    for i in range(5):
        send(queue, "ws-a", {"seq": f"a{i}"})
        send(queue, "ws-b", {"seq": f"b{i}"})
    report = host.drain()
    assert rec.order(WRITES, "ws-a") == [f"a{i}" for i in range(5)]
    assert rec.order(WRITES, "ws-b") == [f"b{i}" for i in range(5)]
    assert (report.processed, report.failed, report.dead_lettered) == (10, 0, 0)
    assert report.queues[WRITES].processed == 10
    assert queue.pending() == 0


def test_failed_delivery_is_redelivered_with_a_higher_count(
    host: FunctionHost, queue: InProcessQueue, rec: Recorder
) -> None:
    send(queue, "ws", {"seq": 1, "fail": "once"}, {"seq": 2})
    report = host.drain()
    assert rec.deliveries == [(WRITES, "ws", "1", 2), (WRITES, "ws", "2", 1)]  # 2 waits for 1's redelivery
    assert (report.processed, report.failed, report.dead_lettered) == (2, 1, 0)
    assert report.failures[0].error == "ValueError: transient"
    assert report.failures[0].delivery_count == 1


def test_poison_message_is_dead_lettered_with_the_exception(
    host: FunctionHost, queue: InProcessQueue, rec: Recorder
) -> None:
    send(queue, "ws", {"seq": 1}, {"seq": 2, "fail": "always"}, {"seq": 3})
    report = host.drain()
    assert rec.order(WRITES, "ws") == ["1", "3"]
    assert (report.processed, report.failed, report.dead_lettered) == (2, 3, 1)  # max_delivery_count=3
    assert [f.delivery_count for f in report.failures] == [1, 2, 3]
    assert [f.dead_lettered for f in report.failures] == [False, False, True]
    [letter] = queue.dead_letters[WRITES]
    assert letter.message.message_id == "ws-2"
    assert letter.reason == "MaxDeliveryCountExceeded"
    assert letter.description == "RuntimeError: poison 2"
    # the operators' replay puts it back; it is delivered again (and dead-lettered again)
    assert queue.replay_dead_letters(WRITES) == 1
    assert host.drain(WRITES).dead_lettered == 1


def test_messages_sent_during_drain_are_delivered_too(host: FunctionHost, queue: InProcessQueue, rec: Recorder) -> None:
    send(queue, "ws", {"seq": 1, "then": ["x", "y"]}, {"seq": 2, "then": ["z"]})
    report = host.drain()
    assert rec.order(FOLLOWUPS, "ws") == ["x", "y", "z"]
    assert report.queues[WRITES].processed == 2
    assert report.queues[FOLLOWUPS].processed == 3
    assert queue.pending() == 0


def test_drain_limits(host: FunctionHost, queue: InProcessQueue, rec: Recorder) -> None:
    send(queue, "ws", {"seq": 1, "then": ["x"]}, {"seq": 2}, {"seq": 3})
    assert host.drain(max_messages=2).deliveries == 2
    assert queue.pending(WRITES) == 1
    assert host.drain(FOLLOWUPS).processed == 1
    assert queue.pending(WRITES) == 1
    assert host.drain().processed == 1
    with pytest.raises(ValueError, match="no Service Bus function"):
        host.drain("nobody-listens")


def test_service_bus_message_carries_metadata(queue: InProcessQueue) -> None:
    seen: list[func.ServiceBusMessage] = []
    bp = func.Blueprint()

    @bp.service_bus_queue_trigger(arg_name="msg", queue_name="meta", connection="C", is_sessions_enabled=True)
    def meta(msg: func.ServiceBusMessage, context: func.Context) -> None:
        assert context.function_name == "meta"
        seen.append(msg)

    app = func.FunctionApp()
    app.register_functions(bp)
    host = FunctionHost(app, queue=queue, app_settings={})
    queue.send("meta", [OutgoingMessage({"k": "v"}, "s1", "m1", {"kind": "contacts"})])
    host.drain()
    [msg] = seen
    assert json.loads(msg.get_body()) == {"k": "v"}
    assert (msg.message_id, msg.session_id, msg.delivery_count) == ("m1", "s1", 1)
    assert msg.application_properties == {"kind": "contacts"}
    assert msg.content_type == "application/json"
    assert msg.enqueued_time_utc is not None


def test_pump_runs_sessions_in_parallel_but_each_session_in_order(
    host: FunctionHost, queue: InProcessQueue, rec: Recorder
) -> None:
    rec.barrier = threading.Barrier(2, timeout=10)  # both sessions' first messages must be in flight together
    send(queue, "s1", {"seq": 0, "meet": True}, *({"seq": i, "sleep": 0.002} for i in range(1, 8)))
    send(queue, "s2", {"seq": 0, "meet": True}, *({"seq": i, "sleep": 0.002} for i in range(1, 8)))
    host.start_pump(poll_interval=0.01)
    assert host.pump_running
    with pytest.raises(RuntimeError, match="already running"):
        host.start_pump()
    assert host.wait_idle(timeout=20)
    report = host.stop_pump()
    assert not host.pump_running
    expected = [str(i) for i in range(8)]
    assert rec.order(WRITES, "s1") == expected
    assert rec.order(WRITES, "s2") == expected
    assert rec.max_in_flight == {"s1": 1, "s2": 1}
    assert report.processed == 16
    assert not rec.barrier.broken


def test_pump_redelivers_and_stops(host: FunctionHost, queue: InProcessQueue, rec: Recorder) -> None:
    host.start_pump(poll_interval=0.01)
    send(queue, "ws", {"seq": 1, "fail": "once"}, {"seq": 2, "then": ["f"]})
    assert host.wait_idle(timeout=20)
    report = host.stop_pump()
    assert rec.order(WRITES, "ws") == ["1", "2"]
    assert rec.order(FOLLOWUPS, "ws") == ["f"]
    assert (report.processed, report.failed) == (3, 1)
    send(queue, "ws", {"seq": 3})
    time.sleep(0.05)
    assert queue.pending(WRITES) == 1  # stopped: nothing is delivered any more
    assert host.stop_pump().processed == 3  # idempotent


# ---- timers -----------------------------------------------------------------------------------------------


def test_run_timer(host: FunctionHost, rec: Recorder) -> None:
    host.run_timer("reconcile")
    host.run_timer("reconcile", past_due=True)
    assert rec.timer_calls == [False, True]
    with pytest.raises(KeyError, match="reconcile"):
        host.run_timer("task_by_id")


# ---- the real HTTP server ---------------------------------------------------------------------------------


def test_http_server_round_trip(host: FunctionHost, rec: Recorder) -> None:
    base_url, stop = host.serve_in_thread(port=0)
    try:
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            resp = client.post("/api/echo/bob", params={"q": "1"}, headers={"X-Custom": "hi"}, json={"n": 1})
            assert resp.status_code == 201
            assert resp.headers["content-type"] == "application/json; charset=utf-8"
            seen = resp.json()
            assert seen["url"] == f"{base_url}/api/echo/bob?q=1"
            assert (seen["params"], seen["custom"], json.loads(seen["body"])) == ({"q": "1"}, "hi", {"n": 1})

            plain = client.get("/api/plain")
            assert plain.text == "héllo"
            assert plain.headers["content-type"] == "text/plain; charset=utf-8"
            assert plain.headers["x-extra"] == "1"

            assert client.get("/api/nothing").json()["error"] == "not_found"
            not_allowed = client.post("/api/tasks/1")
            assert (not_allowed.status_code, not_allowed.headers["allow"]) == (405, "GET, PATCH")
            assert client.get("/api/items/w").status_code == 401
            assert client.get("/api/items/w", headers={"x-functions-key": KEY}).json()["name"] == "w"
            assert client.get("/api/async/5").json() == {"double": 10}
            assert client.get("/api/boom").status_code == 500

            # requests overlap: two calls meet at a barrier inside the function
            rec.barrier = threading.Barrier(2, timeout=10)
            results: list[int] = []

            def call() -> None:
                results.append(httpx.get(f"{base_url}/api/rendezvous", timeout=15).status_code)

            threads = [threading.Thread(target=call) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            assert results == [200, 200]
    finally:
        stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/api/tasks/1", timeout=2)


# ---- batches (cardinality: many) ----------------------------------------------------------------------------


def _batch_app(calls: list[list[tuple[str, int]]], fail_when: Callable[[list[str]], bool]) -> func.FunctionApp:
    bp = func.Blueprint()

    @bp.service_bus_queue_trigger(
        arg_name="msgs",
        queue_name="batches",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
        cardinality=func.Cardinality.MANY,
    )
    def batch_worker(msgs: list[func.ServiceBusMessage]) -> None:
        seqs = [str(json.loads(m.get_body())["seq"]) for m in msgs]
        calls.append([(s, int(m.delivery_count or 0)) for s, m in zip(seqs, msgs, strict=True)])
        if fail_when(seqs):
            raise RuntimeError("batch failed")

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(bp)
    return app


def test_a_batch_trigger_gets_a_sessions_messages_in_order_up_to_the_batch_size() -> None:
    queue = InProcessQueue(max_delivery_count=3)
    calls: list[list[tuple[str, int]]] = []
    h = FunctionHost(_batch_app(calls, lambda _: False), queue=queue, app_settings={}, max_message_batch_size=4)
    assert h.functions["batch_worker"].cardinality == "many"
    send(queue, "s1", *({"seq": i} for i in range(6)), target="batches")
    send(queue, "s2", {"seq": "x"}, target="batches")
    report = h.drain()
    assert report.processed == 7 and report.failed == 0
    by_session = sorted(calls, key=lambda c: c[0][0] == "x")
    assert by_session == [[(str(i), 1) for i in range(4)], [("4", 1), ("5", 1)], [("x", 1)]]
    # A capped drain delivers no more messages than asked, even to a batch trigger.
    send(queue, "s1", *({"seq": i} for i in range(10, 16)), target="batches")
    assert h.drain(max_messages=3).processed == 3 and queue.pending("batches") == 3


def test_a_failed_batch_is_settled_as_a_whole() -> None:
    queue = InProcessQueue(max_delivery_count=2)
    calls: list[list[tuple[str, int]]] = []
    h = FunctionHost(
        _batch_app(calls, lambda seqs: "bad" in seqs), queue=queue, app_settings={}, max_message_batch_size=8
    )
    send(queue, "s1", {"seq": "a"}, {"seq": "bad"}, target="batches")
    report = h.drain()
    # Every message of the batch is abandoned with it, redelivered, and dead-lettered past the limit.
    assert calls == [[("a", 1), ("bad", 1)], [("a", 2), ("bad", 2)]]
    assert (report.processed, report.failed, report.dead_lettered) == (0, 4, 2)
    assert [letter.message.message_id for letter in queue.dead_letters["batches"]] == ["s1-a", "s1-bad"]


def test_the_batch_size_comes_from_host_json(tmp_path: Any) -> None:
    assert (
        host_json_batch_size()
        == json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())["extensions"]["serviceBus"][
            "maxMessageBatchSize"
        ]
    )
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    assert host_json_batch_size(tmp_path / "host.json") == 1000
    (tmp_path / "host.json").write_text("not json")
    assert host_json_batch_size(tmp_path / "host.json") == 1000
