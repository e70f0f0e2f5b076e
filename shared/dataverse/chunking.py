"""Splitting work into requests: `In()` value lists under the URL limit, writes into ordered waves and chunks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote_plus

__all__ = ["chunk_values", "even_chunk_size", "write_waves"]


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


def write_waves(ids: Sequence[str | None]) -> list[list[int]]:
    """The positions of `ids` in waves: the n-th write of one record goes in wave n, so no wave holds a
    record twice and a record's writes keep their order when waves run one after another. Writes
    without an id (the server picks it) are distinct records and all go in the first wave."""
    seen: dict[str, int] = {}
    waves: list[list[int]] = []
    for position, record_id in enumerate(ids):
        wave = 0
        if record_id:
            key = record_id.lower()
            wave = seen.get(key, 0)
            seen[key] = wave + 1
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append(position)
    return waves


def even_chunk_size(count: int, parallel: int, *, smallest: int, largest: int) -> int:
    """A chunk size that splits `count` writes into about `parallel` requests, within [smallest, largest]."""
    if count <= 0:
        return max(1, smallest)
    size = -(-count // max(1, parallel))
    return max(1, min(largest, max(smallest, size)))
