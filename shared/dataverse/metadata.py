"""Parsing Dataverse entity metadata (`EntityDefinitions`) into `EntityMetadata`, and its TTL cache."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from shared.dataverse.models import ColumnMetadata, EntityMetadata

__all__ = [
    "DISPLAY_NAME_SELECT",
    "MetadataCache",
    "build_entity_metadata",
    "display_label",
    "display_names",
    "option_choices",
    "option_labels",
    "with_display_names",
]

# `$select` of the base `Attributes` collection that reads each column's display name.
DISPLAY_NAME_SELECT = "LogicalName,DisplayName"

_REQUIRED_LEVELS = frozenset({"ApplicationRequired", "SystemRequired"})


def _label_texts(label: Any) -> list[str]:
    if not isinstance(label, Mapping):
        return []
    texts: list[str] = []
    user = label.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        texts.append(str(user["Label"]))
    for localized in label.get("LocalizedLabels") or []:
        if isinstance(localized, Mapping) and localized.get("Label"):
            texts.append(str(localized["Label"]))
    return texts


def option_labels(options: Iterable[Any]) -> dict[str, int]:
    """`{label.lower(): value}` over every localized label of every option."""
    result: dict[str, int] = {}
    for option in options:
        if not isinstance(option, Mapping) or option.get("Value") is None:
            continue
        for text in _label_texts(option.get("Label")):
            result.setdefault(text.strip().lower(), int(option["Value"]))
    return result


def display_label(label: Any) -> str | None:
    """The label Dynamics shows (the user's language, else the first localized one)."""
    texts = _label_texts(label)
    return texts[0] if texts else None


def option_choices(options: Iterable[Any]) -> tuple[tuple[int, str], ...]:
    """`(value, label)` of every option, in Dynamics' order (the label as shown, or the value)."""
    result: list[tuple[int, str]] = []
    for option in options:
        if not isinstance(option, Mapping) or option.get("Value") is None:
            continue
        value = int(option["Value"])
        result.append((value, display_label(option.get("Label")) or str(value)))
    return tuple(result)


def _option_set_items(attribute: Mapping[str, Any]) -> list[Any]:
    for key in ("OptionSet", "GlobalOptionSet"):
        option_set = attribute.get(key)
        if isinstance(option_set, Mapping) and option_set.get("Options"):
            return list(option_set["Options"])
    return []


def _boolean_items(attribute: Mapping[str, Any]) -> list[Any]:
    option_set = attribute.get("OptionSet")
    if not isinstance(option_set, Mapping):
        return []
    return [o for o in (option_set.get("TrueOption"), option_set.get("FalseOption")) if o is not None]


def _column_type(attribute: Mapping[str, Any]) -> str:
    type_name = attribute.get("AttributeTypeName")
    if isinstance(type_name, Mapping) and type_name.get("Value") == "MultiSelectPicklistType":
        return "MultiSelectPicklist"
    return str(attribute.get("AttributeType") or "Unknown")


def build_entity_metadata(
    entity: Mapping[str, Any],
    *,
    max_lengths: Mapping[str, int],
    choice_attributes: Iterable[Mapping[str, Any]],
    boolean_attributes: Iterable[Mapping[str, Any]],
) -> EntityMetadata:
    """Combine the entity definition (with `Attributes`) and the typed attribute casts into one object."""
    items: dict[str, list[Any]] = {}
    for attribute in choice_attributes:
        items[str(attribute["LogicalName"])] = _option_set_items(attribute)
    for attribute in boolean_attributes:
        items[str(attribute["LogicalName"])] = _boolean_items(attribute)
    columns: dict[str, ColumnMetadata] = {}
    for attribute in entity.get("Attributes") or []:
        name = str(attribute["LogicalName"])
        level = attribute.get("RequiredLevel")
        level_value = level.get("Value") if isinstance(level, Mapping) else level
        options = items.get(name, [])
        columns[name] = ColumnMetadata(
            logical_name=name,
            type=_column_type(attribute),
            max_length=max_lengths.get(name, attribute.get("MaxLength")),
            required=level_value in _REQUIRED_LEVELS,
            options=option_labels(options),
            valid_for_create=bool(attribute.get("IsValidForCreate", True)),
            valid_for_update=bool(attribute.get("IsValidForUpdate", True)),
            display_name=display_label(attribute.get("DisplayName")),
            required_level=str(level_value) if level_value else None,
            choices=option_choices(options),
        )
    return EntityMetadata(
        logical_name=str(entity["LogicalName"]),
        entity_set_name=str(entity["EntitySetName"]),
        primary_id=str(entity["PrimaryIdAttribute"]),
        primary_name=entity.get("PrimaryNameAttribute"),
        columns=columns,
        change_tracking=tracking if isinstance(tracking := entity.get("ChangeTrackingEnabled"), bool) else None,
    )


def display_names(attributes: Iterable[Any]) -> dict[str, str]:
    """`{logical name: display name}` from rows of the base `Attributes` collection."""
    names: dict[str, str] = {}
    for attribute in attributes:
        if isinstance(attribute, Mapping) and attribute.get("LogicalName"):
            label = display_label(attribute.get("DisplayName"))
            if label:
                names[str(attribute["LogicalName"])] = label
    return names


def with_display_names(metadata: EntityMetadata, names: Mapping[str, str]) -> EntityMetadata:
    """The same metadata with the display names filled in where they were missing."""
    columns = dict(metadata.columns)
    for name, column in metadata.columns.items():
        if not column.display_name and name in names:
            columns[name] = dataclasses.replace(column, display_name=names[name])
    return dataclasses.replace(metadata, columns=columns)


class MetadataCache:
    """Entity metadata per logical name for one environment, each entry kept `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, EntityMetadata]] = {}

    def get(self, logical_name: str) -> EntityMetadata | None:
        with self._lock:
            entry = self._entries.get(logical_name)
            if entry is None or entry[0] <= time.monotonic():
                return None
            return entry[1]

    def put(self, metadata: EntityMetadata) -> None:
        with self._lock:
            self._entries[metadata.logical_name] = (time.monotonic() + self.ttl, metadata)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
