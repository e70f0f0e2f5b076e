"""Table Storage persistence of workspaces and their four mapping sections, with versions and history.

Layout (table names carry `TABLE_PREFIX`):

- `workspaces`: PartitionKey = workspace id, RowKey = `workspace`.
- `sections`: PartitionKey = workspace id; every row of a workspace lives in its partition, so no call
  for one workspace can read or change another's.
  - `c|<section>`: the current document (JSON split over `doc_00…` string properties), `version`,
    `updated_at`, `updated_by`;
  - `c|~workspace`: a stamp rewritten whenever the workspace record or its keys change, so one range
    query over `c|…` tells a cache whether anything it holds is stale;
  - `h|<section>|<10^10 - version>`: one history entry per change (old and new document), newest first
    by RowKey order; when old and new do not fit one entity the old one goes to `…|old` next to it.
  A section write and its history entry are one entity-group transaction: both land or neither.
- `apikeys`: see `mapping_store.keys`.

Concurrency: the ETag this module hands out wraps the Table entity ETag; a PUT replays it as a
conditional replace (`If-Match` semantics), and a first write is an insert, so two writers racing from
the same version can never both win. A section never written is its default document at version 0,
with ETag `"0.new"`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode
from pydantic import BaseModel, ValidationError

from mapping_store.keys import ApiKeys, IssuedKey, key_value
from shared.domain.mappings import (
    SECTION_MODELS,
    CampaignMapping,
    ExportMapping,
    SyncMapping,
    UserMapping,
    Workspace,
    WorkspaceCreate,
    default_section,
)
from shared.platform.errors import (
    AppError,
    BadRequest,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    field_path,
)
from shared.platform.logs import logger
from shared.platform.settings import Settings
from shared.storage.tables import TableStorage, as_utc, escape_key

__all__ = [
    "DEFAULT_ETAG",
    "MAX_DOCUMENT_CHARS",
    "SECTIONS",
    "UNAUTHORIZED_MESSAGE",
    "HistoryEntry",
    "MappingStore",
    "VersionedSection",
    "WorkspaceMappings",
    "authenticate",
    "mapping_error_details",
]

log = logger("mapping_store")

SECTIONS: tuple[str, ...] = tuple(SECTION_MODELS)
WORKSPACES_TABLE = "workspaces"
SECTIONS_TABLE = "sections"

# Table Storage: 64 KiB per property (strings are UTF-16, so 32K characters), 1 MiB per entity.
# Documents are stored as ASCII JSON, so one character is one UTF-16 unit.
PART_CHARS = 32_000
MAX_PARTS = 15
MAX_DOCUMENT_CHARS = PART_CHARS * MAX_PARTS

DEFAULT_ETAG = '"0.new"'
_CURRENT = "c|"
_CURRENT_END = "c}"
_STAMP = "c|~workspace"
_VERSION_SPAN = 10**10
_WORKSPACE_ROW = "workspace"
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,10})\.([A-Za-z0-9_-]{1,400})"?$')
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
_PATH_PREFIX = re.compile(rf"^({_NAME}(?:\.{_NAME})*): (.+)$", re.S)
_VALUE_ERROR = "Value error, "
_ACTOR_MAX = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Public value types


@dataclass(frozen=True)
class VersionedSection:
    """One mapping section as stored: the validated document plus what concurrency control needs."""

    section: str
    document: BaseModel
    etag: str
    version: int
    updated_at: datetime | None
    updated_by: str | None

    def body(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "version": self.version,
            "etag": self.etag,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "document": self.document.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a section: who made it, when, and the document before and after."""

    section: str
    version: int
    changed_at: datetime
    changed_by: str
    old: dict[str, Any]
    new: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "version": self.version,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class WorkspaceMappings:
    """Everything a Genesy request needs from configuration: the workspace and its four sections."""

    workspace: Workspace
    sync: SyncMapping
    export: ExportMapping
    campaign: CampaignMapping
    users: UserMapping
    versions: Mapping[str, int] = field(default_factory=dict)

    def section(self, name: str) -> BaseModel:
        return {"sync": self.sync, "export": self.export, "campaign": self.campaign, "users": self.users}[name]


@dataclass
class _CacheEntry:
    mappings: WorkspaceMappings
    fingerprint: tuple[tuple[str, str], ...]
    checked_at: float


# ---------------------------------------------------------------------------------------------
# Helpers: ids, ETags, validation details, document splitting


