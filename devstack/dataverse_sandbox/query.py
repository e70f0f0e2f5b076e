"""Query options on entity sets: `$select`, `$filter`, `$orderby`, `$top`, `$count`, `$expand` and
server-driven paging (`Prefer: odata.maxpagesize` → `@odata.nextLink` with a `$skiptoken`)."""

from __future__ import annotations

import re
from typing import Any

from odata_query import ast

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.filters import Predicate, compile_filter, fold
from devstack.dataverse_sandbox.keys import split_top_level
from devstack.dataverse_sandbox.schema import ENTITIES, Entity, Nav
from devstack.dataverse_sandbox.store import Ref, Row, Store

__all__ = [
    "SUPPORTED_OPTIONS",
    "Expand",
    "decode_skiptoken",
    "encode_skiptoken",
    "order_rows",
    "parse_expand",
    "parse_orderby",
    "parse_select",
    "record_predicate",
    "render_row",
    "split_top_level",
]

SUPPORTED_OPTIONS = frozenset({"$select", "$filter", "$orderby", "$top", "$count", "$expand", "$skiptoken"})
Expand = dict[str, dict[str, Any]]


def parse_expand(text: str | None) -> Expand:
    """`Attributes($select=a,b;$filter=x),OptionSet` → {"Attributes": {"$select": [...], "$filter": "x"}}."""
    out: Expand = {}
    for item in split_top_level(text or "", ","):
        name, _, rest = item.partition("(")
        options: dict[str, Any] = {}
        if rest:
            if not rest.endswith(")"):
                raise DataverseError.bad_request(f"Invalid $expand: {item}", errors.PROPERTY_NOT_FOUND)
            for opt in split_top_level(rest[:-1], ";"):
                key, _, value = opt.partition("=")
                key = key.strip()
                if key == "$select":
                    options[key] = [s.strip() for s in value.split(",") if s.strip()]
                elif key == "$expand":
                    options[key] = parse_expand(value)
                else:
                    options[key] = value
        out[name.strip()] = options
    return out


def parse_select(entity: Entity, text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        _check_column(entity, name)
    return names


def _check_column(entity: Entity, name: str) -> None:
    attr = entity.attributes.get(name)
    if (attr is not None and not attr.is_lookup) or entity.lookup_by_value_name(name) is not None:
        return
    raise DataverseError.unknown_property(name, entity.type_name)


def parse_orderby(entity: Entity, text: str | None) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for part in split_top_level(text or "", ","):
        bits = part.split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise DataverseError.bad_request(f"Invalid $orderby: {part}", errors.PROPERTY_NOT_FOUND)
        _check_column(entity, bits[0])
        keys.append((bits[0], len(bits) == 2 and bits[1].lower() == "desc"))
    return keys


def column_value(entity: Entity, row: Row, name: str) -> Any:
    lookup = entity.lookup_by_value_name(name)
    if lookup is not None:
        ref = row.get(lookup.logical_name)
        return ref.id if isinstance(ref, Ref) else None
    return row.get(name)


def record_predicate(store: Store, entity: Entity, text: str, accent_insensitive: bool) -> Predicate:
    """Compile `$filter` against `entity`, following lookup paths such as `parentcustomerid_account/name`."""

    def resolve(row: Row | None, node: ast._Node) -> Any:
        path = _path(node)
        ent = entity
        current: Row | None = row
        for hop in path[:-1]:
            nav = ent.navs.get(hop)
            if nav is None:
                raise DataverseError.unknown_property(hop, ent.type_name)
            target = ENTITIES[nav.targets[0]]
            if current is not None:
                followed = _follow(store, nav, current)
                if followed is None:
                    return None
                target, current = followed
            ent = target
        _check_column(ent, path[-1])
        if current is None:
            return None
        return column_value(ent, current, path[-1])

    return compile_filter(text, resolve, accent_insensitive=accent_insensitive)


def _path(node: ast._Node) -> list[str]:
    if isinstance(node, ast.Identifier):
        if node.namespace:
            raise DataverseError.bad_request(f"Unknown property {'.'.join((*node.namespace, node.name))}",
                                         errors.PROPERTY_NOT_FOUND)
        return [node.name]
    if isinstance(node, ast.Attribute):
        return [*_path(node.owner), node.attr]
    raise DataverseError.bad_request("Invalid property path in $filter.", errors.PROPERTY_NOT_FOUND)


def _sort_key(value: Any, accent_insensitive: bool) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, fold(value, accent_insensitive))
    return (1, value)


def order_rows(entity: Entity, rows: list[Row], keys: list[tuple[str, bool]], accent_insensitive: bool) -> list[Row]:
    """Nulls first ascending (SQL Server semantics); ties broken by primary key for stable paging."""
    ordered = sorted(rows, key=lambda r: str(r[entity.primary_id]))
    for name, desc in reversed(keys):

        def key(r: Row, n: str = name) -> tuple[int, Any]:
            return _sort_key(column_value(entity, r, n), accent_insensitive)

        ordered.sort(key=key, reverse=desc)
    return ordered


