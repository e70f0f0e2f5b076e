"""The export mapping engine. Pure: (record, mapping, current Dynamics values, metadata) → body and plan.

The same code builds the writes worker's Dataverse bodies and the admin's export preview, so what the
preview shows is what an export writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from shared.domain.mappings import EntityExportMapping, UserMapping, WritePolicy
from shared.domain.metadata import ColumnMetadata, EntityMetadata, SystemUser
from shared.domain.normalise import canonical_linkedin_url

__all__ = [
    "LINKEDIN_SOURCES",
    "ExportValueError",
    "Fitted",
    "OwnerDecision",
    "RecordPlan",
    "Skipped",
    "UserDirectory",
    "Write",
    "build_record",
    "convert_value",
    "fit_value",
    "is_engaged",
    "resolve_export_values",
    "resolve_identity",
    "resolve_owner",
    "resolve_sender",
]

_TEXT_TYPES = {"String", "Memo"}
# Genesy fields holding a LinkedIn URL: written in the one canonical form, `https://www.linkedin.com/in/<slug>`.
LINKEDIN_SOURCES = frozenset({"linkedinUrl"})
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
    truncated: bool = False  # the value was cut to the column's length (the note is in the plan's warnings)


# Why a mapped column is not written (`Skipped.code`): the write policy or an empty value leave the column
# as it is; the others drop a value Dynamics would not take.
SKIP_CODES = ("no_value", "if_empty", "on_create", "not_engaged", "no_column", "read_only", "unconvertible")


@dataclass(frozen=True)
class Skipped:
    column: str
    source: str
    reason: str
    code: str = ""  # one of SKIP_CODES
    value: Any = None  # the value that was not written (None when there was none)


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
    source: str  # ownerId | users | identities | auto-matched | default | none
    note: str | None = None
    via: str | None = None  # the Genesy value that named the owner (an id, e-mail or sender identity)


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


@dataclass(frozen=True)
class UserDirectory:
    """Enabled Dynamics users as owner resolution needs them: their ids, and whose each address is.

    Addresses are the primary e-mail and the user name (`domainname`, the UPN) when it is an address,
    compared without case; an address two users share names neither.
    """

    ids: frozenset[str]
    by_address: Mapping[str, str]

    @classmethod
    def of(cls, users: UserDirectory | Iterable[SystemUser | str]) -> UserDirectory:
        """From enabled users (or bare ids, which match by id only)."""
        if isinstance(users, UserDirectory):
            return users
        ids: set[str] = set()
        owners: dict[str, set[str]] = {}
        for user in users:
            if isinstance(user, str):
                ids.add(user.strip().lower())
                continue
            user_id = user.id.strip().lower()
            ids.add(user_id)
            for address in (user.email, user.upn):
                if address and "@" in address:
                    owners.setdefault(address.strip().lower(), set()).add(user_id)
        unique = {address: next(iter(found)) for address, found in owners.items() if len(found) == 1}
        return cls(frozenset(ids), unique)

    def user_with_address(self, value: str) -> str | None:
        return self.by_address.get(value.strip().lower())


def resolve_owner(
    record: Mapping[str, Any],
    users: UserMapping,
    enabled_users: UserDirectory | Iterable[SystemUser | str],
    *,
    creating: bool,
) -> OwnerDecision:
    """Owner on export: Genesy's `ownerId` (one of our /users), else the Genesy user it names — by the
    user mapping, else auto-matched by e-mail to an enabled Dynamics user — else the default owner.

    The exporting user is `ownerId`, then the record's `users.owner_field` (default `ownerEmail`). A disabled
    or unknown user falls through to the next source. An update only changes the owner when Genesy chose
    one explicitly (`ownerId`).
    """
    directory = UserDirectory.of(enabled_users)
    notes: list[str] = []
    owner_id = record.get("ownerId")
    if not _empty(owner_id):
        chosen = _named_user(str(owner_id), users, directory, notes, by_id=True)
        if chosen is not None:
            return chosen
        notes.append(f"ownerId {owner_id!r} is not an enabled Dynamics user")
    elif not creating:
        return OwnerDecision(None, "none")
    for name in dict.fromkeys((users.owner_field, "ownerEmail")):
        value = record.get(name)
        if name != "ownerId" and not _empty(value):
            chosen = _named_user(str(value), users, directory, notes)
            if chosen is not None:
                return replace(chosen, note=_joined(notes))
            notes.append(f"{name} {value!r} names no enabled Dynamics user (by the user mapping or e-mail)")
    return _default_owner(users, directory, notes, applies=creating or bool(notes))


def resolve_sender(
    candidates: Sequence[str], users: UserMapping, enabled_users: UserDirectory | Iterable[SystemUser | str]
) -> OwnerDecision:
    """Our user behind an activity, from who Genesy says sent it (in order of trust): a candidate that is an
    enabled user's id, or mapped (sender `identities`, then `users`); else one auto-matched by e-mail; else
    the default owner."""
    directory = UserDirectory.of(enabled_users)
    identities = {i.identity.strip().lower(): i.systemuser_id for i in users.identities}
    by_genesy = _users_by_genesy_user(users)
    notes: list[str] = []
    for candidate in (c.strip().lower() for c in candidates if c and c.strip()):
        if candidate in directory.ids:
            return OwnerDecision(candidate, "ownerId", via=candidate)
        for source, mapped in (("identities", identities.get(candidate)), ("users", by_genesy.get(candidate))):
            if mapped and mapped in directory.ids:
                return OwnerDecision(mapped, source, via=candidate)
            if mapped:
                notes.append(f"{source} maps {candidate!r} to {mapped}, not an enabled Dynamics user")
    for candidate in candidates:
        matched = directory.user_with_address(candidate) if candidate else None
        if matched:
            return OwnerDecision(matched, "auto-matched", _joined(notes), via=candidate.strip().lower())
    return _default_owner(users, directory, notes, applies=True)


def resolve_identity(
    identity: str, role: str, users: UserMapping, enabled_users: UserDirectory | Iterable[SystemUser | str]
) -> OwnerDecision:
    """Whom a Genesy identity seen as `role` resolves to now: "owner" (an export's `ownerId` or owner field:
    the user mapping and e-mail) or "sender" (an activity's sender: identities too)."""
    if role == "sender":
        return resolve_sender([identity], users, enabled_users)
    directory = UserDirectory.of(enabled_users)
    notes: list[str] = []
    chosen = _named_user(identity, users, directory, notes, by_id=True)
    return chosen or _default_owner(users, directory, notes, applies=True)


def _named_user(
    value: str, users: UserMapping, directory: UserDirectory, notes: list[str], *, by_id: bool = False
) -> OwnerDecision | None:
    """The enabled Dynamics user a Genesy value names: its id (`by_id`), the user mapping, or its e-mail."""
    candidate = value.strip().lower()
    if by_id and candidate in directory.ids:
        return OwnerDecision(candidate, "ownerId", via=candidate)
    mapped = _users_by_genesy_user(users).get(candidate)
    if mapped and mapped in directory.ids:
        return OwnerDecision(mapped, "users", via=candidate)
    if mapped:
        notes.append(f"mapped user {mapped} is disabled")
    matched = directory.user_with_address(candidate)
    if matched:
        return OwnerDecision(matched, "auto-matched", via=candidate)
    return None


def _default_owner(users: UserMapping, directory: UserDirectory, notes: list[str], *, applies: bool) -> OwnerDecision:
    """The default owner when it applies and is enabled; else no owner (the application user's stands)."""
    default = users.default_owner_id
    if applies and default and default in directory.ids:
        return OwnerDecision(default, "default", _joined(notes))
    if applies and default:
        notes.append(f"default owner {default} is disabled")
    return OwnerDecision(None, "none", _joined(notes))


def _users_by_genesy_user(users: UserMapping) -> dict[str, str]:
    return {u.genesy_user.lower(): u.systemuser_id for u in users.users}


def _joined(notes: list[str]) -> str | None:
    return "; ".join(notes) or None


# Converters: one per Dataverse column type. Each turns a Genesy value into what the column takes, fitted
# to the column's shape where that is safe (text cut to its length), with notes on what it changed;
# ValueError when no safe conversion exists (that one column is skipped, the record still written).

_SURROGATES = re.compile("[\ud800-\udfff]")
# Text that a cut would turn into a wrong value rather than a shorter one: an e-mail address, a URL,
# a phone number.
_UNCUTTABLE = re.compile(r"^(?:\S+@\S+|[a-z][a-z0-9+.-]*://\S+|www\.\S+|\+?[\d\s().\-/]{6,})$", re.IGNORECASE)
# Ranges no column of the type goes beyond (Dataverse's limits for Integer, BigInt, Decimal, Double and
# Money columns); a column's own MinValue/MaxValue may be narrower.
_WHOLE_RANGE = {"Integer": (-(2**31), 2**31 - 1), "BigInt": (-(2**63), 2**63 - 1)}
_NUMBER_LIMIT = {"Decimal": 100_000_000_000, "Double": 100_000_000_000, "Money": 922_337_203_685_477}
_EARLIEST_YEAR = 1753  # Dataverse stores no date before 1753-01-01


@dataclass(frozen=True)
class Fitted:
    """A converted value and what fitting it to its column changed (e.g. "cut to 100 characters (was 121)")."""

    value: Any
    notes: tuple[str, ...] = ()
    truncated: bool = False  # text cut to the column's length


def _utf16_length(text: str) -> int:
    """Length as Dataverse counts it (UTF-16 code units: an emoji is two)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 code units, never splitting a character."""
    if text.isascii():
        return text[:limit]
    size = 0
    for index, char in enumerate(text):
        size += 2 if ord(char) > 0xFFFF else 1
        if size > limit:
            return text[:index]
    return text


def _to_text(value: Any, column: ColumnMetadata) -> Fitted:
    if isinstance(value, list | dict):
        raise ValueError("a list or object cannot go into a text column")
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = value if isinstance(value, str) else str(value)
    notes: list[str] = []
    truncated = False
    if not text.isascii() and _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
        notes.append("characters that are not valid Unicode (lone surrogates) replaced with \ufffd")
    limit = column.max_length
    length = _utf16_length(text)
    if limit and length > limit:
        if _UNCUTTABLE.match(text.strip()):
            raise ValueError(f"{length} characters do not fit in {limit}, and this value would be wrong if cut")
        text = _cut(text, limit)
        notes.append(f"cut to {limit} characters (was {length})")
        truncated = True
    return Fitted(text, tuple(notes), truncated)


def _whole_number(value: Any) -> int:
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


def _to_whole_number(value: Any, column: ColumnMetadata) -> Fitted:
    number = _whole_number(value)
    low, high = _WHOLE_RANGE.get(column.type, _WHOLE_RANGE["BigInt"])
    if not low <= number <= high:
        raise ValueError(f"{number} is outside what a {column.type} column holds ({low} to {high})")
    return Fitted(number)


def _to_number(value: Any, column: ColumnMetadata) -> Fitted:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a number") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{value!r} is not a finite number")
    limit = _NUMBER_LIMIT.get(column.type, _NUMBER_LIMIT["Decimal"])
    if abs(number) > limit:
        raise ValueError(f"{value!r} is outside what a {column.type} column holds (-{limit:,} to {limit:,})")
    return Fitted(number)