def _pk(workspace_id: str) -> str:
    if not isinstance(workspace_id, str) or not _WORKSPACE_ID.match(workspace_id):
        shown = str(workspace_id)[:64]
        raise NotFound(f"workspace '{shown}' not found", code="workspace_not_found")
    return escape_key(workspace_id)


def _check_section(section: str) -> str:
    if section not in SECTION_MODELS:
        shown = str(section)[:64]
        raise NotFound(
            f"unknown mapping section '{shown}'; the sections are {', '.join(SECTIONS)}",
            code="unknown_section",
        )
    return section


def _encode_etag(version: int, table_etag: str) -> str:
    token = base64.urlsafe_b64encode(table_etag.encode()).decode().rstrip("=")
    return f'"{version}.{token}"'


def _decode_etag(value: str) -> str | None:
    """The Table ETag inside one of our ETags; None for the default ("0.new"). `*` is returned as is."""
    value = value.strip()
    if value == "*":
        return "*"
    match = _ETAG.match(value)
    if not match:
        raise BadRequest(
            "If-Match: not an ETag issued by this API; GET the section and send its ETag header back",
            details=[{"field": "If-Match", "message": "malformed ETag"}],
            code="invalid_etag",
        )
    if match.group(1) == "0" and match.group(2) == "new":
        return None
    token = match.group(2)
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(
            "If-Match: not an ETag issued by this API; GET the section and send its ETag header back",
            details=[{"field": "If-Match", "message": "malformed ETag"}],
            code="invalid_etag",
        ) from None


def mapping_error_details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as `{field, message}`, folding a model validator's `path: message` into the path.

    The models' cross-field validators raise e.g. `rules: custom mode needs at least one rule` on the
    `contact` model; the caller should see `contact.rules`, not just `contact`.
    """
    details: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_input=False):
        path = field_path(tuple(part for part in err["loc"] if part != "[key]"))
        message = str(err["msg"])
        if message.startswith(_VALUE_ERROR):
            message = message[len(_VALUE_ERROR) :]
            match = _PATH_PREFIX.match(message)
            if match:
                inner, message = match.group(1), match.group(2)
                path = inner if path == "body" else f"{path}.{inner}"
        details.append({"field": path, "message": message})
    return details


def _invalid_mapping(section: str, exc: ValidationError) -> BadRequest:
    details = mapping_error_details(exc)
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    message = f"invalid {section} mapping: {first['field']}: {first['message']}{more}"
    return BadRequest(message, details=details, code="invalid_mapping")


def _stale(section: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"the {section} mapping was changed by someone else; GET it again and reapply your change",
        code="etag_mismatch",
    )


def _required_etag(section: str, if_match: str | None) -> str | None:
    """The Table ETag a write is conditional on; a missing If-Match is refused (no blind overwrites)."""
    if not if_match or not if_match.strip():
        raise PreconditionRequired(
            f"If-Match is required: GET the {section} mapping and send its ETag back",
            code="if_match_required",
        )
    return _decode_etag(if_match)


def _validated_document(section: str, document: Any) -> tuple[BaseModel, str]:
    """The section's model for a request body and its stored JSON text; invalid or too large → 400."""
    if not isinstance(document, dict):
        raise BadRequest(
            f"invalid {section} mapping: body: must be a JSON object",
            details=[{"field": "body", "message": "must be a JSON object"}],
            code="invalid_mapping",
        )
    try:
        model = SECTION_MODELS[section].model_validate(document)
    except ValidationError as exc:
        raise _invalid_mapping(section, exc) from None
    text = _dump(model)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise BadRequest(
            f"the {section} mapping is too large to store: {len(text)} characters as JSON, "
            f"the limit is {MAX_DOCUMENT_CHARS}",
            details=[{"field": "body", "message": f"document exceeds {MAX_DOCUMENT_CHARS} characters"}],
            code="document_too_large",
        )
    return model, text


def _replaced_version(
    section: str, current: TableEntity | None, wanted: str | None, workspace: Workspace
) -> tuple[str, int]:
    """The text being replaced and the new version number, if `wanted` still names the current version."""
    if current is None:
        if wanted not in (None, "*"):
            raise _stale(section)
        return _dump(default_section(section, workspace.contact_entity)), 1
    if wanted is None or (wanted != "*" and wanted != current.metadata["etag"]):
        raise _stale(section)
    return _get_parts(current, "doc") or "{}", int(current.get("version", 0)) + 1


