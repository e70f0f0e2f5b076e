"""What one unit of work (a queue message) spent on Dataverse: requests sent and 429s received.

Set a scope per message (`with usage_scope() as usage: ...`); the Dataverse pipeline counts every
attempt into the current scope, also from the client's worker threads (they run in a copy of the
caller's context, which holds the same counter).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["RequestUsage", "count_request", "usage_scope"]


@dataclass
class RequestUsage:
    requests: int = 0
    throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, status: int | None) -> None:
        with self._lock:
            self.requests += 1
            self.throttled += status == 429


_usage: ContextVar[RequestUsage | None] = ContextVar("genesy_dynamics_usage", default=None)


def count_request(status: int | None) -> None:
    """Count one Dataverse attempt (its HTTP status, None when no response came) in the current scope."""
    usage = _usage.get()
    if usage is not None:
        usage.add(status)


@contextmanager
def usage_scope() -> Iterator[RequestUsage]:
    usage = RequestUsage()
    token = _usage.set(usage)
    try:
        yield usage
    finally:
        _usage.reset(token)
