"""The export mapping engine. Pure: (record, mapping, current Dynamics values, metadata) → body and plan.

The same code builds the writes worker's Dataverse bodies and the admin's export preview, so what the
preview shows is what an export writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mapping_store.models import EntityExportMapping, UserMapping, WritePolicy
from shared.dataverse.models import ColumnMetadata, EntityMetadata

__all__ = [
    "ExportValueError",
    "OwnerDecision",
    "RecordPlan",
    "Skipped",
    "Write",
    "build_record",
    "convert_value",
    "is_engaged",
    "resolve_export_values",
    "resolve_owner",
]

_TEXT_TYPES = {"String", "Memo"}
_INT_TYPES = {"Integer", "BigInt"}
_FLOAT_TYPES = {"Decimal", "Double", "Money"}
_CHOICE_TYPES = {"Picklist", "State", "Status"}
_LOOKUP_TYPES = {"Lookup", "Customer", "Owner"}
_TRUE = {"true", "yes", "y", "1", "si", "sí", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


class ExportValueError(ValueError):
    """An export value the caller chose is not allowed; `field` is its path in the request."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Write:
    column: str
    value: Any
    source: str  # field:<genesy field> | fixed | export:<name> | engagement | owner | parent


@dataclass(frozen=True)
class Skipped:
    column: str
    source: str
    reason: str


@dataclass
class RecordPlan:
    """What one record's write will do: the Dataverse body and why each mapped column is in it or not."""

    creating: bool
    body: dict[str, Any] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": "create" if self.creating else "update",
            "body": self.body,
            "writes": [w.__dict__ for w in self.writes],
            "skipped": [s.__dict__ for s in self.skipped],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class OwnerDecision:
    owner_id: str | None
    source: str  # ownerId | users | default | none
    note: str | None = None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def resolve_export_values(mapping: EntityExportMapping, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The value of every export field for this call: chosen, else default; checked against options."""
    out: dict[str, Any] = {}
    for export_field in mapping.export_fields:
        value = chosen.get(export_field.name)
        where = f"exportValues.{export_field.name}"
        if _empty(value):
            value = export_field.default
        if _empty(value):
            if export_field.required:
                raise ExportValueError(where, "a value is required (the field has no default)")
            continue
        if export_field.options and value not in export_field.options:
            allowed = ", ".join(repr(o) for o in export_field.options)
            raise ExportValueError(where, f"{value!r} is not one of the allowed options ({allowed})")
        out[export_field.name] = value
    return out


def is_engaged(record: Mapping[str, Any], campaign_activity_seen: bool = False) -> bool:
    """A record took part in a campaign when Genesy lists campaigns for it or campaign activity was seen."""
    campaigns = record.get("campaigns")
    if isinstance(campaigns, list):
        return bool(campaigns) or campaign_activity_seen
    return not _empty(campaigns) or campaign_activity_seen


def resolve_owner(
    record: Mapping[str, Any],
    users: UserMapping,
    enabled_user_ids: Collection[str],
    *,
    creating: bool,
) -> OwnerDecision:
    """Owner on export: Genesy's `ownerId` (one of our /users), else the user mapping, else the default.

    A disabled or unknown user falls through to the next source. An update only changes the owner
    when Genesy chose one explicitly.
    """
    enabled = {u.lower() for u in enabled_user_ids}
    notes: list[str] = []
    owner_id = record.get("ownerId")
    if not _empty(owner_id):
        candidate = str(owner_id).strip().lower()
        if candidate in enabled:
            return OwnerDecision(candidate, "ownerId")
        by_genesy = {u.genesy_user.lower(): u.systemuser_id for u in users.users}
        mapped = by_genesy.get(candidate)
        if mapped and mapped in enabled:
            return OwnerDecision(mapped, "users")
        notes.append(f"ownerId {owner_id!r} is not an enabled Dynamics user")
    elif not creating:
        return OwnerDecision(None, "none")
    exporter = record.get(users.owner_field)
    if not _empty(exporter):
        mapped = {u.genesy_user.lower(): u.systemuser_id for u in users.users}.get(str(exporter).strip().lower())
        if mapped and mapped in enabled:
            return OwnerDecision(mapped, "users", "; ".join(notes) or None)
        if mapped:
            notes.append(f"mapped user {mapped} is disabled")
    if creating or notes:
        default = users.default_owner_id
        if default and default in enabled:
            return OwnerDecision(default, "default", "; ".join(notes) or None)
        if default:
            notes.append(f"default owner {default} is disabled")
    return OwnerDecision(None, "none", "; ".join(notes) or None)


def _parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("Z", "+00:00")
    value = datetime.fromisoformat(cleaned)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def convert_value(value: Any, column: ColumnMetadata | None) -> Any:
    """Convert a Genesy value to what the column's Dataverse type expects; ValueError says why not."""
    if column is None:
        return value
    kind = column.type
    if kind in _TEXT_TYPES:
        if isinstance(value, list | dict):
            raise ValueError("a list or object cannot go into a text column")
        return (
            value
            if isinstance(value, str)
            else ("true" if value is True else "false" if value is False else str(value))
        )
    if kind in _INT_TYPES:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip().replace(",", "").replace("_", "")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise ValueError(f"{value!r} is not a whole number")
    if kind in _FLOAT_TYPES:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().casefold()
        if column.options and text in column.options:
            return bool(column.options[text])
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not Yes/No")
    if kind in _CHOICE_TYPES or kind == "MultiSelectPicklist":
        items = value if isinstance(value, list) else [value]
        if kind == "MultiSelectPicklist" and isinstance(value, str) and ";" in value:
            items = [part for part in value.split(";") if part.strip()]
        codes: list[int] = []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool):
                if column.options and item not in column.options.values():
                    raise ValueError(f"{item!r} is not a value of choice column {column.logical_name}")
                codes.append(item)
                continue
            text = str(item).strip().casefold()
            if text in column.options:
                codes.append(column.options[text])
            elif re.fullmatch(r"\d+", text) and int(text) in column.options.values():
                codes.append(int(text))
            else:
                labels = ", ".join(sorted(column.options)) or "none known"
                raise ValueError(f"{item!r} is not a label of choice column {column.logical_name} ({labels})")
        if kind == "MultiSelectPicklist":
            return ",".join(str(c) for c in codes)
        if len(codes) != 1:
            raise ValueError(f"{value!r} is not a single choice")
        return codes[0]
    if kind == "DateTime":
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, date):
            return value.isoformat()
        try:
            text = str(value).strip()
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return text
            return _parse_datetime(text).isoformat().replace("+00:00", "Z")
        except ValueError:
            raise ValueError(f"{value!r} is not a date") from None
    if kind in _LOOKUP_TYPES:
        raise ValueError(f"{column.logical_name} is a lookup; map it through owners or associations")
    return value


