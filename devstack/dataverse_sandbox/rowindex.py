"""Secondary indexes over the store's tables, kept current on every insert, update and delete.

An index maps a key derived from a row (a folded column value, a lookup's target id) to the ids of the
rows that have it, so a lookup costs the same however large the table is, as Dataverse's SQL indexes do.
It is built from the table once, the first time it is asked for, then the store tells it of every row
change (`changed`), including rollbacks. Knows nothing of the store: rows are plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

__all__ = ["ColumnIndex", "KeyOf", "RowIndexes"]

Row = dict[str, Any]
KeyOf = Callable[[Row], str | None]
"""A row's key in one index; None leaves the row out of it."""


class ColumnIndex:
    """key → ids of the rows with that key (in the order they got it)."""

    def __init__(self, key_of: KeyOf) -> None:
        self.key_of = key_of
        self._postings: dict[str, dict[str, None]] = {}
        self._keys: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, record_id: str, row: Row) -> None:
        key = self.key_of(row)
        if key is not None:
            self._postings.setdefault(key, {})[record_id] = None
            self._keys[record_id] = key

    def remove(self, record_id: str) -> None:
        key = self._keys.pop(record_id, None)
        if key is None:
            return
        ids = self._postings[key]
        del ids[record_id]
        if not ids:
            del self._postings[key]

    def ids(self, key: str) -> Iterable[str]:
        return self._postings.get(key, {}).keys()


class RowIndexes:
    """Every index of every table, by (table, name); the store owns one and reports each row change."""

    def __init__(self) -> None:
        self._by_table: dict[str, dict[Hashable, ColumnIndex]] = {}

    def get(self, table: str, name: Hashable, key_of: KeyOf, rows: Mapping[str, Row]) -> ColumnIndex:
        """The index `name` of `table`, built from `rows` (the table now) on first use."""
        indexes = self._by_table.setdefault(table, {})
        index = indexes.get(name)
        if index is None:
            index = ColumnIndex(key_of)
            for record_id, row in rows.items():
                index.add(record_id, row)
            indexes[name] = index
        return index

    def changed(self, table: str, record_id: str, old: Row | None, new: Row | None) -> None:
        for index in self._by_table.get(table, {}).values():
            if old is not None:
                index.remove(record_id)
            if new is not None:
                index.add(record_id, new)

    def clear(self) -> None:
        self._by_table.clear()