def _to_boolean(value: Any, column: ColumnMetadata) -> Fitted:
    if isinstance(value, bool):
        return Fitted(value)
    text = str(value).strip().casefold()
    if column.options and text in column.options:
        return Fitted(bool(column.options[text]))
    if text in _TRUE:
        return Fitted(True)
    if text in _FALSE:
        return Fitted(False)
    raise ValueError(f"{value!r} is not Yes/No")


def _choice_code(item: Any, column: ColumnMetadata) -> int:
    if isinstance(item, int) and not isinstance(item, bool):
        if column.options and item not in column.options.values():
            raise ValueError(f"{item!r} is not a value of choice column {column.logical_name}")
        return item
    text = str(item).strip().casefold()
    if text in column.options:
        return column.options[text]
    if re.fullmatch(r"\d+", text) and int(text) in column.options.values():
        return int(text)
    labels = ", ".join(sorted(column.options)) or "none known"
    raise ValueError(f"{item!r} is not a label of choice column {column.logical_name} ({labels})")


def _to_choice(value: Any, column: ColumnMetadata) -> Fitted:
    items = value if isinstance(value, list) else [value]
    codes = [_choice_code(item, column) for item in items]
    if len(codes) != 1:
        raise ValueError(f"{value!r} is not a single choice")
    return Fitted(codes[0])


