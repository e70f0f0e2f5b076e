"""Column indexes for `Microsoft.Dynamics.CRM.In` filters, so a query over a large table does not scan it.

Dataverse answers `In()` on a column from an index; the sandbox did a full scan per query, which made
benchmarks measure the sandbox. The index only narrows the candidates: the full filter still decides
each row, so results are exactly those of a scan.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from odata_query import ast

from devstack.dataverse_sandbox.filters import fold, parse_filter
from devstack.dataverse_sandbox.query import column_value
from devstack.dataverse_sandbox.schema import Entity
from devstack.dataverse_sandbox.store import Row, Store

__all__ = ["candidate_rows"]

_CRM = ("Microsoft", "Dynamics", "CRM")


def _in_call(node: ast._Node) -> tuple[str, list[str]] | None:
    """(column, values) of an `In()` on a plain column with string values, alone or ANDed with more."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return _in_call(node.left) or _in_call(node.right)
    if not (isinstance(node, ast.Call) and node.func.namespace == _CRM and node.func.name == "In"):
        return None
    params = {a.name.name: a.param for a in node.args if isinstance(a, ast.NamedParam)}
    prop, raw = params.get("PropertyName"), params.get("PropertyValues")
    if not (isinstance(prop, ast.String) and "/" not in prop.val and isinstance(raw, ast.List)):
        return None
    values = [v.val for v in raw.val if isinstance(v, ast.String)]
    return (prop.val, values) if len(values) == len(raw.val) else None


class _Indexes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.built: dict[tuple[str, str, bool], tuple[tuple[int, int], dict[str, list[Row]]]] = {}


_by_store: weakref.WeakKeyDictionary[Store, _Indexes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def candidate_rows(store: Store, entity: Entity, filter_text: str, accent_insensitive: bool) -> list[Row] | None:
    """The rows that can satisfy `filter_text` by its `In()` (None: no usable `In()`, scan everything)."""
    found = _in_call(parse_filter(filter_text))
    if found is None:
        return None
    column, values = found
    with _lock:
        indexes = _by_store.setdefault(store, _Indexes())
    table = store.table(entity)
    token = (store.generation, id(table))
    key = (entity.logical_name, column, accent_insensitive)
    with indexes.lock:
        cached = indexes.built.get(key)
        if cached is None or cached[0] != token:
            index: dict[str, list[Row]] = {}
            for row in table.values():
                value: Any = column_value(entity, row, column)
                if value is not None:
                    index.setdefault(fold(str(value), accent_insensitive), []).append(row)
            cached = (token, index)
            indexes.built[key] = cached
    index = cached[1]
    hits = {id(row) for value in values for row in index.get(fold(str(value), accent_insensitive), ())}
    if len(hits) * 4 > len(table):
        return None  # not selective: a plain scan is as cheap
    return [row for row in table.values() if id(row) in hits]  # the order a scan would give