def _version_operations(
    pk: str,
    section: str,
    version: int,
    at: datetime,
    who: str,
    texts: tuple[str, str],
    current: TableEntity | None,
) -> list[Any]:
    """The transaction storing a version: the current row (created or replaced if unchanged) and its history
    row, with the old text in a companion row when both texts do not fit one entity."""
    old_text, new_text = texts
    row: dict[str, Any] = {
        "PartitionKey": pk,
        "RowKey": _CURRENT + section,
        "version": version,
        "updated_at": at,
        "updated_by": who,
    }
    _put_parts(row, "doc", new_text)
    history: dict[str, Any] = {
        "PartitionKey": pk,
        "RowKey": _history_key(section, version),
        "section": section,
        "version": version,
        "changed_at": at,
        "changed_by": who,
    }
    _put_parts(history, "new", new_text)
    operations: list[Any] = []
    if current is None:
        operations.append(("create", row))
    else:
        operations.append(
            (
                "update",
                row,
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": current.metadata["etag"],
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        )
    if len(_split(new_text)) + len(_split(old_text)) <= MAX_PARTS:
        _put_parts(history, "old", old_text)
        operations.append(("create", history))
    else:
        companion: dict[str, Any] = {"PartitionKey": pk, "RowKey": history["RowKey"] + "|old"}
        _put_parts(companion, "old", old_text)
        operations += [("create", history), ("create", companion)]
    return operations


def _dump(document: BaseModel) -> str:
    return json.dumps(document.model_dump(mode="json"), ensure_ascii=True, separators=(",", ":"))


def _split(text: str) -> list[str]:
    return [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]


def _put_parts(entity: dict[str, Any], prefix: str, text: str) -> None:
    parts = _split(text)
    entity[f"{prefix}_parts"] = len(parts)
    for index, part in enumerate(parts):
        entity[f"{prefix}_{index:02d}"] = part


def _get_parts(entity: Mapping[str, Any], prefix: str) -> str | None:
    count = entity.get(f"{prefix}_parts")
    if not isinstance(count, int):
        return None
    return "".join(str(entity[f"{prefix}_{index:02d}"]) for index in range(count))


def _actor(actor: str | None) -> str:
    cleaned = "".join(ch for ch in (actor or "") if ch.isprintable()).strip()
    return cleaned[:_ACTOR_MAX] or "unknown"


def _history_key(section: str, version: int) -> str:
    return f"h|{section}|{_VERSION_SPAN - version:010d}"


# ---------------------------------------------------------------------------------------------
# The store


class MappingStore:
    """Workspaces, their mapping sections (versioned, with history) and their API keys."""

    def __init__(
        self,
        settings: Settings,
        tables: TableStorage,
        *,
        now: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._tables = tables
        self.keys = ApiKeys(settings, tables, now=now)
        self._now = now
        self._monotonic = monotonic
        self._cache: dict[str, _CacheEntry] = {}
        self._lock = threading.Lock()

    @property
    def _workspaces(self) -> TableClient:
        return self._tables.table(WORKSPACES_TABLE)

    @property
    def _sections(self) -> TableClient:
        return self._tables.table(SECTIONS_TABLE)

    # -- workspaces ------------------------------------------------------------------------------

    def create_workspace(self, spec: WorkspaceCreate, actor: str | None = None) -> tuple[Workspace, str]:
        """Create a workspace and its first API key; the plaintext key is returned here only."""
        workspace_id = Workspace.new_id()
        created_at = self._now()
        self._workspaces.create_entity(
            {
                "PartitionKey": escape_key(workspace_id),
                "RowKey": _WORKSPACE_ROW,
                "name": spec.name,
                "environment_url": spec.environment_url,
                "contact_entity": spec.contact_entity,
                "key_header": spec.key_header,
                "created_at": created_at,
                "created_by": _actor(actor),
            }
        )
        issued = self.keys.issue_key(workspace_id)
        log.info("created workspace %s (%s)", workspace_id, spec.contact_entity)
        return self.get_workspace(workspace_id), issued.api_key

    def _workspace_entity(self, workspace_id: str) -> TableEntity:
        pk = _pk(workspace_id)
        try:
            return self._workspaces.get_entity(pk, _WORKSPACE_ROW)
        except ResourceNotFoundError:
            raise NotFound(f"workspace '{workspace_id}' not found", code="workspace_not_found") from None

    @staticmethod
    def _workspace_from(entity: Mapping[str, Any], keys: Iterable[Any] = ()) -> Workspace:
        created = as_utc(entity.get("created_at"))
        return Workspace(
            id=str(entity["PartitionKey"]),
            name=str(entity["name"]),
            environment_url=str(entity["environment_url"]),
            contact_entity=entity.get("contact_entity", "contact"),
            key_header=str(entity.get("key_header", "X-API-Key")),
            created_at=created or datetime(1970, 1, 1, tzinfo=UTC),
            keys=list(keys),
        )

    def get_workspace(self, workspace_id: str) -> Workspace:
        """The workspace with its key records (ids and dates, never secrets); `NotFound` if unknown."""
        entity = self._workspace_entity(workspace_id)
        return self._workspace_from(entity, self.keys.records(workspace_id))

    def workspace_etag(self, workspace_id: str) -> str:
        entity = self._workspace_entity(workspace_id)
        return _encode_etag(0, str(entity.metadata["etag"]))

    def list_workspaces(self) -> list[Workspace]:
        """Every workspace, oldest first (two queries whatever the count)."""
        keys = self.keys.records_by_workspace()
        rows = self._workspaces.query_entities("RowKey eq @rk", parameters={"rk": _WORKSPACE_ROW})
        workspaces = [self._workspace_from(row, keys.get(str(row["PartitionKey"]), [])) for row in rows]
        return sorted(workspaces, key=lambda w: (w.created_at, w.id))

    def update_workspace(self, workspace_id: str, patch: Mapping[str, Any], if_match: str | None) -> Workspace:
        """Change name, environment URL, contact entity or key header, guarded by the workspace ETag."""
        if not if_match:
            raise PreconditionRequired(
                "If-Match is required: GET the workspace and send its ETag back", code="if_match_required"
            )
        if not isinstance(patch, Mapping):
            raise BadRequest("body: must be a JSON object", details=[{"field": "body", "message": "not an object"}])
        entity = self._workspace_entity(workspace_id)
        wanted = _decode_etag(if_match)
        if wanted != "*" and wanted != entity.metadata["etag"]:
            raise PreconditionFailed(
                f"workspace '{workspace_id}' was changed by someone else; GET it again", code="etag_mismatch"
            )
        current = {k: entity.get(k) for k in ("name", "environment_url", "contact_entity", "key_header")}
        unknown = sorted(set(patch) - set(current))
        if unknown:
            raise BadRequest(
                f"{unknown[0]}: cannot be changed",
                details=[{"field": name, "message": "cannot be changed"} for name in unknown],
                code="invalid_body",
            )
        try:
            spec = WorkspaceCreate.model_validate({**current, **patch})
        except ValidationError as exc:
            details = mapping_error_details(exc)
            raise BadRequest(f"{details[0]['field']}: {details[0]['message']}", details=details) from None
        updated = dict(entity)
        updated.update(spec.model_dump())
        try:
            self._workspaces.update_entity(
                updated,
                mode=UpdateMode.REPLACE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise PreconditionFailed(
                f"workspace '{workspace_id}' was changed by someone else; GET it again", code="etag_mismatch"
            ) from None
        self._touch(workspace_id)
        return self.get_workspace(workspace_id)

    def issue_key(self, workspace_id: str) -> IssuedKey:
        """An additional key for an existing workspace (older keys stay valid)."""
        self._workspace_entity(workspace_id)
        issued = self.keys.issue_key(workspace_id)
        self._touch(workspace_id)
        return issued

    def rotate_key(self, workspace_id: str, grace_seconds: float | None = None) -> IssuedKey:
        """A new key; older keys expire after `grace_seconds` (default `KEY_GRACE_SECONDS`)."""
        self._workspace_entity(workspace_id)
        issued = self.keys.rotate_key(workspace_id, grace_seconds)
        self._touch(workspace_id)
        return issued

    def _touch(self, workspace_id: str) -> None:
        """Rewrite the workspace stamp so every process's cache notices, and drop our own entry."""
        self._sections.upsert_entity(
            {"PartitionKey": _pk(workspace_id), "RowKey": _STAMP, "at": self._now()}, mode=UpdateMode.REPLACE
        )
        self.invalidate(workspace_id)

    # -- sections --------------------------------------------------------------------------------

    def _current(self, workspace_id: str, section: str) -> TableEntity | None:
        try:
            return self._sections.get_entity(_pk(workspace_id), _CURRENT + section)
        except ResourceNotFoundError:
            return None

    def _versioned(self, section: str, entity: Mapping[str, Any] | None, workspace: Workspace) -> VersionedSection:
        if entity is None:
            return VersionedSection(
                section=section,
                document=default_section(section, workspace.contact_entity),
                etag=DEFAULT_ETAG,
                version=0,
                updated_at=None,
                updated_by=None,
            )
        text = _get_parts(entity, "doc") or "{}"
        try:
            document = SECTION_MODELS[section].model_validate_json(text)
        except ValidationError as exc:
            log.error("stored %s mapping of workspace %s no longer validates: %s", section, workspace.id, exc)
            raise AppError(
                f"the stored {section} mapping no longer validates; PUT a corrected one",
                details=mapping_error_details(exc),
                code="stored_mapping_invalid",
            ) from None
        version = int(entity.get("version", 0))
        etag = str(entity.metadata["etag"]) if isinstance(entity, TableEntity) else ""
        return VersionedSection(
            section=section,
            document=document,
            etag=_encode_etag(version, etag),
            version=version,
            updated_at=as_utc(entity.get("updated_at")),
            updated_by=entity.get("updated_by"),
        )

    def get_section(self, workspace_id: str, section: str) -> VersionedSection:
        """The section as stored, or its default (version 0, ETag `"0.new"`) if never written."""
        _check_section(section)
        workspace = self._workspace_from(self._workspace_entity(workspace_id))
        return self._versioned(section, self._current(workspace_id, section), workspace)

    def put_section(
        self,
        workspace_id: str,
        section: str,
        document: Any,
        if_match: str | None,
        actor: str | None = None,
    ) -> VersionedSection:
        """Validate and store a new version of a section, if `if_match` is still its current ETag.

        Missing `if_match` → `PreconditionRequired` (428): a blind overwrite would silently undo
        another admin's change. Stale `if_match` → `PreconditionFailed` (412). `*` means "whatever is
        current" and still loses to a writer that lands between our read and our write.
        """
        _check_section(section)
        workspace = self._workspace_from(self._workspace_entity(workspace_id))
        wanted = _required_etag(section, if_match)
        model, new_text = _validated_document(section, document)
        current = self._current(workspace_id, section)
        old_text, version = _replaced_version(section, current, wanted, workspace)
        at = self._now()
        who = _actor(actor)
        operations = _version_operations(_pk(workspace_id), section, version, at, who, (old_text, new_text), current)
        results = self._submit_version(workspace_id, section, operations)
        self.invalidate(workspace_id)
        log.info("workspace %s: %s mapping is now version %d (by %s)", workspace_id, section, version, who)
        return VersionedSection(
            section=section,
            document=model,
            etag=_encode_etag(version, str(results[0]["etag"])),
            version=version,
            updated_at=at,
            updated_by=who,
        )

    def _submit_version(self, workspace_id: str, section: str, operations: list[Any]) -> Any:
        """Write a new section version in one transaction; a concurrent writer that got there first wins."""
        try:
            return self._sections.submit_transaction(operations)
        except TableTransactionError as exc:
            if exc.status_code in (409, 412):
                log.info("concurrent write of %s mapping of workspace %s lost", section, workspace_id)
                raise _stale(section) from None
            raise
        except (ResourceModifiedError, ResourceExistsError):
            raise _stale(section) from None

    def history(self, workspace_id: str, section: str, limit: int = 50) -> list[HistoryEntry]:
        """The section's changes, newest first (at most `limit`, 1-500)."""
        _check_section(section)
        self._workspace_entity(workspace_id)
        limit = max(1, min(int(limit), 500))
        rows = self._sections.query_entities(
            "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
            parameters={"pk": _pk(workspace_id), "lo": f"h|{section}|", "hi": f"h|{section}}}"},
            results_per_page=min(limit * 2, 1000),
        )
        mains: list[dict[str, Any]] = []
        for row in rows:
            key = str(row["RowKey"])
            if key.endswith("|old"):
                if mains and key == mains[-1]["RowKey"] + "|old":
                    mains[-1]["_old"] = _get_parts(row, "old")
                continue
            if len(mains) >= limit:
                break
            mains.append(dict(row))
        return [
            HistoryEntry(
                section=section,
                version=int(main["version"]),
                changed_at=as_utc(main.get("changed_at")) or datetime(1970, 1, 1, tzinfo=UTC),
                changed_by=str(main.get("changed_by", "")),
                old=json.loads(main.get("_old") or _get_parts(main, "old") or "{}"),
                new=json.loads(_get_parts(main, "new") or "{}"),
            )
            for main in mains
        ]

    # -- the hot path: cached mappings -----------------------------------------------------------

    def mappings(self, workspace_id: str) -> WorkspaceMappings:
        """The workspace and its four sections, cached for `MAPPING_CACHE_SECONDS`, then revalidated.

        Revalidation is one range query of the workspace's current rows selecting only RowKey (the
        ETags come with it): unchanged → the cache lives on; changed → reload. Changes made through this
        store are seen at once (they drop the entry).
        """
        pk = _pk(workspace_id)
        now = self._monotonic()
        with self._lock:
            entry = self._cache.get(workspace_id)
        if entry is not None and now - entry.checked_at < self.settings.mapping_cache_seconds:
            return entry.mappings
        rows = self._current_rows(pk, select=["RowKey"]) if entry is not None else None
        if entry is not None and rows is not None and self._fingerprint(rows) == entry.fingerprint:
            entry.checked_at = now
            return entry.mappings

        full = self._current_rows(pk)
        workspace = self.get_workspace(workspace_id)
        by_section = {str(row["RowKey"])[len(_CURRENT) :]: row for row in full}
        sections = {name: self._versioned(name, by_section.get(name), workspace) for name in SECTIONS}
        mappings = WorkspaceMappings(
            workspace=workspace,
            sync=_as(SyncMapping, sections["sync"].document),
            export=_as(ExportMapping, sections["export"].document),
            campaign=_as(CampaignMapping, sections["campaign"].document),
            users=_as(UserMapping, sections["users"].document),
            versions={name: s.version for name, s in sections.items()},
        )
        with self._lock:
            self._cache[workspace_id] = _CacheEntry(mappings, self._fingerprint(full), now)
        return mappings

    def invalidate(self, workspace_id: str | None = None) -> None:
        """Forget cached mappings of one workspace (or all)."""
        with self._lock:
            if workspace_id is None:
                self._cache.clear()
            else:
                self._cache.pop(workspace_id, None)

    def _current_rows(self, pk: str, select: list[str] | None = None) -> list[TableEntity]:
        return list(
            self._sections.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": pk, "lo": _CURRENT, "hi": _CURRENT_END},
                select=select,
            )
        )

    @staticmethod
    def _fingerprint(rows: Iterable[TableEntity]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((str(row["RowKey"]), str(row.metadata["etag"])) for row in rows))


_M = TypeVar("_M", bound=BaseModel)


def _as(kind: type[_M], document: BaseModel) -> _M:
    assert isinstance(document, kind)
    return document


UNAUTHORIZED_MESSAGE = (
    "missing or invalid API key: send the workspace's key in the header configured for it (default X-API-Key)"
)


def _refused(reason: str, *args: object) -> Unauthorized:
    """The one 401 every refused key gets; the specific reason goes to the log (never the key)."""
    log.info("refused a Genesy call: " + reason, *args)
    return Unauthorized(UNAUTHORIZED_MESSAGE)


def authenticate(store: MappingStore, headers: Mapping[str, str]) -> Workspace:
    """The workspace a Genesy request belongs to, from the `gdk_…` key in its configured header.

    Any header may carry the key (header names compare case-insensitively), but it must be the one the
    workspace configured (`key_header`); otherwise, or for a missing, malformed, unknown or expired key, or
    several different keys, `Unauthorized` with one and the same message (`UNAUTHORIZED_MESSAGE`), so a
    caller learns nothing about why; the reason is logged, with the key id at most.
    """
    found = [(name.lower(), key) for name, value in headers.items() if (key := key_value(str(value))) is not None]
    if not found:
        raise _refused("no API key in any header")
    if len({key for _, key in found}) > 1:
        raise _refused("%d different API keys were sent", len({key for _, key in found}))
    try:
        workspace_id = store.keys.resolve(found[0][1])
    except Unauthorized as exc:
        raise _refused("%s", exc.message) from None
    try:
        workspace = store.mappings(workspace_id).workspace
    except NotFound:
        raise _refused("the key's workspace %s no longer exists", workspace_id) from None
    if workspace.key_header.lower() not in {name for name, _ in found}:
        raise _refused("workspace %s: the key was not sent in its '%s' header", workspace_id, workspace.key_header)
    return workspace
