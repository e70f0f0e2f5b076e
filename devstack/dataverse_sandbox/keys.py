"""Parsing of key segments `(guid)` / `(name='O''Brien',n=1)` and of `@odata.bind` / `@odata.id` paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from devstack.dataverse_sandbox.errors import DataverseError

__all__ = ["API_PREFIX", "KeySpec", "parse_entity_ref", "parse_key", "split_top_level", "split_top_segments"]

API_PREFIX = "/api/data/v9.2/"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class KeySpec:
    """Either a primary key (`record_id`) or alternate-key column values (`alternate`)."""

    record_id: str | None = None
    alternate: tuple[tuple[str, object], ...] = ()


def _parse_value(raw: str) -> object:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if _GUID.match(raw):
        return raw.lower()
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise DataverseError.bad_request(f"Invalid key value: {raw}") from None


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    in_quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if in_quote and i + 1 < len(text) and text[i + 1] == "'":
                buf.append("''")
                i += 2
                continue
            in_quote = not in_quote
        if ch == sep and not in_quote:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def parse_key(inner: str) -> KeySpec:
    """Parse the text between the parentheses of `contacts(...)`."""
    inner = inner.strip()
    if _GUID.match(inner):
        return KeySpec(record_id=inner.lower())
    pairs: list[tuple[str, object]] = []
    for part in _split_outside_quotes(inner, ","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise DataverseError.bad_request(f"Bad Request - Error in query syntax: key '{inner}'")
        pairs.append((name.strip(), _parse_value(value)))
    return KeySpec(alternate=tuple(pairs))


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and single-quoted literals."""
    parts: list[str] = []
    buf: list[str] = []
    depth = 0
    in_quote = False
    for ch in text:
        if ch == "'":
            in_quote = not in_quote
        elif not in_quote and ch == "(":
            depth += 1
        elif not in_quote and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not in_quote:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    tail = "".join(buf).strip()
    if tail:
        parts.append(tail)
    return parts


def split_top_segments(path: str) -> list[str]:
    """Split a resource path on '/' outside quoted key values and parentheses."""
    return [s for s in split_top_level(path, "/") if s != ""]


def parse_entity_ref(ref: str) -> tuple[str, KeySpec]:
    """`/accounts(guid)`, `accounts(guid)`, an absolute URL, or `/systemusers(azureactivedirectoryobjectid=x)`."""
    text = ref.strip()
    idx = text.find(API_PREFIX)
    if idx >= 0:
        text = text[idx + len(API_PREFIX):]
    text = text.lstrip("/")
    open_at = text.find("(")
    if open_at <= 0 or not text.endswith(")"):
        raise DataverseError.bad_request(f"Invalid entity reference '{ref}'.", "0x80060888")
    entity_set = text[:open_at]
    inner = unquote(text[open_at + 1:-1])
    return entity_set, parse_key(inner)
