"""Copies of one person or company in one Genesy call, merged into one record (pure).

Later copies fill in and update earlier ones, but:
- an empty value never erases one;
- a value is never replaced by a variant of itself that differs only in case, accents or spacing —
  of two such variants the better written one is kept (accents kept, not all upper case);
- an owner that resolves to a Dynamics user is never replaced by one that does not (which would make
  the record fall back to the default owner).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["merge_copies", "same_text"]


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().split())


def same_text(a: Any, b: Any) -> bool:
    """Two texts that differ only in case, accents or spacing."""
    return isinstance(a, str) and isinstance(b, str) and _folded(a) == _folded(b)


def _quality(text: str) -> tuple[int, int]:
    """More accented letters first, then not shouting (all upper case); lower-case e-mails win over upper."""
    accented = sum(1 for ch in text if ord(ch) > 127)
    return accented, 0 if text.isupper() else 1


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def merge_copies(
    copies: Iterable[Mapping[str, Any]], owner_resolves: Callable[[Any], bool] | None = None
) -> dict[str, Any]:
    """One record from several copies, in call order (see the module docstring for the rules)."""
    merged: dict[str, Any] = {}
    for copy in copies:
        for name, value in copy.items():
            if _empty(value):
                continue
            current = merged.get(name)
            if current is None:
                merged[name] = value
            elif same_text(current, value):
                if _quality(value) > _quality(current):
                    merged[name] = value
            elif name == "ownerId" and owner_resolves is not None:
                if owner_resolves(value) or not owner_resolves(current):
                    merged[name] = value
            else:
                merged[name] = value
    return merged
