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

    def reset(self) -> None:
        with self.lock:
            self.counters.clear()
            self.request_log.clear()
            self.throttle_events.clear()

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
    """Dataverse's per-user limits: requests per sliding window and concurrent requests."""

    def __init__(self, config: SandboxConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._in_flight.clear()

    def admit(self, caller: str, weight: int = 1) -> None:
        """Count the request against the caller or raise a 429 DataverseError."""
        now = time.monotonic()
        cfg = self.config
        with self._lock:
            window = self._windows.setdefault(caller, deque())
            while window and window[0] <= now - cfg.request_window_s:
                window.popleft()
            if len(window) >= cfg.request_limit:
                retry = max(1, math.ceil(window[0] + cfg.request_window_s - now))
                raise self._throttle(caller, retry, errors.THROTTLE_REQUESTS,
                                     "Number of requests exceeded the limit of "
                                     f"{cfg.request_limit} over time window of {int(cfg.request_window_s)} seconds.")
            if self._in_flight[caller] >= cfg.concurrency_limit:
                raise self._throttle(caller, cfg.concurrency_retry_after_s, errors.THROTTLE_CONCURRENCY,
                                     f"Number of concurrent requests exceeded the limit of {cfg.concurrency_limit}.")
            window.extend([now] * max(1, weight))
            self._in_flight[caller] += 1

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

    def _throttle(self, caller: str, retry_after: int, code: str, message: str) -> DataverseError:
        self.metrics.throttled(caller, retry_after, code)
        return DataverseError(429, code, message, {"Retry-After": str(retry_after)})


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
