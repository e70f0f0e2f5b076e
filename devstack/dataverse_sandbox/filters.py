"""`$filter` support: Dataverse's `Microsoft.Dynamics.CRM.In(...)` JSON-array form is rewritten into the
OData list syntax, the result is parsed by the `odata-query` grammar, and the AST is compiled into a
predicate over rows. String comparison follows Dataverse's default collation (case-insensitive and, by
default, accent-insensitive: Latin1_General_CI_AI).
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.store import parse_datetime

__all__ = ["Predicate", "Resolver", "compile_filter", "fold", "parse_filter", "translate_crm_arrays"]

Resolver = Callable[[Any, ast._Node], Any]
"""Reads the value a property node (Identifier or Attribute path) has on a row; raises for unknown names."""
Predicate = Callable[[Any], bool]

_lexer = ODataLexer()
_parser = ODataParser()


def _bad(message: str) -> DataverseError:
    return DataverseError.bad_request(message, errors.PROPERTY_NOT_FOUND)


def translate_crm_arrays(text: str) -> str:
    """Rewrite JSON array arguments (`PropertyValues=["a","b"]`) into OData lists (`('a','b')`).

    Walks the filter as tokens: single-quoted OData strings are copied untouched (so `[` inside a
    literal is never rewritten); each `[` outside a literal starts a JSON array decoded with the JSON
    decoder (escaped quotes and unicode escapes included), whose items become OData literals.
    """
    out: list[str] = []
    i, n = 0, len(text)
    decoder = json.JSONDecoder()
    while i < n:
        ch = text[i]
        if ch == "'":
            j = i + 1
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if ch == "[":
            items, i = _read_array(text, i, decoder)
            if not items:
                raise _bad("PropertyValues must contain at least one value.")
            out.append("(" + ",".join(_literal(v) for v in items) + ")")
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _read_array(text: str, start: int, decoder: json.JSONDecoder) -> tuple[list[Any], int]:
    """Read `[...]` at `start`: JSON items, or OData single-quoted strings as some clients send."""
    try:
        value, end = decoder.raw_decode(text, start)
        if isinstance(value, list):
            return value, end
    except ValueError:
        pass
    items: list[Any] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " ,":
            i += 1
        elif ch == "]":
            return items, i + 1
        elif ch == "'":
            j = i + 1
            buf: list[str] = []
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            items.append("".join(buf))
            i = j + 1
        elif ch == '"':
            value, i = decoder.raw_decode(text, i)
            items.append(value)
        else:
            j = i
            while j < n and text[j] not in ",]":
                j += 1
            raw = text[i:j].strip()
            try:
                items.append(json.loads(raw))
            except ValueError:
                items.append(raw)
            i = j
    raise _bad("Unterminated array in $filter.")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@functools.lru_cache(maxsize=1024)
def parse_filter(text: str) -> ast._Node:
    """Parse once per distinct filter text (the AST is immutable, so cached trees are shared safely)."""
    translated = translate_crm_arrays(text)
    try:
        node: ast._Node = _parser.parse(_lexer.tokenize(translated))
    except ODataException as exc:
        raise DataverseError.bad_request(f"The query specified in the URI is not valid. {exc}",
                                         errors.PROPERTY_NOT_FOUND) from None
    if node is None:
        raise _bad("The query specified in the URI is not valid. Empty $filter.")
    return node


@functools.lru_cache(maxsize=262_144)
def fold(value: str, accent_insensitive: bool) -> str:
    folded = value.casefold()
    if accent_insensitive:
        folded = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return folded


def compile_filter(text: str, resolve: Resolver, *, accent_insensitive: bool) -> Predicate:
    """Parse `text` and return a row predicate; name errors surface at compile time via a dry probe."""
    node = parse_filter(text)
    compiler = _Compiler(resolve, accent_insensitive)
    return compiler.boolean(node)


class _Compiler:
    def __init__(self, resolve: Resolver, accent_insensitive: bool) -> None:
        self.resolve = resolve
        self.ai = accent_insensitive

    # -- values
    def value(self, node: ast._Node) -> Callable[[Any], Any]:
        if isinstance(node, ast.Identifier | ast.Attribute):
            self.resolve(None, node)  # validates the name once, up front
            return lambda row: self.resolve(row, node)
        if isinstance(node, ast.Null):
            return lambda row: None
        if isinstance(node, ast.String):
            text = node.val
            return lambda row: text
        if isinstance(node, ast.Integer | ast.Float | ast.Boolean):
            lit = node.py_val
            return lambda row: lit
        if isinstance(node, ast.GUID):
            guid = node.val.lower()
            return lambda row: guid
        if isinstance(node, ast.DateTime):
            moment = parse_datetime(node.val)
            return lambda row: moment
        if isinstance(node, ast.Date):
            day = date.fromisoformat(node.val)
            return lambda row: day
        if isinstance(node, ast.List):
            items = [self.value(v) for v in node.val]
            return lambda row: [f(row) for f in items]
        if isinstance(node, ast.Call) and not node.func.namespace:
            return self.call_value(node)
        raise _bad(f"The query node {type(node).__name__} is not supported in $filter.")

    def call_value(self, node: ast.Call) -> Callable[[Any], Any]:
        name = node.func.name.lower()
        if name in ("tolower", "toupper", "trim") and len(node.args) == 1:
            inner = self.value(node.args[0])
            ops: dict[str, Callable[[str], str]] = {"tolower": str.lower, "toupper": str.upper,
                                                    "trim": str.strip}
            op = ops[name]
            return lambda row: None if (v := inner(row)) is None else op(str(v))
        if name in ("contains", "startswith", "endswith"):
            pred = self.boolean(node)
            return lambda row: pred(row)
        raise _bad(f"The function '{node.func.name}' is not supported in $filter.")

    # -- predicates
    def boolean(self, node: ast._Node) -> Predicate:
        if isinstance(node, ast.BoolOp):
            left, right = self.boolean(node.left), self.boolean(node.right)
            if isinstance(node.op, ast.And):
                return lambda row: left(row) and right(row)
            return lambda row: left(row) or right(row)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.boolean(node.operand)
            return lambda row: not inner(row)
        if isinstance(node, ast.Compare):
            if isinstance(node.comparator, ast.In):
                raise _bad("The 'in' operator is not supported; use Microsoft.Dynamics.CRM.In.")
            left, right = self.value(node.left), self.value(node.right)
            cmp = type(node.comparator)
            return lambda row: self.compare(cmp, left(row), right(row))
        if isinstance(node, ast.Call):
            return self.call_predicate(node)
        if isinstance(node, ast.Identifier | ast.Attribute):
            getter = self.value(node)
            return lambda row: getter(row) is True
        raise _bad(f"The query node {type(node).__name__} is not supported in $filter.")

    def call_predicate(self, node: ast.Call) -> Predicate:
        ns = node.func.namespace
        name = node.func.name
        if ns == ("Microsoft", "Dynamics", "CRM"):
            return self.crm_function(name, node.args)
        if ns:
            raise _bad(f"Unknown function '{'.'.join((*ns, name))}'.")
        lname = name.lower()
        if lname in ("contains", "startswith", "endswith") and len(node.args) == 2:
            hay, needle = self.value(node.args[0]), self.value(node.args[1])

            def text_match(row: Any) -> bool:
                h, n = hay(row), needle(row)
                if h is None or n is None:
                    return False
                fh, fn = fold(str(h), self.ai), fold(str(n), self.ai)
                if lname == "contains":
                    return fn in fh
                return fh.startswith(fn) if lname == "startswith" else fh.endswith(fn)

            return text_match
        raise _bad(f"The function '{name}' is not supported in $filter.")

    def crm_function(self, name: str, args: list[ast._Node]) -> Predicate:
        params: dict[str, ast._Node] = {}
        for arg in args:
            if not isinstance(arg, ast.NamedParam):
                raise _bad(f"Microsoft.Dynamics.CRM.{name} takes named parameters.")
            params[arg.name.name] = arg.param
        prop = params.get("PropertyName")
        if not isinstance(prop, ast.String):
            raise _bad(f"Microsoft.Dynamics.CRM.{name} requires PropertyName.")
        getter = self.value(ast.Identifier(prop.val))
        if name in ("In", "NotIn"):
            raw = params.get("PropertyValues")
            nodes: list[ast._Node]
            if isinstance(raw, ast.List):
                nodes = list(raw.val)
            elif isinstance(raw, ast._Literal):
                nodes = [raw]
            else:
                raise _bad(f"Microsoft.Dynamics.CRM.{name} requires PropertyValues.")
            candidates = [self.value(v) for v in nodes]
            negate = name == "NotIn"
            strings = [v.val for v in nodes if isinstance(v, ast.String)]
            if nodes and len(strings) == len(nodes):
                # Constant strings: one folded set lookup per row instead of a comparison per value.
                wanted = {fold(str(v), self.ai) for v in strings}

                def member_of_set(row: Any) -> bool:
                    v = getter(row)
                    if isinstance(v, str):
                        hit = fold(v, self.ai) in wanted
                    else:
                        hit = any(self.compare(ast.Eq, v, c(row)) for c in candidates)
                    return (not hit) if negate else hit

                return member_of_set

            def member(row: Any) -> bool:
                v = getter(row)
                hit = any(self.compare(ast.Eq, v, c(row)) for c in candidates)
                return (not hit) if negate else hit

            return member
        if name in ("Null", "NotNull"):
            want_null = name == "Null"
            return lambda row: (getter(row) is None) == want_null
        raise _bad(f"The function 'Microsoft.Dynamics.CRM.{name}' is not supported by the sandbox.")

    def compare(self, cmp: type[ast._Comparator], a: Any, b: Any) -> bool:
        if a is None or b is None:
            if cmp is ast.Eq:
                return a is None and b is None
            if cmp is ast.NotEq:
                return not (a is None and b is None)
            return False
        a, b = self._comparable(a, b)
        try:
            if cmp is ast.Eq:
                return bool(a == b)
            if cmp is ast.NotEq:
                return bool(a != b)
            if cmp is ast.Lt:
                return bool(a < b)
            if cmp is ast.LtE:
                return bool(a <= b)
            if cmp is ast.Gt:
                return bool(a > b)
            if cmp is ast.GtE:
                return bool(a >= b)
        except TypeError:
            raise _bad(f"Cannot compare {type(a).__name__} with {type(b).__name__}.") from None
        raise _bad("Unsupported comparison operator.")

    def _comparable(self, a: Any, b: Any) -> tuple[Any, Any]:
        if isinstance(a, datetime) or isinstance(b, datetime):
            return _to_dt(a), _to_dt(b)
        if isinstance(a, date) or isinstance(b, date):
            return _to_date(a), _to_date(b)
        if isinstance(a, bool) or isinstance(b, bool):
            return a, b
        if isinstance(a, str) and isinstance(b, str):
            return fold(a, self.ai), fold(b, self.ai)
        if isinstance(a, str) and isinstance(b, int | float):
            raise _bad(f"A binary operator with incompatible types was detected: '{a}' and {b}.")
        return a, b


def _to_dt(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    if isinstance(v, date):
        return parse_datetime(v.isoformat())
    try:
        return parse_datetime(str(v))
    except ValueError:
        raise _bad(f"Cannot convert '{v}' to a date and time.") from None


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        raise _bad(f"Cannot convert '{v}' to a date.") from None
