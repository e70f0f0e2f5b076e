"""In-memory tables with Dataverse write semantics: typed validation, binds, defaults, row versions.

All mutation happens under one re-entrant lock; `transaction()` keeps an undo log so a change set or a
bulk action (CreateMultiple, UpsertMultiple, ...) can be rolled back as a whole, as Dataverse does. Every
row change goes through `_put`/`_drop`, which keep the secondary indexes (`indexes`) current: lookups by
alternate key, by parent and by `$filter` column cost the same however large a table grows.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.keys import KeySpec, parse_entity_ref
from devstack.dataverse_sandbox.rowindex import RowIndexes
from devstack.dataverse_sandbox.schema import ENTITIES, ENTITY_SETS, Attribute, Entity

__all__ = ["Ref", "Row", "Store", "format_datetime", "parse_datetime"]

Row = dict[str, Any]
_EDM = {
    "String": "Edm.String", "Memo": "Edm.String", "Integer": "Edm.Int32", "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal", "Double": "Edm.Double", "Money": "Edm.Decimal", "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset", "Picklist": "Edm.Int32", "State": "Edm.Int32", "Status": "Edm.Int32",
    "Uniqueidentifier": "Edm.Guid", "EntityName": "Edm.String",
}


@dataclass(frozen=True)
class Ref:
    """A lookup value: the target table's logical name and the target row id."""

    entity: str
    id: str


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """ISO 8601 with Z or offset; a bare date means midnight UTC."""
    t = text.strip()
    if len(t) == 10:
        return datetime.fromisoformat(t).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _now() -> str:
    return format_datetime(datetime.now(UTC))


# statecode/statuscode of a merged-away (subordinate) row: Inactive/Inactive; a lead is Disqualified/Canceled.
MERGED_STATE: dict[str, tuple[int, int]] = {"contact": (1, 2), "account": (1, 2), "lead": (2, 7)}

BindResolver = Callable[[str], str]
"""Turns a bind value (maybe a `$1` Content-ID reference) into an entity path `/accounts(guid)`."""


