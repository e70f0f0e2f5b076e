"""HTML built from Python, escaped by construction: text is always escaped; only `Html` (what `el` and
`join` return) goes in as markup. No template language, so a page is plain Python a reviewer can follow."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

__all__ = ["Html", "el", "esc", "join"]


class Html(str):
    """Markup that is already safe (built by `el`/`join`/`esc`)."""


def esc(value: Any) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(part) for part in parts if part is not None))


_VOID = frozenset({"input", "meta", "link", "br", "hr", "img"})


def _attribute(name: str, value: Any) -> str:
    name = name.rstrip("_").replace("_", "-")
    if value is True:
        return f" {name}"
    return f' {name}="{esc(value)}"'


def el(tag: str, *children: Any, **attrs: Any) -> Html:
    """`<tag attrs>children</tag>`: `class_="x"` → class, `data_row="y"` → data-row, True → a bare attribute,
    None/False → left out; children are escaped unless they are `Html`, None children are dropped."""
    rendered = "".join(_attribute(k, v) for k, v in attrs.items() if v is not None and v is not False)
    if tag in _VOID:
        return Html(f"<{tag}{rendered}>")
    return Html(f"<{tag}{rendered}>{join(children)}</{tag}>")