def _to_choices(value: Any, column: ColumnMetadata) -> Fitted:
    """A multi-select column: a list, or labels separated by `;`. Unknown labels are left out with a note
    as long as one is known; the codes go as Dataverse takes them, `"1,3"`."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, str) and ";" in value:
        items = [part for part in value.split(";") if part.strip()]
    codes: list[int] = []
    unknown: list[str] = []
    first_error: ValueError | None = None
    for item in items:
        try:
            code = _choice_code(item, column)
        except ValueError as exc:
            first_error = first_error or exc
            unknown.append(repr(item))
            continue
        if code not in codes:
            codes.append(code)
    if not codes:
        raise first_error or ValueError("no choice given")
    notes = (f"left out {', '.join(unknown)}: not labels of choice column {column.logical_name}",) if unknown else ()
    return Fitted(",".join(str(c) for c in codes), notes)


def _parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("Z", "+00:00")
    value = datetime.fromisoformat(cleaned)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _datetime_text(value: Any) -> tuple[date, str]:
    """The value as a date or instant, and as Dataverse takes it (`2024-01-15`, `2024-01-15T08:00:00Z`)."""
    if isinstance(value, datetime):
        return value, value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value, value.isoformat()
    raw = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return date.fromisoformat(raw), raw
    moment = _parse_datetime(raw)
    return moment, moment.isoformat().replace("+00:00", "Z")


def _to_datetime(value: Any, column: ColumnMetadata) -> Fitted:
    try:
        moment, text = _datetime_text(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a date") from None
    if moment.year < _EARLIEST_YEAR:
        raise ValueError(f"{value!r} is before {_EARLIEST_YEAR}, the earliest date Dynamics stores")
    return Fitted(text)


def _to_lookup(value: Any, column: ColumnMetadata) -> Fitted:
    raise ValueError(f"{column.logical_name} is a lookup; map it through owners or associations")


Converter = Callable[[Any, ColumnMetadata], Fitted]

_CONVERTERS: dict[str, Converter] = {
    "String": _to_text,
    "Memo": _to_text,
    "Integer": _to_whole_number,
    "BigInt": _to_whole_number,
    "Decimal": _to_number,
    "Double": _to_number,
    "Money": _to_number,
    "Boolean": _to_boolean,
    "Picklist": _to_choice,
    "State": _to_choice,
    "Status": _to_choice,
    "MultiSelectPicklist": _to_choices,
    "DateTime": _to_datetime,
    "Lookup": _to_lookup,
    "Customer": _to_lookup,
    "Owner": _to_lookup,
}


def fit_value(value: Any, column: ColumnMetadata | None) -> Fitted:
    """Convert a Genesy value to what the column's Dataverse type takes, fitted to the column (see
    `Fitted`); ValueError says why no safe conversion exists. Columns of other types take it as is."""
    converter = _CONVERTERS.get(column.type) if column is not None else None
    if converter is None or column is None:
        return Fitted(value)
    return converter(value, column)


def convert_value(value: Any, column: ColumnMetadata | None) -> Any:
    """Convert a Genesy value to what the column's Dataverse type expects; ValueError says why not."""
    return fit_value(value, column).value


