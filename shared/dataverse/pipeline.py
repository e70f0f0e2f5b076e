"""One Dataverse request with everything around it: bearer token, the 429 gate, the concurrency cap,
retries with full-jitter backoff inside the caller's budget, typed errors and safe logging.

Every operation of `DataverseClient` goes through `RequestPipeline.send`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.dataverse.budget import Budget
from shared.dataverse.errors import (
    AuthFailed,
    BudgetExceeded,
    DataverseError,
    Throttled,
    TransientError,
    error_from_response,
)
from shared.dataverse.throttling import (
    DEFAULT_DOP,
    AdaptiveLimit,
    FairLimiter,
    Grant,
    RetryAfterGate,
    current_share,
    parse_dop_hint,
    parse_retry_after,
)
from shared.platform.correlation import current_correlation_id, request_id_for
from shared.platform.logs import logger as named_logger
from shared.platform.usage import count_request

__all__ = ["RequestPipeline", "RetryPolicy", "logger"]

logger = named_logger("dataverse")

_TOKEN_REFRESH_MARGIN = 300.0
_MIN_REQUEST_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Full-jitter exponential backoff for 5xx and network failures."""

    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * (2**attempt)))


class RequestPipeline:
    """Sends requests for one environment; shared by all threads of a client."""

    def __init__(
        self,
        http: httpx.Client,
        credential: TokenCredential,
        scope: str,
        *,
        max_concurrency: int,
        default_budget: float,
        retry: RetryPolicy | None = None,
        default_dop: int = DEFAULT_DOP,
    ) -> None:
        self.http = http
        self.gate = RetryAfterGate()
        self.limiter = FairLimiter(AdaptiveLimit(max_concurrency, default_dop=default_dop))
        self.retry = retry or RetryPolicy()
        self.default_budget = default_budget
        self._credential = credential
        self._scope = scope
        self._token: AccessToken | None = None
        self._token_lock = threading.Lock()

    def budget(self, budget: Budget | None) -> Budget:
        return budget if budget is not None else Budget(self.default_budget)

    def bearer(self) -> str:
        """A valid access token, from our cache or the credential (one caller at a time refreshes)."""
        with self._token_lock:
            token = self._token
            if token is None or token.expires_on - _TOKEN_REFRESH_MARGIN <= time.time():
                try:
                    token = self._credential.get_token(self._scope)
                except ClientAuthenticationError as exc:
                    raise AuthFailed(f"could not get a Dataverse token: {exc.message}") from None
                self._token = token
            return token.token

    def wait_for_gate(self, budget: Budget, last_error: DataverseError | None) -> None:
        """Sleep until the 429 hold is over, or raise `Throttled` when it outlasts the budget."""
        while True:
            delay = self.gate.delay()
            if delay <= 0:
                return
            if delay > budget.remaining():
                raise Throttled(
                    last_error.message if last_error else "Dataverse asked us to wait longer than the budget",
                    retry_after=delay,
                    status=429,
                    code=last_error.code if last_error else None,
                )
            time.sleep(delay)

    def backoff(self, attempt: int, budget: Budget, error: DataverseError) -> None:
        """Sleep a jittered delay, or raise `BudgetExceeded` (keeping `error`'s code) when none is left."""
        delay = self.retry.delay(attempt)
        if delay >= budget.remaining():
            raise BudgetExceeded("Dataverse retry budget exhausted", last_error=error)
        time.sleep(delay)

    def on_throttled(self, error: Throttled, attempt: int, budget: Budget) -> None:
        """Hold every thread for the full Retry-After, or give up at once when it outlasts the budget
        (the hold stands either way: the environment asked every caller of ours to wait)."""
        wait = error.retry_after if error.retry_after > 0 else self.retry.delay(attempt)
        self.gate.push(wait)
        if wait > budget.remaining():
            raise Throttled(error.message, retry_after=wait, status=429, code=error.code)

    def _release(self, grant: Grant, response: httpx.Response | None, attempt: int) -> None:
        """Give the slot back with the outcome; a 429 closes the gate first, so no thread waiting for the
        slot can slip a request into the Retry-After window."""
        if response is None:
            self.limiter.release(grant)
            return
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            self.gate.push(wait if wait else self.retry.delay(attempt))
        self.limiter.release(grant, response.status_code, parse_dop_hint(response.headers.get("x-ms-dop-hint")))

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        budget: Budget | None = None,
        retry_ambiguous: bool = True,
        multipart_errors: bool = False,
    ) -> httpx.Response:
        """Send until a 2xx (returned), a non-retryable failure (typed error) or the budget's end.

        `retry_ambiguous=False` stops retrying after a read timeout, when the server may have acted
        (a POST without a caller-chosen key). `multipart_errors` returns a 4xx `$batch` answer that
        carries per-part responses instead of raising, so the caller can read the failing part.
        """
        budget = self.budget(budget)
        last_error: DataverseError | None = None
        attempt = 0
        request_id = request_id_for(current_correlation_id())
        while True:
            self.wait_for_gate(budget, last_error)
            grant = self.limiter.acquire(current_share(), timeout=budget.remaining())
            if grant is None:
                raise BudgetExceeded("no Dataverse connection slot within the budget", last_error=last_error)
            response: httpx.Response | None = None
            try:
                if self.gate.delay() > 0:
                    continue
                response, error = self._attempt(
                    method, url, params, headers, json, content, budget, request_id, retry_ambiguous
                )
            finally:
                self._release(grant, response, attempt)
            count_request(response.status_code if response is not None else None)
            if response is not None:
                if response.status_code < 400:
                    return response
                if (
                    multipart_errors
                    and response.status_code < 500
                    and response.status_code != 429
                    and response.headers.get("content-type", "").lower().startswith("multipart/")
                ):
                    return response
                error = error_from_response(
                    response.status_code, response.headers, response.content, request_id=request_id
                )
            assert error is not None
            last_error = error
            if isinstance(error, Throttled):
                self.on_throttled(error, attempt, budget)
            elif isinstance(error, TransientError) and error.retryable:
                self.backoff(attempt, budget, error)
            else:
                raise error
            attempt += 1

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        content: bytes | None,
        budget: Budget,
        request_id: str,
        retry_ambiguous: bool,
    ) -> tuple[httpx.Response | None, DataverseError | None]:
        request_headers = {
            "Authorization": f"Bearer {self.bearer()}",
            "x-ms-client-request-id": request_id,
            **(headers or {}),
        }
        if method == "GET":
            request_headers.setdefault("If-None-Match", "null")
        started = time.perf_counter()
        try:
            response = self.http.request(
                method,
                url,
                params=params,
                headers=request_headers,
                json=json,
                content=content,
                timeout=self._timeout_within(budget),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self._log(method, url, None, started, request_id, type(exc).__name__)
            return None, TransientError(f"could not connect to Dataverse ({type(exc).__name__})")
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            self._log(method, url, None, started, request_id, type(exc).__name__)
            error = TransientError(f"Dataverse did not answer ({type(exc).__name__})")
            if not retry_ambiguous:
                raise error from None
            return None, error
        self._log(method, url, response.status_code, started, request_id, None, response)
        return response, None

    def _timeout_within(self, budget: Budget) -> httpx.Timeout:
        """The client's timeouts, shortened so one request cannot run far past the budget's end."""
        configured = self.http.timeout
        remaining = max(budget.remaining(), _MIN_REQUEST_TIMEOUT)
        if configured.read is None or remaining >= configured.read:
            return configured
        return httpx.Timeout(remaining, connect=min(configured.connect or remaining, remaining), pool=remaining)

    def _log(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        request_id: str,
        failure: str | None,
        response: httpx.Response | None = None,
    ) -> None:
        path = response.request.url.path if response is not None else httpx.URL(url).path or url.split("?")[0]
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if failure is not None or (status is not None and (status >= 500 or status == 429)):
            level = logging.WARNING
        elif status is not None and status >= 400:
            level = logging.INFO
        else:
            level = logging.DEBUG
        if not logger.isEnabledFor(level):
            return
        logger.log(
            level,
            "dataverse %s %s -> %s in %.1f ms (request %s, correlation %s)",
            method,
            path,
            status if status is not None else failure,
            duration_ms,
            request_id,
            current_correlation_id(),
            extra={
                "dataverse_method": method,
                "dataverse_path": path,
                "dataverse_status": status,
                "duration_ms": duration_ms,
                "client_request_id": request_id,
                "correlation_id": current_correlation_id(),
            },
        )
