"""Answer a `$filter` from column indexes when it names the values it wants, so a query costs the same
however large the table is (as Dataverse answers from its SQL indexes).

A filter is indexable when it is `Microsoft.Dynamics.CRM.In(PropertyName='col',PropertyValues=[...])` or
`col eq 'text'` (or a GUID) on a plain column, or an `and` with one such side, or an `or` of indexable
sides. The index only narrows the candidates: the full filter still decides each row, and the caller sorts
what is left (`order_rows`, by primary key first), so results are exactly those of a scan, in the same
order. Indexes live in the store (`Store.indexes`) and follow every insert, update, delete and rollback.
"""

from __future__ import annotations

from collections.abc import Callable

from odata_query import ast

from devstack.dataverse_sandbox.filters import fold, parse_filter
from devstack.dataverse_sandbox.query import column_value
from devstack.dataverse_sandbox.schema import Entity
from devstack.dataverse_sandbox.store import Row, Store

__all__ = ["candidate_rows", "index_plan"]

_CRM = ("Microsoft", "Dynamics", "CRM")
_TEXT_TYPES = frozenset({"String", "Memo", "Uniqueidentifier", "EntityName"})
Lookups = list[tuple[str, list[str]]]
"""(column, values): rows whose column equals one of the values, unioned over the list."""


def _column(node: ast._Node) -> str | None:
    return node.name if isinstance(node, ast.Identifier) and not node.namespace else None


def _text(node: ast._Node) -> str | None:
    if isinstance(node, ast.String):
        return node.val
    if isinstance(node, ast.GUID):
        return node.val.lower()
    return None


def _in_call(node: ast.Call) -> Lookups | None:
    if node.func.namespace != _CRM or node.func.name != "In":
        return None
    params = {a.name.name: a.param for a in node.args if isinstance(a, ast.NamedParam)}
    prop, raw = params.get("PropertyName"), params.get("PropertyValues")
    if not (isinstance(prop, ast.String) and "/" not in prop.val and isinstance(raw, ast.List)):
        return None
    values = [v.val for v in raw.val if isinstance(v, ast.String)]
    return [(prop.val, values)] if len(values) == len(raw.val) else None


def _equality(node: ast.Compare) -> Lookups | None:
    if not isinstance(node.comparator, ast.Eq):
        return None
    for left, right in ((node.left, node.right), (node.right, node.left)):
        column, value = _column(left), _text(right)
        if column is not None and value is not None:
            return [(column, [value])]
    return None


def index_plan(node: ast._Node) -> Lookups | None:
    """Index lookups whose union holds every row `node` can match (None: not answerable from indexes)."""
    if isinstance(node, ast.BoolOp):
        left, right = index_plan(node.left), index_plan(node.right)
        if isinstance(node.op, ast.And):
            sides = [side for side in (left, right) if side is not None]
            return min(sides, key=lambda s: sum(len(v) for _, v in s)) if sides else None
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Call):
        return _in_call(node)
    if isinstance(node, ast.Compare):
        return _equality(node)
    return None


def _indexable(entity: Entity, column: str) -> bool:
    """Only text-valued columns: a row whose value is not text never equals a text literal."""
    if entity.lookup_by_value_name(column) is not None:
        return True
    attr = entity.attributes.get(column)
    return attr is not None and not attr.is_lookup and attr.type in _TEXT_TYPES


def _folded(entity: Entity, column: str, accent_insensitive: bool) -> Callable[[Row], str | None]:
    def key(row: Row) -> str | None:
        value = column_value(entity, row, column)
        return fold(value, accent_insensitive) if isinstance(value, str) else None

    return key


def candidate_rows(store: Store, entity: Entity, filter_text: str, accent_insensitive: bool) -> list[Row] | None:
    """The rows that can satisfy `filter_text`, from indexes (None: not indexable, scan everything).

    Costs one index probe per value named, plus the rows found: nothing grows with the table.
    """
    plan = index_plan(parse_filter(filter_text))
    if plan is None or not all(_indexable(entity, column) for column, _ in plan):
        return None
    table = store.table(entity)
    found: dict[str, None] = {}
    for column, values in plan:
        index = store.indexes.get(entity.logical_name, ("filter", column, accent_insensitive),
                                  _folded(entity, column, accent_insensitive), table)
        for value in values:
            found.update(dict.fromkeys(index.ids(fold(value, accent_insensitive))))
    return [table[rid] for rid in found]