def _policy_allows(policy: WritePolicy, column: str, existing: Mapping[str, Any] | None) -> str | None:
    """None when the write may happen, else why not."""
    if existing is None:
        return None
    if policy is WritePolicy.ON_CREATE:
        return "on_create: the record already exists"
    if policy is WritePolicy.IF_EMPTY and not _empty(existing.get(column)):
        return "if_empty: Dynamics already has a value"
    return None


def _policy_code(reason: str) -> str:
    return "on_create" if reason.startswith("on_create") else "if_empty"


def _source_value(source: str, value: Any) -> Any:
    """A mapped Genesy field's value as we write it: LinkedIn URLs in their canonical form."""
    if source in LINKEDIN_SOURCES and isinstance(value, str):
        return canonical_linkedin_url(value) or value
    return value


def _candidates(
    mapping: EntityExportMapping,
    record: Mapping[str, Any],
    export_values: Mapping[str, Any],
    plan: RecordPlan,
    *,
    engaged: bool,
) -> list[tuple[str, Any, str, WritePolicy]]:
    """(column, value, source, policy) for everything the mapping may write, in mapping order."""
    candidates: list[tuple[str, Any, str, WritePolicy]] = []
    for item in mapping.fields:
        value = _source_value(item.source, record.get(item.source))
        candidates.append((item.column, value, f"field:{item.source}", item.policy))
    for fixed in mapping.fixed:
        candidates.append((fixed.column, fixed.value, "fixed", fixed.policy))
    for export_field in mapping.export_fields:
        value = export_values.get(export_field.name)
        candidates.append((export_field.column, value, f"export:{export_field.name}", export_field.policy))
    for engagement in mapping.engagement:
        if engaged:
            candidates.append((engagement.column, engagement.value, "engagement", engagement.policy))
        else:
            plan.skipped.append(
                Skipped(engagement.column, "engagement", "the record took part in no campaign", "not_engaged")
            )
    return candidates


