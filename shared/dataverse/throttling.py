"""Service-protection plumbing shared by every thread of one client (= one Dynamics environment).

- `RetryAfterGate` holds the "not before" instant set by a 429, so all threads pause, not just the one
  that was throttled: no request reaches the environment inside a `Retry-After`.
- `AdaptiveLimit` (pure) decides how many requests may be in flight: additive increase on success up
  to the environment's `x-ms-dop-hint` (or `DEFAULT_DOP` until one is seen), multiplicative decrease
  on a 429 — once per round, so a burst of 429s answering requests sent together halves it once.
- `FairQueue` (pure) hands turns round-robin across share keys (workspaces), first come first served
  within one key.
- `FairLimiter` puts the two together behind a lock: a request takes a `Grant` (waiting its turn when
  the limit is reached) and gives it back with the response, which feeds the limit.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_DOP",
    "AdaptiveLimit",
    "FairLimiter",
    "FairQueue",
    "Grant",
    "RetryAfterGate",
    "current_share",
    "fair_share",
    "parse_dop_hint",
    "parse_retry_after",
    "sharing_writers",
    "writers_sharing",
]

# Requests in flight per environment until its `x-ms-dop-hint` is known (Microsoft's guidance: send
# in parallel up to the hint; Dataverse environments commonly answer 4, the sandbox's default too).
DEFAULT_DOP = 4

T = TypeVar("T")

_share: ContextVar[str] = ContextVar("genesy_dynamics_dataverse_share", default="")
_writers: ContextVar[int] = ContextVar("genesy_dynamics_dataverse_writers", default=1)


def current_share() -> str:
    """The share key of the current unit of work (a workspace id; "" outside any `fair_share`)."""
    return _share.get()


@contextmanager
def fair_share(key: str) -> Iterator[None]:
    """Requests sent inside take their turns as `key` (the client's threads inherit it with the context)."""
    token = _share.set(key)
    try:
        yield
    finally:
        _share.reset(token)


@contextmanager
def sharing_writers(count: int) -> Iterator[None]:
    """Writes sent inside are one of `count` units of work writing at the same time (the worker's
    concurrent messages): each cuts its writes into fewer, larger requests — a bulk message costs less
    per record the more it carries — and together they still fill the environment's concurrency."""
    token = _writers.set(max(1, count))
    try:
        yield
    finally:
        _writers.reset(token)


def writers_sharing() -> int:
    """How many units of work share the concurrency with the current one (1 outside `sharing_writers`)."""
    return _writers.get()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta seconds (fractional allowed) or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # HTTP-dates have whole-second resolution; round up so we never come back early.
        seconds = math.ceil((when - (now or datetime.now(UTC))).total_seconds())
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def parse_dop_hint(value: str | None) -> int | None:
    """The positive integer of an `x-ms-dop-hint` header, or None."""
    if not value:
        return None
    try:
        hint = int(value.strip())
    except ValueError:
        return None
    return hint if hint > 0 else None


class RetryAfterGate:
    """The earliest monotonic instant any request of this client may be sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0

    def push(self, seconds: float) -> None:
        """Hold every request back for `seconds` from now (never shortens an existing hold)."""
        until = time.monotonic() + seconds
        with self._lock:
            self._not_before = max(self._not_before, until)

    def delay(self) -> float:
        """Seconds still to wait before sending (0 when open)."""
        with self._lock:
            return max(0.0, self._not_before - time.monotonic())


class AdaptiveLimit:
    """AIMD concurrency for one environment, pure: fed outcomes, it answers how many may be in flight.

    Starts at `initial` (1: a probe, so a burst never starts above what the environment asks for);
    each success adds `1 / limit` (about +1 per round of successes) up to the ceiling — min(`max_limit`,
    latest `x-ms-dop-hint`, or `DEFAULT_DOP` before any hint); a 429 multiplies it by `decrease`
    (never below 1). A 429 answering a request granted before the last decrease does not decrease
    again: `epoch` tells the rounds apart.
    """

    def __init__(self, max_limit: int, *, initial: int = 1, decrease: float = 0.5, default_dop: int = DEFAULT_DOP):
        if max_limit < 1:
            raise ValueError("max_limit must be at least 1")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.max_limit = max_limit
        self.decrease = decrease
        self.default_dop = default_dop
        self.hint: int | None = None
        self.epoch = 0
        self._limit = float(max(1, min(initial, max_limit)))

    @property
    def ceiling(self) -> int:
        """Where additive increase stops: the environment's hint (or the default), within `max_limit`."""
        return max(1, min(self.max_limit, self.hint if self.hint is not None else self.default_dop))

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(1, min(self.ceiling, math.floor(self._limit + 1e-9)))

    def on_success(self, dop_hint: int | None = None) -> None:
        if dop_hint is not None and dop_hint > 0:
            self.hint = dop_hint
        ceiling = self.ceiling
        self._limit = min(float(ceiling), self._limit + 1.0 / max(1.0, self._limit))

    def on_throttled(self, epoch: int) -> bool:
        """Decrease once for the round `epoch`; False when this round was decreased already."""
        if epoch != self.epoch:
            return False
        self._limit = max(1.0, min(self._limit, float(self.ceiling)) * self.decrease)
        self.epoch += 1
        return True


class FairQueue(Generic[T]):
    """Waiting items per key, handed out round-robin across keys and in arrival order within a key."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, key: str, item: T) -> None:
        self._queues.setdefault(key, deque()).append(item)

    def pop(self) -> T | None:
        """The next item: the first key's oldest, after which that key goes to the back of the round."""
        if not self._queues:
            return None
        key, items = next(iter(self._queues.items()))
        item = items.popleft()
        if items:
            self._queues.move_to_end(key)
        else:
            del self._queues[key]
        return item

    def remove(self, key: str, item: T) -> bool:
        items = self._queues.get(key)
        if items is None or item not in items:
            return False
        items.remove(item)
        if not items:
            del self._queues[key]
        return True


@dataclass(eq=False)
class Grant:
    """One request's slot: whose turn it was and the AIMD round it was granted in."""

    key: str
    epoch: int = 0
    granted: bool = False


class FairLimiter:
    """At most `limit.allowed` requests in flight; waiting requests take turns round-robin by share key."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self._cond = threading.Condition()
        self._waiting: FairQueue[Grant] = FairQueue()
        self._in_flight = 0
        self.grants: Counter[str] = Counter()  # turns granted per key, for fairness checks and metrics

    @property
    def cap(self) -> int:
        with self._cond:
            return self.limit.allowed

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def acquire(self, key: str = "", timeout: float | None = None) -> Grant | None:
        """Wait for this key's turn and a free slot, up to `timeout` seconds; None when none came in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        grant = Grant(key)
        with self._cond:
            self._waiting.push(key, grant)
            self._dispatch()
            while not grant.granted:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._waiting.remove(key, grant)
                    return None
                self._cond.wait(remaining)
            return grant

    def release(self, grant: Grant, status: int | None = None, dop_hint: int | None = None) -> None:
        """Give the slot back with the outcome: a 429 decreases the limit, a success (< 500) increases it."""
        with self._cond:
            self._in_flight -= 1
            if status == 429:
                self.limit.on_throttled(grant.epoch)
            elif status is not None and status < 500:
                self.limit.on_success(dop_hint)
            self._dispatch()

    def throttled(self) -> None:
        """A 429 that came inside an answer (a `$batch` part): decrease as for a throttled request."""
        with self._cond:
            self.limit.on_throttled(self.limit.epoch)

    def _dispatch(self) -> None:
        granted = False
        while self._in_flight < self.limit.allowed:
            grant = self._waiting.pop()
            if grant is None:
                break
            grant.granted, grant.epoch = True, self.limit.epoch
            self._in_flight += 1
            self.grants[grant.key] += 1
            granted = True
        if granted:
            self._cond.notify_all()
