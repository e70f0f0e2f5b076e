"""Service protection (per-caller request window and concurrency), fault injection, and the counters and
logs tests read to prove client behaviour (e.g. that no caller retried before `Retry-After`)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.errors import DataverseError

__all__ = ["Fault", "FaultInjector", "Metrics", "RequestRecord", "ServiceProtection", "ThrottleEvent"]


@dataclass
class RequestRecord:
    """One HTTP request as the sandbox saw it; also readable as `record["status"]`."""

    method: str
    path: str
    query: str
    status: int
    duration: float
    ts: float
    batch_parts: int = 0
    caller: str | None = None
    route: str = ""
    execution_ms: float = 0.0

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass
class ThrottleEvent:
    """A 429 sent to `caller` at `sent_at` (monotonic) announcing `retry_after` seconds."""

    caller: str
    sent_at: float
    retry_after: float
    code: str
    next_request_at: float | None = None

    @property
    def retried_early(self) -> bool:
        return self.next_request_at is not None and self.next_request_at < self.sent_at + self.retry_after


@dataclass
class Metrics:
    """Counters, request log and throttle history, guarded by one lock (read from the test thread)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counters: Counter[str] = field(default_factory=Counter)
    request_log: list[RequestRecord] = field(default_factory=list)
    throttle_events: list[ThrottleEvent] = field(default_factory=list)
    in_flight: int = 0
    # Execution time charged by the cost model, in model ms: by route ("POST $batch" for whole batches,
    # "batch:<route>" for their parts) and by caller. `execution_ms_total` is their sum.
    execution_ms_by_route: dict[str, float] = field(default_factory=dict)
    execution_ms_by_caller: dict[str, float] = field(default_factory=dict)
    execution_ms_total: float = 0.0

    def reset(self) -> None:
        with self.lock:
            self.counters.clear()
            self.request_log.clear()
            self.throttle_events.clear()
            self.execution_ms_by_route.clear()
            self.execution_ms_by_caller.clear()
            self.execution_ms_total = 0.0

    def charged(self, caller: str, route: str, execution_ms: float, parts: list[tuple[str, float]]) -> None:
        """Record a request's execution time (and, for a `$batch`, each part's)."""
        with self.lock:
            self.execution_ms_total += execution_ms
            self.execution_ms_by_caller[caller] = self.execution_ms_by_caller.get(caller, 0.0) + execution_ms
            by_route = self.execution_ms_by_route
            by_route[route] = by_route.get(route, 0.0) + execution_ms
            for part_route, part_ms in parts:
                key = f"batch:{part_route}"
                by_route[key] = by_route.get(key, 0.0) + part_ms

    def bump(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counters[name] += by

    def arrived(self, caller: str, now: float) -> None:
        """Note the caller's arrival time on its 429s still waiting for a next request."""
        with self.lock:
            for event in self.throttle_events:
                if event.caller == caller and event.next_request_at is None:
                    event.next_request_at = now

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.counters["requests"] += 1
            if self.in_flight > self.counters["max_concurrency_seen"]:
                self.counters["max_concurrency_seen"] = self.in_flight

    def leave(self, record: RequestRecord) -> None:
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            self.counters[f"status_{record.status}"] += 1
            if record.route:
                self.counters[record.route] += 1
            self.request_log.append(record)

    def throttled(self, caller: str, retry_after: float, code: str) -> None:
        with self.lock:
            self.counters["throttled"] += 1
            self.throttle_events.append(ThrottleEvent(caller, time.monotonic(), retry_after, code))


class ServiceProtection:
    """Dataverse's three per-user limits over one sliding window: requests (a `$batch` counts as one),
    combined execution time, and concurrent requests. Windows run in wall-clock time: the model's window
    times `config.time_scale`; execution time is kept in model milliseconds."""

    def __init__(self, config: SandboxConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._execution: dict[str, deque[tuple[float, float]]] = {}
        self._execution_sums: dict[str, float] = {}
        self._in_flight: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._execution.clear()
            self._execution_sums.clear()
            self._in_flight.clear()

    def window_wall_s(self) -> float:
        return self.config.request_window_s * self.config.time_scale

    def admit(self, caller: str, weight: int = 1) -> None:
        """Count the request against the caller or raise a 429 DataverseError (requests, then execution
        time, then concurrency, each with Dataverse's code and message)."""
        now = time.monotonic()
        cfg = self.config
        with self._lock:
            window = self._windows.setdefault(caller, deque())
            horizon = now - self.window_wall_s()
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) >= cfg.request_limit:
                raise self._throttle(caller, window[0] + self.window_wall_s() - now, errors.THROTTLE_REQUESTS,
                                     "Number of requests exceeded the limit of "
                                     f"{cfg.request_limit} over time window of {int(cfg.request_window_s)} seconds.")
            used_ms = self._prune_execution(caller, horizon)
            if used_ms >= cfg.execution_time_limit_s * 1000:
                raise self._throttle(caller, self._execution_wait(caller, now), errors.THROTTLE_EXECUTION_TIME,
                                     "Combined execution time of incoming requests exceeded limit of "
                                     f"{int(cfg.execution_time_limit_s * 1000):,} milliseconds over time window "
                                     f"of {int(cfg.request_window_s)} seconds. Decrease number of concurrent "
                                     "requests or reduce the duration of requests and try again later.")
            if self._in_flight[caller] >= cfg.concurrency_limit:
                raise self._throttle(caller, cfg.concurrency_retry_after_s * cfg.time_scale,
                                     errors.THROTTLE_CONCURRENCY,
                                     f"Number of concurrent requests exceeded the limit of {cfg.concurrency_limit}.")
            window.extend([now] * max(1, weight))
            self._in_flight[caller] += 1

    def charge(self, caller: str, execution_ms: float) -> None:
        """Add a request's execution time (model ms) to the caller's window."""
        if execution_ms <= 0:
            return
        with self._lock:
            self._execution.setdefault(caller, deque()).append((time.monotonic(), execution_ms))
            self._execution_sums[caller] = self._execution_sums.get(caller, 0.0) + execution_ms

    def execution_used_ms(self, caller: str) -> float:
        """Execution time (model ms) the caller spent within the current window."""
        with self._lock:
            return self._prune_execution(caller, time.monotonic() - self.window_wall_s())

    def execution_remaining_ms(self, caller: str) -> float:
        return max(0.0, self.config.execution_time_limit_s * 1000 - self.execution_used_ms(caller))

    def _prune_execution(self, caller: str, horizon: float) -> float:
        events = self._execution.get(caller)
        if not events:
            return 0.0
        total = self._execution_sums.get(caller, 0.0)
        while events and events[0][0] <= horizon:
            total -= events.popleft()[1]
        total = max(0.0, total) if events else 0.0
        self._execution_sums[caller] = total
        return total

    def _execution_wait(self, caller: str, now: float) -> float:
        """Wall seconds until enough execution time leaves the window to fall below the limit."""
        limit_ms = self.config.execution_time_limit_s * 1000
        total = self._execution_sums.get(caller, 0.0)
        for stamp, spent in self._execution.get(caller, ()):
            total -= spent
            if total < limit_ms:
                return stamp + self.window_wall_s() - now
        return self.window_wall_s()

    def release(self, caller: str) -> None:
        with self._lock:
            if self._in_flight[caller] > 0:  # a reset() may have cleared it meanwhile
                self._in_flight[caller] -= 1

    def in_flight(self, caller: str) -> int:
        """Requests of `caller` admitted and not yet answered."""
        with self._lock:
            return self._in_flight[caller]

    def remaining(self, caller: str) -> int:
        with self._lock:
            return max(0, self.config.request_limit - len(self._windows.get(caller, ())))

    def _throttle(self, caller: str, wait_wall_s: float, code: str, message: str) -> DataverseError:
        retry_after = retry_after_wall_s(wait_wall_s, self.config.time_scale)
        self.metrics.throttled(caller, retry_after, code)
        return DataverseError(429, code, message, {"Retry-After": format_retry_after(retry_after)})


def retry_after_wall_s(wait_wall_s: float, time_scale: float) -> float:
    """Whole model seconds (at least one, as Dataverse announces them), back in wall seconds."""
    scale = time_scale if time_scale > 0 else 1.0
    return max(1, math.ceil(wait_wall_s / scale - 1e-9)) * scale


def format_retry_after(seconds: float) -> str:
    """`Retry-After` as Dataverse sends it (whole seconds); fractional only when time is scaled."""
    if abs(seconds - round(seconds)) < 1e-9:
        return str(round(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


FaultKind = Literal["none", "error", "timeout", "throttle"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: int = 0


class FaultInjector:
    """Seeded random faults: two draws per request (5xx, timeout) keep sequences reproducible."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self.config.seed)

    def draw(self) -> Fault:
        cfg = self.config
        with self._lock:
            if cfg.throttle_burst > 0:
                cfg.throttle_burst -= 1
                return Fault("throttle", cfg.throttle_retry_after_s)
            error_draw, timeout_draw = self._rng.random(), self._rng.random()
        if timeout_draw < cfg.timeout_rate:
            return Fault("timeout")
        if error_draw < cfg.error_rate_5xx:
            return Fault("error")
        return Fault("none")