def _policy_allows(policy: WritePolicy, column: str, existing: Mapping[str, Any] | None) -> str | None:
    """None when the write may happen, else why not."""
    if existing is None:
        return None
    if policy is WritePolicy.ON_CREATE:
        return "on_create: the record already exists"
    if policy is WritePolicy.IF_EMPTY and not _empty(existing.get(column)):
        return "if_empty: Dynamics already has a value"
    return None


def build_record(
    mapping: EntityExportMapping,
    record: Mapping[str, Any],
    *,
    export_values: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    metadata: EntityMetadata | None = None,
    engaged: bool = False,
    owner: OwnerDecision | None = None,
) -> RecordPlan:
    """Build one record's Dataverse body.

    `existing` is the record's current Dynamics values (None when creating). Empty Genesy values never
    blank a Dynamics column. A value that cannot be converted skips that column with a warning; the
    record is still written.
    """
    plan = RecordPlan(creating=existing is None)
    columns = metadata.columns if metadata else {}
    candidates: list[tuple[str, Any, str, WritePolicy]] = []
    for item in mapping.fields:
        candidates.append((item.column, record.get(item.source), f"field:{item.source}", item.policy))
    for fixed in mapping.fixed:
        candidates.append((fixed.column, fixed.value, "fixed", fixed.policy))
    for export_field in mapping.export_fields:
        candidates.append(
            (
                export_field.column,
                export_values.get(export_field.name),
                f"export:{export_field.name}",
                export_field.policy,
            )
        )
    for engagement in mapping.engagement:
        if engaged:
            candidates.append((engagement.column, engagement.value, "engagement", engagement.policy))
        else:
            plan.skipped.append(Skipped(engagement.column, "engagement", "the record took part in no campaign"))
    for column, value, source, policy in candidates:
        if _empty(value):
            plan.skipped.append(Skipped(column, source, "no value"))
            continue
        refusal = _policy_allows(policy, column, existing)
        if refusal:
            plan.skipped.append(Skipped(column, source, refusal))
            continue
        meta = columns.get(column)
        if metadata is not None and meta is None:
            plan.skipped.append(Skipped(column, source, f"{metadata.logical_name} has no column '{column}'"))
            plan.warnings.append(f"{column}: no such column in Dynamics")
            continue
        if meta is not None and not (meta.valid_for_create if plan.creating else meta.valid_for_update):
            plan.skipped.append(Skipped(column, source, "Dynamics does not allow writing this column"))
            continue
        try:
            converted = convert_value(value, meta)
        except ValueError as exc:
            plan.skipped.append(Skipped(column, source, str(exc)))
            plan.warnings.append(f"{column}: {exc}")
            continue
        if meta is not None and meta.max_length and isinstance(converted, str) and len(converted) > meta.max_length:
            plan.warnings.append(f"{column}: {len(converted)} characters, the column holds {meta.max_length}")
        plan.body[column] = converted
        plan.writes.append(Write(column, converted, source))
    if owner is not None and owner.owner_id:
        plan.body["ownerid@odata.bind"] = f"/systemusers({owner.owner_id})"
        plan.writes.append(Write("ownerid", owner.owner_id, f"owner:{owner.source}"))
    if owner is not None and owner.note:
        plan.warnings.append(f"owner: {owner.note}")
    if plan.creating and metadata is not None:
        for meta in metadata.columns.values():
            if meta.required and meta.logical_name not in plan.body and meta.type in _TEXT_TYPES:
                plan.warnings.append(f"{meta.logical_name}: required by Dynamics and no value is mapped")
    return plan
