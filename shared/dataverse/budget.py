"""A time budget shared by every retry of one unit of work (a queue message, an HTTP call)."""

from __future__ import annotations

import time

__all__ = ["Budget"]


class Budget:
    """`seconds` from now; retries stop (and the client raises `BudgetExceeded`) once it runs out."""

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a budget cannot be negative")
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def __repr__(self) -> str:
        return f"Budget(seconds={self.seconds!r}, remaining={self.remaining():.3f})"
