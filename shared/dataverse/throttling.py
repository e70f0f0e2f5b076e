"""Service-protection plumbing shared by every thread of one client.

`RetryAfterGate` holds the "not before" instant set by a 429, so all threads pause, not just the one
that was throttled. `ConcurrencyLimiter` caps requests in flight at min(configured cap, latest
`x-ms-dop-hint`); until the first response tells it the hint it lets one request through (a probe),
so a burst never starts above what the environment asks for.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from datetime import UTC, datetime

__all__ = ["ConcurrencyLimiter", "RetryAfterGate", "parse_retry_after"]


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


class ConcurrencyLimiter:
    """A resizable semaphore: at most `cap` requests in flight."""

    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._max = max_concurrency
        self._cap = 1
        self._probing = True
        self._in_flight = 0
        self._cond = threading.Condition()

    @property
    def cap(self) -> int:
        with self._cond:
            return self._cap

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot, waiting up to `timeout` seconds; False when none freed in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._in_flight >= self._cap:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def observe(self, dop_hint: str | None) -> None:
        """Resize from a response's `x-ms-dop-hint` (absent: keep the last hint, or open up after the probe)."""
        hint: int | None = None
        if dop_hint:
            try:
                hint = int(dop_hint.strip())
            except ValueError:
                hint = None
        with self._cond:
            if hint is not None and hint > 0:
                self._cap = min(self._max, hint)
            elif self._probing:
                self._cap = self._max
            self._probing = False
            self._cond.notify_all()