_SKIPTOKEN = re.compile(r'offset="(\d+)"')


def encode_skiptoken(page: int, offset: int) -> str:
    return f'<cookie pagenumber="{page}" offset="{offset}" istracking="False" />'


def decode_skiptoken(token: str) -> tuple[int, int]:
    match = _SKIPTOKEN.search(token)
    page = re.search(r'pagenumber="(\d+)"', token)
    if match is None or page is None:
        raise DataverseError.bad_request("Invalid $skiptoken.", errors.PROPERTY_NOT_FOUND)
    return int(page.group(1)), int(match.group(1))


_ANNOTATION_ALL = ("*", "OData.Community.Display.V1.FormattedValue", "Microsoft.Dynamics.CRM.*")


def render_row(store: Store, entity: Entity, row: Row, select: list[str] | None, expand: Expand | None = None,
               annotations: str | None = None) -> dict[str, Any]:
    """A row as the Web API returns it: lookups as `_x_value`, `@odata.etag`, optional annotations."""
    out: dict[str, Any] = {"@odata.etag": f'W/"{row.get("versionnumber")}"'}
    names = select if select else [
        (f"_{a.logical_name}_value" if a.is_lookup else a.logical_name) for a in entity.attributes.values()
    ]
    for name in names:
        value = column_value(entity, row, name)
        out[name] = value
        if annotations and value is not None:
            _annotate(store, entity, row, name, value, out, annotations)
    out[entity.primary_id] = row[entity.primary_id]
    for nav_name, options in (expand or {}).items():
        out[nav_name] = _expand(store, entity, row, nav_name, options)
    return out


def _annotate(store: Store, entity: Entity, row: Row, name: str, value: Any, out: dict[str, Any],
              annotations: str) -> None:
    want = annotations.strip('"')
    formatted = want in ("*", "OData.Community.Display.V1.FormattedValue")
    crm = want in ("*", "Microsoft.Dynamics.CRM.*", "Microsoft.Dynamics.CRM.lookuplogicalname")
    lookup = entity.lookup_by_value_name(name)
    if lookup is not None:
        ref = row.get(lookup.logical_name)
        if not isinstance(ref, Ref):
            return
        if crm:
            out[f"{name}@Microsoft.Dynamics.CRM.lookuplogicalname"] = ref.entity
            nav = next((n.name for n in entity.navs.values()
                        if n.attribute == lookup.logical_name and ref.entity in n.targets), lookup.logical_name)
            out[f"{name}@Microsoft.Dynamics.CRM.associatednavigationproperty"] = nav
        if formatted:
            target = ENTITIES[ref.entity]
            trow = store.find(target, ref.id)
            out[f"{name}@OData.Community.Display.V1.FormattedValue"] = trow.get(target.primary_name) if trow else None
        return
    attr = entity.attributes.get(name)
    if attr is None or not formatted:
        return
    if attr.options:
        opt = attr.option(value)
        if opt is not None:
            out[f"{name}@OData.Community.Display.V1.FormattedValue"] = opt.label
    elif attr.type == "Boolean":
        out[f"{name}@OData.Community.Display.V1.FormattedValue"] = "Yes" if value else "No"


def _follow(store: Store, nav: Nav, row: Row) -> tuple[Entity, Row] | None:
    """The record a single-valued lookup of `row` points to (entity and row), if it exists."""
    ref = row.get(nav.attribute)
    if not isinstance(ref, Ref) or ref.entity not in nav.targets:
        return None
    target = ENTITIES[ref.entity]
    found = store.find(target, ref.id)
    return None if found is None else (target, found)


def _expand(store: Store, entity: Entity, row: Row, nav_name: str, options: dict[str, Any]) -> Any:
    nested = sorted(set(options) - {"$select"})
    if nested:
        raise DataverseError.bad_request(
            f"The option {nested[0]} inside $expand={nav_name}(...) is not supported by the Dataverse sandbox: "
            "only $select is implemented there.", errors.NOT_IMPLEMENTED)
    if nav_name in entity.navs:
        followed = _follow(store, entity.navs[nav_name], row)
        if followed is None:
            return None
        target, trow = followed
        return render_row(store, target, trow, parse_select(target, ",".join(options.get("$select", []))))
    if nav_name in entity.collections:
        coll = entity.collections[nav_name]
        child = ENTITIES[coll.child_entity]
        select = parse_select(child, ",".join(options.get("$select", [])))
        kids = store.referencing(child, coll.child_attribute, row[entity.primary_id])
        return [render_row(store, child, k, select) for k in order_rows(child, kids, [], False)]
    raise DataverseError.unknown_property(nav_name, entity.type_name)
