"""The HTTPS front door (raw ASGI, served by uvicorn): bearer-token check, service protection, fault
injection and latency, then the Web API or `$batch`, then the cost model (execution time charged to the
caller and, when `execution_sleep` is on, waited); every response carries Dataverse's headers. Paths
under `/_sandbox/` go to the admin endpoint instead."""

from __future__ import annotations

import asyncio
import time
import uuid

from devstack.asgi import Receive, Scope, Send, http_only
from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.admin import ADMIN_PREFIX, SandboxAdmin
from devstack.dataverse_sandbox.api import (
    ApiRequest,
    ApiResponse,
    DataverseApi,
    error_response,
    json_response,
    parse_query_string,
)
from devstack.dataverse_sandbox.batch import handle_batch
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.cost import NO_WORK, execution_ms
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.keys import API_PREFIX
from devstack.dataverse_sandbox.limits import (
    FaultInjector,
    Metrics,
    RequestRecord,
    ServiceProtection,
    format_retry_after,
)
from devstack.dataverse_sandbox.tokens import TokenError, TokenSigner

__all__ = ["SandboxApp"]

UNAUTHORIZED = "0x80072560"
_TENANT_AUTHORIZE = "https://login.microsoftonline.com/common/oauth2/authorize"


class SandboxApp:
    """ASGI application; all state lives in the objects passed in, shared with the `Sandbox` handle."""

    def __init__(self, api: DataverseApi, config: SandboxConfig, signer: TokenSigner, metrics: Metrics,
                 protection: ServiceProtection, faults: FaultInjector, admin: SandboxAdmin) -> None:
        self.api = api
        self.config = config
        self.signer = signer
        self.metrics = metrics
        self.protection = protection
        self.faults = faults
        self.admin = admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await http_only(scope, receive, send):
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        method = str(scope["method"]).upper()
        raw_path = bytes(scope.get("raw_path") or str(scope["path"]).encode()).decode("latin-1")
        raw_query = bytes(scope.get("query_string") or b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive)
        if raw_path.split("?")[0].startswith(ADMIN_PREFIX):
            answer = self.admin.handle(method, raw_path.split("?")[0], raw_query, headers, body)
            await _send(send, answer, answer.headers)
            return
        self.metrics.enter()
        caller: str | None = None
        admitted = False
        resp: ApiResponse
        parts: list[tuple[str, float]] = []
        part_count = 0
        spent_ms = 0.0
        try:
            url_length = len(raw_path) + (len(raw_query) + 1 if raw_query else 0)
            if url_length > self.config.max_url_length:
                raise DataverseError(414, errors.UNEXPECTED,
                                     f"The request URL is longer than {self.config.max_url_length} characters.")
            if not raw_path.startswith(API_PREFIX) and raw_path != API_PREFIX.rstrip("/"):
                raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"No resource at {raw_path}.")
            caller = self._authenticate(headers)
            self.metrics.arrived(caller, time.monotonic())
            self.protection.admit(caller)
            admitted = True
            await self._fault(caller)
            path = raw_path[len(API_PREFIX):] if raw_path.startswith(API_PREFIX) else ""
            if path == "$batch" and method == "POST":
                resp, parts, part_count = await self._batch(headers, body)
                spent_ms = sum(ms for _, ms in parts)
            else:
                req = ApiRequest(method, path, parse_query_string(raw_query), headers, body)
                resp = self.api.handle(req)
                spent_ms = execution_ms(self.config, resp.work or NO_WORK)
            await self._execute(caller, resp.route, spent_ms, parts)
        except DataverseError as err:
            resp = error_response(err)
            if err.status == 401:
                resp.headers["WWW-Authenticate"] = (
                    f'Bearer authorization_uri={_TENANT_AUTHORIZE}, resource_id={self.api.base_url}/')
        except Exception as exc:
            resp = json_response(500, {"error": {"code": errors.UNEXPECTED, "message": f"Sandbox error: {exc!r}"}})
        finally:
            if admitted and caller is not None:
                self.protection.release(caller)
        out_headers = {
            "OData-Version": "4.0",
            "x-ms-dop-hint": str(self.config.dop_hint),
            "x-ms-service-request-id": str(uuid.uuid4()),
            "x-ms-sandbox-execution-ms": f"{spent_ms:.3f}",
            **resp.headers,
        }
        if caller is not None:
            out_headers["x-ms-ratelimit-burst-remaining-xrm-requests"] = str(self.protection.remaining(caller))
            out_headers["x-ms-ratelimit-time-remaining-xrm-requests"] = (
                f"{self.protection.execution_remaining_ms(caller):.2f}")
        # Logged before the response leaves, so a client that has its answer always finds it in the log.
        self.metrics.leave(RequestRecord(
            method=method, path=raw_path, query=raw_query, status=resp.status,
            duration=time.monotonic() - started, ts=time.time(), batch_parts=part_count, caller=caller,
            route=resp.route, execution_ms=spent_ms))
        await _send(send, resp, out_headers)

    async def _fault(self, caller: str) -> None:
        """Injected faults and the network latency (before the request runs)."""
        fault = self.faults.draw()
        if fault.kind == "throttle":
            retry_after = fault.retry_after * self.config.time_scale
            self.metrics.throttled(caller, retry_after, errors.THROTTLE_REQUESTS)
            raise DataverseError(429, errors.THROTTLE_REQUESTS,
                                 "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                                 {"Retry-After": format_retry_after(retry_after)})
        if fault.kind == "timeout":
            self.metrics.bump("timeouts")
            await asyncio.sleep(self.config.timeout_hang_s)
            raise DataverseError(504, errors.UNEXPECTED, "The request timed out (injected).")
        if self.config.latency_ms > 0:
            await self._latency(time.monotonic())
        if fault.kind == "error":
            self.metrics.bump("injected_5xx")
            raise DataverseError(503, errors.UNEXPECTED,
                                 "The service is temporarily unavailable. Please retry (injected fault).")

    async def _execute(self, caller: str, route: str, spent_ms: float, parts: list[tuple[str, float]]) -> None:
        """Charge the request's execution time to the caller; wait it out when `execution_sleep` is on."""
        self.protection.charge(caller, spent_ms)
        self.metrics.charged(caller, route, spent_ms, parts)
        since = time.monotonic()
        while self.config.execution_sleep and spent_ms > 0:  # re-read: turning it off releases waiters
            remaining = spent_ms * self.config.time_scale / 1000 - (time.monotonic() - since)
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.25))

    async def _latency(self, since: float) -> None:
        """Sleep until `config.latency_ms` has passed, re-reading the knob so lowering it releases waiters."""
        while True:
            remaining = self.config.latency_ms * self.config.time_scale / 1000 - (time.monotonic() - since)
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.25))

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DataverseError(401, UNAUTHORIZED, "Bearer token is missing from the Authorization header.")
        try:
            claims = self.signer.verify(token.strip(), self.api.base_url)
        except TokenError as exc:
            raise DataverseError(401, UNAUTHORIZED, f"Bearer token is not valid: {exc}.") from None
        return claims.app_id

    async def _batch(self, headers: dict[str, str],
                     body: bytes) -> tuple[ApiResponse, list[tuple[str, float]], int]:
        """Run a `$batch`: the response, the (route, execution ms) of each part that ran, the part count."""
        parts: list[tuple[str, float]] = []

        def count_part(resp: ApiResponse) -> None:
            parts.append((resp.route, execution_ms(self.config, resp.work or NO_WORK)))
            with self.metrics.lock:
                self.metrics.counters["batch_parts"] += 1
                if resp.route:
                    self.metrics.counters[f"batch:{resp.route}"] += 1

        outcome = handle_batch(self.api, headers.get("content-type", ""), body, headers.get("prefer", ""),
                               count_part)
        extra = self.config.batch_part_latency_ms
        if extra > 0:
            await asyncio.sleep(extra * outcome.part_count * self.config.time_scale / 1000)
        return ApiResponse(outcome.status, {"Content-Type": outcome.content_type}, outcome.body,
                           route="POST $batch"), parts, outcome.part_count


async def _send(send: Send, resp: ApiResponse, headers: dict[str, str]) -> None:
    out = {**headers, "Content-Length": str(len(resp.body))}
    await send({"type": "http.response.start", "status": resp.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]})
    await send({"type": "http.response.body", "body": resp.body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


