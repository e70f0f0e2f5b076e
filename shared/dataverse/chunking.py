"""Splitting a long `In()` value list into chunks whose request URLs stay under Dataverse's limit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote_plus

__all__ = ["chunk_values"]


def chunk_values(
    values: Sequence[str],
    url_length: Callable[[Sequence[str]], int],
    *,
    max_url_length: int,
    max_values: int,
) -> list[list[str]]:
    """Greedy chunks of `values` (order kept) with `url_length(chunk) < max_url_length`, ≤ `max_values` each.

    The greedy pass estimates each value's encoded size; every chunk is then measured exactly with
    `url_length` and halved until it fits, so the estimate can be off without breaking the guarantee.
    """
    if max_values < 1:
        raise ValueError("max_values must be at least 1")
    base = url_length([])
    if base >= max_url_length:
        raise ValueError("the query is too long for a URL even without values")
    chunks: list[list[str]] = []
    current: list[str] = []
    size = base
    for value in values:
        cost = len(quote_plus(value, safe="")) + 3
        if current and (size + cost >= max_url_length or len(current) >= max_values):
            chunks.append(current)
            current, size = [], base
        current.append(value)
        size += cost
    if current:
        chunks.append(current)

    fitted: list[list[str]] = []
    pending = chunks[::-1]
    while pending:
        chunk = pending.pop()
        if url_length(chunk) < max_url_length:
            fitted.append(chunk)
        elif len(chunk) == 1:
            raise ValueError("a single value is too long to fit in a Dataverse URL")
        else:
            middle = len(chunk) // 2
            pending.extend([chunk[middle:], chunk[:middle]])
    return fitted