class Store:
    """Rows per table keyed by lower-case id; every public method takes the lock."""

    def __init__(self, default_user_id: str) -> None:
        self.lock = threading.RLock()
        self.default_user_id = default_user_id
        self.enforce_application_required = False  # like the Web API; see SandboxConfig
        self._tables: dict[str, dict[str, Row]] = {name: {} for name in ENTITIES}
        self._version = 1000
        self._undo: list[tuple[str, str, Row | None]] | None = None
        # Change tracking: per table, (version, record id, "upsert" | "delete") in version order. Tokens
        # older than `change_floor` (the version when the log last started over) are expired.
        self._changes: dict[str, list[tuple[int, str, str]]] = {name: [] for name in ENTITIES}
        self._change_marks: dict[str, int] | None = None
        self.change_floor = self._version
        self.indexes = RowIndexes()

    # ------------------------------------------------------------------ public (tests, seeding)
    def rows(self, entity: str) -> list[dict[str, Any]]:
        """Rows of `entity` as plain dicts: lookups appear as `x` and `_x_value` (ids as strings)."""
        with self.lock:
            ent = self._entity(entity)
            return [self.public_row(ent, r) for r in self._tables[ent.logical_name].values()]

    def get(self, entity: str, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            ent = self._entity(entity)
            row = self._tables[ent.logical_name].get(record_id.lower())
            return None if row is None else self.public_row(ent, row)

    def insert(self, entity: str, data: dict[str, Any]) -> str:
        """Seed a row from a Web API style body; server-maintained columns (createdon, modifiedon,
        statecode...) may be given too. Returns the new id."""
        with self.lock:
            ent = self._entity(entity)
            server_cols = {k: v for k, v in data.items()
                           if k in ("createdon", "modifiedon", "fullname") and k in ent.attributes}
            body = {k: v for k, v in data.items() if k not in server_cols}
            record_id = self.create(ent, body, user_id=self.default_user_id)
            if server_cols:
                self._put(ent.logical_name, record_id, {**self._tables[ent.logical_name][record_id], **server_cols})
            return record_id

    def clear(self) -> None:
        with self.lock:
            for table in self._tables.values():
                table.clear()
            self.indexes.clear()
            for log in self._changes.values():
                log.clear()
            self.change_floor = self.next_version()  # tokens taken before the clear are expired

    # ------------------------------------------------------------------ change tracking
    @property
    def version(self) -> int:
        """The latest version handed out: a delta token taken now covers everything up to it."""
        return self._version

    def changes_since(self, entity: Entity, version: int) -> list[tuple[str, Row | None]]:
        """Rows of `entity` created, updated or deleted after `version`, once each in order of their last
        change: (id, current row) or (id, None) when the row is gone now."""
        with self.lock:
            last: dict[str, int] = {}
            for ver, record_id, _ in self._changes[entity.logical_name]:
                if ver > version:
                    last[record_id] = ver
            table = self._tables[entity.logical_name]
            return [(rid, table.get(rid)) for rid, _ in sorted(last.items(), key=lambda kv: kv[1])]

    def _log_change(self, entity: Entity, record_id: str, op: str, version: int | None = None) -> int:
        ver = version if version is not None else self.next_version()
        self._changes[entity.logical_name].append((ver, record_id, op))
        return ver

    def count(self, entity: str) -> int:
        with self.lock:
            return len(self._tables[self._entity(entity).logical_name])

    # ------------------------------------------------------------------ internals used by the API
    def table(self, entity: Entity) -> dict[str, Row]:
        return self._tables[entity.logical_name]

    def find(self, entity: Entity, record_id: str) -> Row | None:
        return self._tables[entity.logical_name].get(record_id.lower())

    def find_by_keyspec(self, entity: Entity, key: KeySpec) -> Row | None:
        if key.record_id is not None:
            return self.find(entity, key.record_id)
        wanted = self._alternate_values(entity, key)
        table = self._tables[entity.logical_name]
        column, value = next(iter(sorted(wanted.items())))
        if isinstance(value, str):
            index = self.indexes.get(entity.logical_name, ("key", column), _casefold_of(column), table)
            candidates: list[Row] = [table[rid] for rid in index.ids(value.casefold())]
        else:
            candidates = list(table.values())
        for row in candidates:
            if all(_key_equal(row.get(col), val) for col, val in wanted.items()):
                return row
        return None

    def referencing(self, entity: Entity, attribute: str, target_id: str) -> list[Row]:
        """Rows of `entity` whose lookup `attribute` points at `target_id` (from an index)."""
        table = self._tables[entity.logical_name]
        index = self.indexes.get(entity.logical_name, ("ref", attribute), _ref_id_of(attribute), table)
        return [table[rid] for rid in index.ids(target_id.lower())]

    def _put(self, table: str, record_id: str, row: Row) -> None:
        old = self._tables[table].get(record_id)
        self._tables[table][record_id] = row
        self.indexes.changed(table, record_id, old, row)

    def _drop(self, table: str, record_id: str) -> None:
        old = self._tables[table].pop(record_id, None)
        if old is not None:
            self.indexes.changed(table, record_id, old, None)

    def _alternate_values(self, entity: Entity, key: KeySpec) -> dict[str, Any]:
        names = tuple(sorted(col for col, _ in key.alternate))
        if names == (entity.primary_id,):
            return dict(key.alternate)
        if not any(tuple(sorted(k)) == names for k in entity.alternate_keys):
            raise DataverseError.bad_request(
                f"The specified key attributes are not a defined key for the {entity.logical_name} entity",
                "0x80060891")
        return dict(key.alternate)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on an exception every row touched inside is put back."""
        with self.lock:
            if self._undo is not None:
                yield
                return
            self._undo = []
            self._change_marks = {name: len(log) for name, log in self._changes.items()}
            try:
                yield
            except BaseException:
                for name, mark in self._change_marks.items():
                    del self._changes[name][mark:]
                for table, record_id, before in reversed(self._undo):
                    if before is None:
                        self._drop(table, record_id)
                    else:
                        self._put(table, record_id, before)
                raise
            finally:
                self._undo = None
                self._change_marks = None

    def _remember(self, entity: Entity, record_id: str) -> None:
        if self._undo is not None:
            before = self._tables[entity.logical_name].get(record_id)
            self._undo.append((entity.logical_name, record_id, copy.copy(before) if before else None))

    def next_version(self) -> int:
        self._version += 1
        return self._version

    def create(self, entity: Entity, body: dict[str, Any], *, user_id: str,
               resolve: BindResolver | None = None, key: KeySpec | None = None) -> str:
        """Validate `body` and insert a row; returns its id. 412 if the id is taken."""
        with self.transaction():
            record_id = str(body.get(entity.primary_id) or "").lower()
            if key is not None and key.record_id:
                record_id = key.record_id
            if record_id:
                self._check_guid(entity, entity.primary_id, record_id)
            else:
                record_id = str(uuid.uuid4())
            if record_id in self._tables[entity.logical_name]:
                raise DataverseError(412, errors.DUPLICATE_KEY, "A record with matching key values already exists.")
            values, children = self._parse_body(entity, body, creating=True, resolve=resolve)
            if key is not None:
                for col, val in key.alternate:
                    values.setdefault(col, val)
            now = _now()
            row: Row = {a: None for a in entity.attributes}
            row.update(values)
            row[entity.primary_id] = record_id
            row["createdon"] = now
            row["modifiedon"] = now
            row["createdby"] = Ref("systemuser", user_id)
            row["modifiedby"] = Ref("systemuser", user_id)
            if "ownerid" in entity.attributes and row.get("ownerid") is None:
                row["ownerid"] = Ref("systemuser", user_id)
            if "activitytypecode" in entity.attributes:
                row["activitytypecode"] = entity.logical_name
            if "merged" in entity.attributes:
                row["merged"] = False
            self._apply_state_defaults(entity, row, values, creating=True)
            self._computed(entity, row)
            self._check_required(entity, row)
            row["versionnumber"] = self._log_change(entity, record_id, "upsert")
            self._remember(entity, record_id)
            self._put(entity.logical_name, record_id, row)
            self._insert_children(entity, record_id, children, user_id=user_id, resolve=resolve)
            return record_id

    def update(self, entity: Entity, row: Row, body: dict[str, Any], *, user_id: str,
               resolve: BindResolver | None = None) -> None:
        with self.transaction():
            record_id = row[entity.primary_id]
            pk_in_body = body.get(entity.primary_id)
            if pk_in_body is not None and str(pk_in_body).lower() != record_id:
                raise DataverseError.bad_request("The primary key in the payload does not match the key in the URL.")
            values, children = self._parse_body(entity, body, creating=False, resolve=resolve)
            self._remember(entity, record_id)
            updated = dict(row)
            updated.update(values)
            self._apply_state_defaults(entity, updated, values, creating=False)
            self._computed(entity, updated)
            updated["modifiedon"] = _now()
            updated["modifiedby"] = Ref("systemuser", user_id)
            updated["versionnumber"] = self._log_change(entity, record_id, "upsert")
            self._put(entity.logical_name, record_id, updated)
            if children is not None:
                for coll, kids in children.items():
                    nav = entity.collections[coll]
                    self._delete_children(ENTITIES[nav.child_entity], nav.child_attribute, record_id)
                    self._insert_children(entity, record_id, {coll: kids}, user_id=user_id, resolve=resolve)

    def delete(self, entity: Entity, record_id: str) -> None:
        with self.transaction():
            rid = record_id.lower()
            if rid not in self._tables[entity.logical_name]:
                raise DataverseError.not_found(entity.logical_name, record_id)
            self._remember(entity, rid)
            self._drop(entity.logical_name, rid)
            self._log_change(entity, rid, "delete")
            for coll in entity.collections.values():
                self._delete_children(ENTITIES[coll.child_entity], coll.child_attribute, rid)

    def _delete_children(self, child_ent: Entity, attribute: str, parent_id: str) -> None:
        for crow in self.referencing(child_ent, attribute, parent_id):
            cid = crow[child_ent.primary_id]
            self._remember(child_ent, cid)
            self._drop(child_ent.logical_name, cid)
            self._log_change(child_ent, cid, "delete")

    def merge(self, entity: Entity, target_id: str, subordinate_id: str, update_content: dict[str, Any], *,
              user_id: str, resolve: BindResolver | None = None) -> None:
        """The `Merge` action: set `update_content` on the target, move every row that points at the
        subordinate over to the target, and deactivate the subordinate (merged, masterid = target)."""
        with self.transaction():
            target = self.find(entity, target_id)
            subordinate = self.find(entity, subordinate_id)
            if target is None or subordinate is None:
                raise DataverseError.not_found(entity.logical_name, target_id if target is None else subordinate_id)
            self.update(entity, target, update_content, user_id=user_id, resolve=resolve)
            tid, sid = target[entity.primary_id], subordinate[entity.primary_id]
            for other in ENTITIES.values():
                lookups = [a.logical_name for a in other.attributes.values()
                           if a.is_lookup and entity.logical_name in a.targets and a.logical_name != "masterid"]
                for rid, row in list(self._tables[other.logical_name].items()):
                    if rid == sid and other is entity:
                        continue
                    moved = [col for col in lookups if row.get(col) == Ref(entity.logical_name, sid)]
                    if moved:
                        self._touch(other, row, {col: Ref(entity.logical_name, tid) for col in moved}, user_id)
            state, status = MERGED_STATE.get(entity.logical_name, (1, 2))
            self._touch(entity, subordinate, {"statecode": state, "statuscode": status, "merged": True,
                                              "masterid": Ref(entity.logical_name, tid)}, user_id)

    def _touch(self, entity: Entity, row: Row, values: dict[str, Any], user_id: str) -> None:
        """A server-side update: set `values` unvalidated and stamp modifiedon/modifiedby/versionnumber."""
        record_id = row[entity.primary_id]
        self._remember(entity, record_id)
        updated = dict(row)
        updated.update(values)
        updated["modifiedon"] = _now()
        updated["modifiedby"] = Ref("systemuser", user_id)
        updated["versionnumber"] = self._log_change(entity, record_id, "upsert")
        self._put(entity.logical_name, record_id, updated)

    # ------------------------------------------------------------------ validation
    def _entity(self, name: str) -> Entity:
        ent = ENTITIES.get(name) or ENTITY_SETS.get(name)
        if ent is None:
            raise KeyError(f"unknown table {name!r}")
        return ent

    def _parse_body(self, entity: Entity, body: dict[str, Any], *, creating: bool,
                    resolve: BindResolver | None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]] | None]:
        values: dict[str, Any] = {}
        children: dict[str, list[dict[str, Any]]] | None = None
        for name, value in body.items():
            if name.startswith("@"):
                continue
            if "@" in name:
                prop, _, annotation = name.partition("@")
                if annotation != "odata.bind":
                    continue
                nav = entity.navs.get(prop)
                if nav is None:
                    raise DataverseError.bad_request(
                        f"An undeclared property '{prop}' which only has property annotations in the payload "
                        "but no property value was found in the payload. In OData, only declared navigation "
                        "properties and declared named streams can be represented as properties without values.",
                        errors.PROPERTY_NOT_FOUND)
                attr = entity.attributes[nav.attribute]
                if (creating and not attr.valid_for_create) or (not creating and not attr.valid_for_update):
                    continue
                values[nav.attribute] = None if value is None else self._bind(nav.targets, value, resolve)
                continue
            if name in entity.collections:
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise DataverseError.bad_request(
                        f"The collection navigation property '{name}' expects an array of entities.",
                        errors.INVALID_PAYLOAD)
                children = children or {}
                children[name] = value
                continue
            column = entity.attributes.get(name)
            if column is None or column.is_lookup:
                raise DataverseError.bad_request(
                    f"The property '{name}' does not exist on type '{entity.type_name}'. Make sure to only use "
                    "property names that are defined by the type.", errors.PROPERTY_NOT_FOUND)
            if column.is_primary_id:
                continue
            if (creating and not column.valid_for_create) or (not creating and not column.valid_for_update):
                continue
            values[name] = self._coerce(entity, column, value)
        return values, children

    def _bind(self, targets: tuple[str, ...], value: Any, resolve: BindResolver | None) -> Ref:
        if not isinstance(value, str):
            raise DataverseError.bad_request("An @odata.bind value must be a string.", errors.INVALID_PAYLOAD)
        path = resolve(value) if resolve else value
        entity_set, key = parse_entity_ref(path)
        target = ENTITY_SETS.get(entity_set)
        if target is None or target.logical_name not in targets:
            raise DataverseError.bad_request(
                f"Invalid entity reference '{value}': expected one of {', '.join(targets)}.",
                errors.INVALID_PAYLOAD)
        row = self.find_by_keyspec(target, key)
        if row is None:
            shown = key.record_id or ",".join(f"{k}={v}" for k, v in key.alternate)
            raise DataverseError.not_found(target.logical_name, shown)
        return Ref(target.logical_name, row[target.primary_id])

    def _type_error(self, entity: Entity, attr: Attribute, value: Any) -> DataverseError:
        edm = "Edm.Date" if attr.date_only else _EDM.get(attr.type, "Edm.String")
        return DataverseError.bad_request(
            f"Error identified in Payload provided by the user for Entity :'{entity.entity_set}', For more "
            "information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293"
            f"  ----> InnerException : Microsoft.OData.ODataException: Cannot convert the literal '{value}' to the "
            f"expected type '{edm}'.", errors.INVALID_PAYLOAD)

    def _check_guid(self, entity: Entity, name: str, value: str) -> None:
        try:
            uuid.UUID(value)
        except ValueError:
            raise self._type_error(entity, entity.attributes[name], value) from None

    def _coerce(self, entity: Entity, attr: Attribute, value: Any) -> Any:
        if value is None:
            return None
        t = attr.type
        if t in ("String", "Memo"):
            if not isinstance(value, str):
                raise self._type_error(entity, attr, value)
            if attr.max_length is not None and len(value) > attr.max_length:
                raise DataverseError.bad_request(
                    f"A validation error occurred.  The length of the '{attr.logical_name}' attribute of the "
                    f"'{entity.logical_name}' entity exceeded the maximum allowed length of '{attr.max_length}'.",
                    errors.STRING_TOO_LONG)
            return value
        if t in ("Integer", "BigInt"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._type_error(entity, attr, value)
            limit = 2**31 if t == "Integer" else 2**63
            if not -limit <= value < limit:
                raise self._type_error(entity, attr, value)
            return value
        if t in ("Decimal", "Double", "Money"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._type_error(entity, attr, value)
            return value
        if t == "Boolean":
            if not isinstance(value, bool):
                raise self._type_error(entity, attr, value)
            return value
        if t == "DateTime":
            if not isinstance(value, str):
                raise self._type_error(entity, attr, value)
            try:
                if attr.date_only:
                    return date.fromisoformat(value[:10]).isoformat()
                return format_datetime(parse_datetime(value))
            except ValueError:
                raise self._type_error(entity, attr, value) from None
        if t in ("Picklist", "State", "Status"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._type_error(entity, attr, value)
            if attr.option(value) is None:
                accepted = ",".join(str(o.value) for o in attr.options)
                raise DataverseError.bad_request(
                    f"A validation error occurred. The value {value} of '{attr.logical_name}' on record of type "
                    f"'{entity.logical_name}' is outside the valid range. Accepted Values: {accepted}",
                    errors.OPTION_OUT_OF_RANGE)
            return value
        if t == "Uniqueidentifier":
            if not isinstance(value, str):
                raise self._type_error(entity, attr, value)
            self._check_guid(entity, attr.logical_name, value)
            return value.lower()
        return value

    def _apply_state_defaults(self, entity: Entity, row: Row, values: dict[str, Any], *, creating: bool) -> None:
        state_attr = entity.attributes.get("statecode")
        status_attr = entity.attributes.get("statuscode")
        if state_attr is None or status_attr is None:
            return
        if creating and row.get("statecode") is None:
            row["statecode"] = 0
        state = row["statecode"]
        if "statuscode" in values and values["statuscode"] is not None:
            opt = status_attr.option(values["statuscode"])
            if opt is not None and opt.state is not None:
                if "statecode" in values and values["statecode"] is not None and values["statecode"] != opt.state:
                    raise DataverseError.bad_request(
                        f"{values['statuscode']} is not a valid status code for state code {state} on "
                        f"{entity.logical_name}.", errors.OPTION_OUT_OF_RANGE)
                row["statecode"] = opt.state
        elif creating or "statecode" in values:
            row["statuscode"] = next((o.value for o in status_attr.options if o.state == row["statecode"]), None)

    def _computed(self, entity: Entity, row: Row) -> None:
        if entity.logical_name in ("contact", "lead"):
            parts = [row.get("firstname"), row.get("lastname")]
            row["fullname"] = " ".join(p for p in parts if p) or None

    def _check_required(self, entity: Entity, row: Row) -> None:
        for attr in entity.attributes.values():
            if attr.required not in ("ApplicationRequired", "SystemRequired") or not attr.valid_for_create:
                continue
            if attr.required == "ApplicationRequired" and not self.enforce_application_required:
                continue
            if attr.is_primary_id or attr.type in ("Owner", "State", "Status"):
                continue
            if row.get(attr.logical_name) in (None, ""):
                raise DataverseError.bad_request(
                    f"A value for the required attribute '{attr.logical_name}' of entity '{entity.logical_name}' "
                    "must be provided.", errors.REQUIRED_MISSING)

    def _insert_children(self, entity: Entity, parent_id: str, children: dict[str, list[dict[str, Any]]] | None,
                         *, user_id: str, resolve: BindResolver | None) -> None:
        for coll, kids in (children or {}).items():
            nav = entity.collections[coll]
            child_ent = ENTITIES[nav.child_entity]
            for kid in kids:
                body = {k: v for k, v in kid.items() if not k.startswith(f"{nav.child_attribute}_")}
                child_id = self.create(child_ent, body, user_id=user_id, resolve=resolve)
                child = self._tables[child_ent.logical_name][child_id]
                self._put(child_ent.logical_name, child_id,
                          {**child, nav.child_attribute: Ref(entity.logical_name, parent_id)})

    # ------------------------------------------------------------------ rendering
    def public_row(self, entity: Entity, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            if isinstance(value, Ref):
                out[name] = value.id
                out[f"_{name}_value"] = value.id
            elif name in entity.attributes and entity.attributes[name].is_lookup:
                out[name] = None
                out[f"_{name}_value"] = None
            else:
                out[name] = value
        return out


def _casefold_of(column: str) -> Callable[[Row], str | None]:
    def key(row: Row) -> str | None:
        value = row.get(column)
        return value.casefold() if isinstance(value, str) else None

    return key


def _ref_id_of(attribute: str) -> Callable[[Row], str | None]:
    def key(row: Row) -> str | None:
        value = row.get(attribute)
        return value.id.lower() if isinstance(value, Ref) else None

    return key


def _key_equal(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, str) and isinstance(wanted, str):
        return stored.casefold() == wanted.casefold()
    return bool(stored == wanted)