def _refusal(
    plan: RecordPlan,
    column: str,
    value: Any,
    policy: WritePolicy,
    existing: Mapping[str, Any] | None,
    metadata: EntityMetadata | None,
) -> tuple[str, str | None, str] | None:
    """Why this column is not written — (reason, warning or None, code) — or None when it may be."""
    if _empty(value):
        return "no value", None, "no_value"
    refusal = _policy_allows(policy, column, existing)
    if refusal:
        return refusal, None, _policy_code(refusal)
    if metadata is None:
        return None
    meta = metadata.columns.get(column)
    if meta is None:
        return (
            f"{metadata.logical_name} has no column '{column}'",
            f"{column}: no such column in Dynamics",
            "no_column",
        )
    if not (meta.valid_for_create if plan.creating else meta.valid_for_update):
        return "Dynamics does not allow writing this column", None, "read_only"
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
    blank a Dynamics column. A value is fitted to its column (text cut to the column's length, with a
    warning); a value that cannot be converted safely skips that column with a warning. Either way the
    record is still written: nothing one field holds loses the whole record.
    """
    plan = RecordPlan(creating=existing is None)
    columns = metadata.columns if metadata else {}
    for column, value, source, policy in _candidates(mapping, record, export_values, plan, engaged=engaged):
        refusal = _refusal(plan, column, value, policy, existing, metadata)
        if refusal is not None:
            plan.skipped.append(Skipped(column, source, refusal[0], refusal[2], None if _empty(value) else value))
            plan.warnings.extend([refusal[1]] if refusal[1] else [])
            continue
        try:
            fitted = fit_value(value, columns.get(column))
        except ValueError as exc:
            plan.skipped.append(Skipped(column, source, str(exc), "unconvertible", value))
            plan.warnings.append(f"{column}: {exc}")
            continue
        plan.warnings.extend(f"{column}: {note}" for note in fitted.notes)
        plan.body[column] = fitted.value
        plan.writes.append(Write(column, fitted.value, source, fitted.truncated))
    if owner is not None:
        _add_owner(plan, owner)
    if plan.creating and metadata is not None:
        _warn_unmapped_required(plan, metadata)
    return plan


def _add_owner(plan: RecordPlan, owner: OwnerDecision) -> None:
    """Bind the record to its owner, if one was resolved, and pass on why another was not."""
    if owner.owner_id:
        plan.body["ownerid@odata.bind"] = f"/systemusers({owner.owner_id})"
        plan.writes.append(Write("ownerid", owner.owner_id, f"owner:{owner.source}"))
    if owner.note:
        plan.warnings.append(f"owner: {owner.note}")


def _warn_unmapped_required(plan: RecordPlan, metadata: EntityMetadata) -> None:
    """Warn about required text columns a new record gets no value for.

    Only a warning: Dataverse's Web API enforces SystemRequired columns, not ApplicationRequired
    ones (contact `lastname`, account `name`), so the record is written without them.
    """
    for meta in metadata.columns.values():
        if meta.required and meta.logical_name not in plan.body and meta.type in _TEXT_TYPES:
            plan.warnings.append(f"{meta.logical_name}: required by Dynamics and no value is mapped")
