"""`DataverseClient`: the operations the app needs from one Dataverse environment.

Sync httpx underneath; independent requests of one call (In() chunks, `write_many` batches, metadata
casts) overlap on a small per-client thread pool, and all of them share the client's 429 gate and
concurrency cap (see `pipeline`).
"""

from __future__ import annotations

import contextvars
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import TokenCredential

from shared.dataverse.activities import (
    EMAIL_COMPLETED,
    TASK_COMPLETED,
    email_body,
    guid,
    task_body,
)
from shared.dataverse.batch import BatchRequest, BatchResponse, decode_batch, encode_batch
from shared.dataverse.budget import Budget
from shared.dataverse.chunking import chunk_values, even_chunk_size, write_waves
from shared.dataverse.errors import (
    AuthFailed,
    BudgetExceeded,
    DataverseError,
    RecordNotFound,
    Throttled,
    ValidationFailed,
)
from shared.dataverse.metadata import MetadataCache, build_entity_metadata
from shared.dataverse.models import ChangeSet, EntityMetadata, RecordResult, SystemUser, WriteMode
from shared.dataverse.pipeline import RequestPipeline, RetryPolicy
from shared.dataverse.throttling import DEFAULT_DOP, FairLimiter, writers_sharing
from shared.dataverse.transport import build_http_client
from shared.domain.odata import encode_query, in_filter, in_values_json, odata_literal
from shared.platform.logs import logger

__all__ = ["BulkAction", "DataverseClient", "WriteSpec"]

_log = logger("dataverse")

T = TypeVar("T")
R = TypeVar("R")

BulkAction = Literal["CreateMultiple", "UpdateMultiple", "UpsertMultiple"]
WriteSpec = tuple[str | None, Mapping[str, Any], WriteMode]
Select = Sequence[str] | str | None

API_PATH = "/api/data/v9.2/"
MAX_URL_LENGTH = 32_768
MAX_BATCH_URL_LENGTH = 65_536
MAX_BATCH_REQUESTS = 1000
MIN_WRITE_CHUNK = 10
# Standard tables that take CreateMultiple/UpdateMultiple/UpsertMultiple: entity set → logical name.
BULK_TABLES = {"contacts": "contact", "accounts": "account", "leads": "lead"}

_KNOWN_PRIMARY_KEYS = {
    "contacts": "contactid",
    "accounts": "accountid",
    "leads": "leadid",
    "systemusers": "systemuserid",
    "teams": "teamid",
    "tasks": "activityid",
    "emails": "activityid",
}
_ENTITY_ID_RE = re.compile(r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$")
_ENTITY_SELECT = "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,ChangeTrackingEnabled"
_ATTRIBUTE_SELECT = (
    "LogicalName,DisplayName,AttributeType,AttributeTypeName,RequiredLevel,IsValidForCreate,IsValidForUpdate"
)
_TASK_SELECT = (
    "activityid,subject,description,scheduledend,actualend,statecode,statuscode,_regardingobjectid_value,_ownerid_value"
)
_USER_SELECT = ["systemuserid", "fullname", "internalemailaddress", "domainname", "isdisabled"]

_worker = threading.local()


def _mark_worker() -> None:
    _worker.active = True


def _select(select: Select) -> str | None:
    if select is None:
        return None
    return select if isinstance(select, str) else ",".join(select)


def _query_params(
    filter: str | None = None,
    select: Select = None,
    orderby: str | None = None,
    top: int | None = None,
    expand: str | None = None,
) -> dict[str, str]:
    params: dict[str, str] = {}
    if select:
        params["$select"] = _select(select) or ""
    if filter:
        params["$filter"] = filter
    if orderby:
        params["$orderby"] = orderby
    if top is not None:
        params["$top"] = str(top)
    if expand:
        params["$expand"] = expand
    return params


def _prefer(*, page_size: int | None = None, formatted_values: bool = False) -> dict[str, str]:
    prefs: list[str] = []
    if page_size is not None:
        prefs.append(f"odata.maxpagesize={page_size}")
    if formatted_values:
        prefs.append('odata.include-annotations="OData.Community.Display.V1.FormattedValue"')
    return {"Prefer": ",".join(prefs)} if prefs else {}


def _entity_id(headers: Mapping[str, str]) -> str:
    location = headers.get("odata-entityid") or headers.get("OData-EntityId") or ""
    found = _ENTITY_ID_RE.search(location)
    if not found:
        raise DataverseError("Dataverse did not return the new record's id (OData-EntityId)")
    return found.group(1).lower()


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content.strip() else None


def _given_up(item: WriteSpec, error: DataverseError, exhausted: DataverseError) -> RecordResult:
    """A write left unsent when retrying stopped: still throttled, or out of retry budget."""
    final: DataverseError
    if isinstance(exhausted, Throttled):
        final = Throttled(error.message, retry_after=exhausted.retry_after, status=error.status, code=error.code)
    else:
        final = BudgetExceeded("Dataverse retry budget exhausted", last_error=error)
    return RecordResult(item[0], False, error.status or 0, final, None)


def action_unknown(error: DataverseError, action: str) -> bool:
    """Dataverse's answer to a bulk message the table does not support ("Resource not found for the segment")."""
    return "segment" in error.message.lower() and action.lower() in error.message.lower()


_BULK_ACTION: dict[str, BulkAction] = {"upsert": "UpsertMultiple", "update_only": "UpdateMultiple"}


def _mode_headers(mode: WriteMode) -> dict[str, str]:
    if mode == "create_only":
        return {"If-None-Match": "*"}
    if mode == "update_only":
        return {"If-Match": "*"}
    if mode == "upsert":
        return {}
    raise ValueError(f"unknown write mode {mode!r}")


class DataverseClient:
    """A pooled, thread-safe client for one Dataverse environment (`https://<org>.crm.dynamics.com`)."""

    def __init__(
        self,
        environment_url: str,
        credential: TokenCredential,
        *,
        ca_bundle: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        default_budget: float = 60.0,
        metadata_ttl: float = 600.0,
        in_chunk_size: int = 200,
        write_chunk_size: int = MAX_BATCH_REQUESTS,
        min_write_chunk: int = MIN_WRITE_CHUNK,
        retry: RetryPolicy | None = None,
        use_bulk: bool = True,
        bulk_tables: Mapping[str, str] | None = None,
        default_dop: int = DEFAULT_DOP,
    ) -> None:
        parts = urlsplit(environment_url.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"not an environment URL: {environment_url!r}")
        self.environment_url = f"{parts.scheme}://{parts.netloc}"
        self.service_root = self.environment_url + API_PATH
        self.in_chunk_size = in_chunk_size
        self.write_chunk_size = min(write_chunk_size, MAX_BATCH_REQUESTS)
        self.min_write_chunk = max(1, min(min_write_chunk, self.write_chunk_size))
        self.use_bulk = use_bulk
        self.max_concurrency = max_concurrency
        self._bulk_tables: dict[str, str] = dict(BULK_TABLES if bulk_tables is None else bulk_tables)
        http = build_http_client(
            self.service_root,
            ca_bundle=ca_bundle,
            max_concurrency=max_concurrency,
            timeout=timeout,
            transport=transport,
        )
        self._pipeline = RequestPipeline(
            http,
            credential,
            f"{self.environment_url}/.default",
            max_concurrency=max_concurrency,
            default_budget=default_budget,
            retry=retry,
            default_dop=default_dop,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrency, thread_name_prefix="dataverse", initializer=_mark_worker
        )
        self._metadata = MetadataCache(metadata_ttl)
        self._primary_keys: dict[str, str] = dict(_KNOWN_PRIMARY_KEYS)
        self._keys_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """The underlying httpx client (tests inspect its cookie jar)."""
        return self._pipeline.http

    @property
    def concurrency_cap(self) -> int:
        """Requests allowed in flight now: the adaptive limit, never above min(max_concurrency, x-ms-dop-hint)."""
        return self._pipeline.limiter.cap

    @property
    def limiter(self) -> FairLimiter:
        """The environment's shared limiter (its adaptive limit, and the turns granted per share key)."""
        return self._pipeline.limiter

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._pipeline.http.close()

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------------

    def _run_all(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[fn(i) for i in items]`, overlapped on the pool; the first failure is raised after all finish."""
        if len(items) <= 1 or getattr(_worker, "active", False):
            return [fn(item) for item in items]
        futures = [self._pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        results: list[R] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def _url_length(self, path: str, params: Mapping[str, str]) -> int:
        return len(self.service_root) + len(path) + 1 + len(encode_query(params))

    def _guard_url(self, path: str, params: Mapping[str, str], limit: int = MAX_URL_LENGTH) -> None:
        if self._url_length(path, params) >= limit:
            raise ValueError(f"query URL for {path} would exceed {limit} characters; narrow the filter")

    def _same_origin(self, url: str) -> str:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}".lower() != self.environment_url.lower():
            raise DataverseError("Dataverse returned a next link to another host; refusing to follow it")
        return url

    def _pages(
        self,
        path: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        budget: Budget,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        url: str = path
        while True:
            response = self._pipeline.send("GET", url, params=params, headers=headers, budget=budget)
            payload = _json(response) or {}
            rows.extend(payload.get("value", []))
            next_link = payload.get("@odata.nextLink")
            if not next_link:
                return rows
            url, params = self._same_origin(str(next_link)), None

    def primary_key(self, entity_set: str, *, budget: Budget | None = None) -> str:
        """The primary id column of an entity set (well-known sets answered locally, others looked up once)."""
        with self._keys_lock:
            known = self._primary_keys.get(entity_set)
        if known:
            return known
        rows = self.query(
            "EntityDefinitions",
            filter=f"EntitySetName eq {odata_literal(entity_set)}",
            select=["LogicalName", "PrimaryIdAttribute"],
            budget=budget,
        )
        if not rows:
            raise RecordNotFound(f"no entity with set name {entity_set!r}", status=404)
        key = str(rows[0]["PrimaryIdAttribute"])
        with self._keys_lock:
            self._primary_keys[entity_set] = key
        return key

    # -- reads -----------------------------------------------------------------------------------

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Select = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        formatted_values: bool = False,
        expand: str | None = None,
        budget: Budget | None = None,
    ) -> list[dict[str, Any]]:
        """All rows matching `filter`, following `@odata.nextLink` page by page."""
        params = _query_params(filter, select, orderby, top, expand)
        self._guard_url(entity_set, params)
        headers = _prefer(page_size=page_size, formatted_values=formatted_values)
        return self._pages(entity_set, params, headers, self._pipeline.budget(budget))

    def track_changes(
        self,
        entity_set: str,
        select: Select,
        delta_link: str | None = None,
        *,
        max_pages: int | None = None,
        budget: Budget | None = None,
    ) -> ChangeSet:
        """Change tracking: without `delta_link` the initial sync (`Prefer: odata.track-changes`, every row),
        with it the rows created or changed since plus the ids deleted since; always the next delta link.

        `delta_link` may also be a `next_link` of an earlier round; with `max_pages` a round stops after that
        many pages and returns the `next_link` to continue from (no delta link yet)."""
        budget = self._pipeline.budget(budget)
        pages = 0
        headers = {"Prefer": "odata.track-changes"}
        url: str
        params: Mapping[str, str] | None
        if delta_link:
            url, params = self._same_origin(delta_link), None
        else:
            url, params = entity_set, _query_params(select=select)
        rows: list[dict[str, Any]] = []
        deleted: list[str] = []
        while True:
            payload = _json(self._pipeline.send("GET", url, params=params, headers=headers, budget=budget)) or {}
            for row in payload.get("value", []):
                if str(row.get("@odata.context", "")).endswith("$deletedEntity"):
                    deleted.append(str(row["id"]).lower())
                else:
                    rows.append(row)
            next_link = payload.get("@odata.nextLink")
            pages += 1
            if not next_link:
                link = payload.get("@odata.deltaLink")
                return ChangeSet(rows=rows, deleted=deleted, delta_link=str(link) if link else None)
            if max_pages is not None and pages >= max_pages:
                return ChangeSet(rows=rows, deleted=deleted, next_link=str(next_link))
            url, params = self._same_origin(str(next_link)), None

    def query_in(
        self,
        entity_set: str,
        column: str,
        values: Sequence[Any],
        *,
        select: Select,
        extra_filter: str | None = None,
        key: str | None = None,
        budget: Budget | None = None,
    ) -> list[dict[str, Any]]:
        """Rows whose `column` is one of `values` (`Microsoft.Dynamics.CRM.In`), chunked to fit URLs.

        Chunks run concurrently; rows are merged and de-duplicated by primary key (`key`, or looked up).
        """
        encoded = list(dict.fromkeys(in_values_json(values)))
        if not encoded:
            return []
        budget = self._pipeline.budget(budget)
        key = key or self.primary_key(entity_set, budget=budget)
        columns = [c for c in (select.split(",") if isinstance(select, str) else select or [])]
        if columns and key not in columns:
            columns.append(key)

        def params_for(chunk: Sequence[str]) -> dict[str, str]:
            condition = in_filter(column, chunk)
            if extra_filter:
                condition = f"{condition} and ({extra_filter})"
            return _query_params(condition, columns or None)

        chunks = chunk_values(
            encoded,
            lambda chunk: self._url_length(entity_set, params_for(chunk)),
            max_url_length=MAX_URL_LENGTH,
            max_values=self.in_chunk_size,
        )
        pages = self._run_all(lambda chunk: self._pages(entity_set, params_for(chunk), {}, budget), chunks)
        merged: dict[Any, dict[str, Any]] = {}
        for rows in pages:
            for row in rows:
                merged.setdefault(row.get(key), row)
        return list(merged.values())

    def query_many(
        self,
        queries: Sequence[tuple[str, str | None, Select] | tuple[str, str | None, Select, str | None]],
        *,
        budget: Budget | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Several independent `(entity_set, filter, select)` queries in one `$batch` of GETs.

        Results come back in order; a part throttled or failing with 5xx is re-run on its own (with the
        usual retries), a further page is fetched with its next link.
        """
        budget = self._pipeline.budget(budget)
        if not queries:
            return []
        full = [(q[0], q[1], q[2], q[3] if len(q) > 3 else None) for q in queries]
        if len(full) == 1:
            entity_set, condition, select, expand = full[0]
            return [self.query(entity_set, filter=condition, select=select, expand=expand, budget=budget)]
        requests: list[BatchRequest] = []
        for entity_set, condition, select, expand in full:
            params = _query_params(condition, select, expand=expand)
            self._guard_url(entity_set, params, MAX_BATCH_URL_LENGTH)
            requests.append(BatchRequest("GET", entity_set, params=params))

        def run(start: int) -> list[list[dict[str, Any]]]:
            chunk = requests[start : start + MAX_BATCH_REQUESTS]
            responses = self.batch(chunk, continue_on_error=True, budget=budget)
            if len(responses) != len(chunk):
                raise DataverseError(f"$batch answered {len(responses)} parts for {len(chunk)} queries")
            out: list[list[dict[str, Any]]] = []
            for offset, response in enumerate(responses):
                error = response.error
                if error is None:
                    payload = response.json() or {}
                    rows = list(payload.get("value", []))
                    next_link = payload.get("@odata.nextLink")
                    if next_link:
                        rows.extend(self._pages(self._same_origin(str(next_link)), None, {}, budget))
                    out.append(rows)
                elif error.retryable:
                    entity_set, condition, select, expand = full[start + offset]
                    out.append(self.query(entity_set, filter=condition, select=select, expand=expand, budget=budget))
                else:
                    raise error
            return out

        starts = list(range(0, len(requests), MAX_BATCH_REQUESTS))
        return [rows for group in self._run_all(run, starts) for rows in group]

    def get(self, entity_set: str, id: str, *, select: Select = None, budget: Budget | None = None) -> dict[str, Any]:
        """One record by id; `RecordNotFound` when it does not exist."""
        response = self._pipeline.send(
            "GET", f"{entity_set}({guid(id)})", params=_query_params(select=select), budget=budget
        )
        return dict(_json(response) or {})

    def whoami(self, *, budget: Budget | None = None) -> dict[str, Any]:
        """`WhoAmI`: the calling user's UserId, BusinessUnitId and OrganizationId."""
        return dict(_json(self._pipeline.send("GET", "WhoAmI", budget=budget)) or {})

    def enabled_users(self, *, budget: Budget | None = None) -> list[SystemUser]:
        """Enabled, interactive users (application and non-interactive users excluded)."""
        rows = self.query(
            "systemusers",
            filter="isdisabled eq false and accessmode ne 4",
            select=_USER_SELECT,
            budget=budget,
        )
        return [
            SystemUser(
                id=str(row["systemuserid"]),
                name=str(row.get("fullname") or ""),
                email=row.get("internalemailaddress"),
                disabled=bool(row.get("isdisabled", False)),
                upn=row.get("domainname"),
            )
            for row in rows
        ]

    # -- metadata --------------------------------------------------------------------------------

    def entity_metadata(
        self, logical_name: str, *, refresh: bool = False, budget: Budget | None = None
    ) -> EntityMetadata:
        """Columns, types, max lengths, required levels and choice labels of an entity (cached with a TTL)."""
        if not refresh:
            cached = self._metadata.get(logical_name)
            if cached is not None:
                return cached
        budget = self._pipeline.budget(budget)
        base = f"EntityDefinitions(LogicalName={odata_literal(logical_name)})"
        casts = f"{base}/Attributes/Microsoft.Dynamics.CRM."

        def fetch(step: str) -> Any:
            if step == "entity":
                params = {"$select": _ENTITY_SELECT, "$expand": f"Attributes($select={_ATTRIBUTE_SELECT})"}
                return _json(self._pipeline.send("GET", base, params=params, budget=budget))
            if step in ("StringAttributeMetadata", "MemoAttributeMetadata"):
                return self._pages(casts + step, {"$select": "LogicalName,MaxLength"}, {}, budget)
            if step in ("PicklistAttributeMetadata", "MultiSelectPicklistAttributeMetadata"):
                expand = "OptionSet($select=Options)"
                params = {"$select": "LogicalName", "$expand": expand}
            else:
                params = {"$select": "LogicalName", "$expand": "OptionSet($select=TrueOption,FalseOption)"}
            try:
                return self._pages(casts + step, params, {}, budget)
            except (RecordNotFound, ValidationFailed) as exc:
                if step == "PicklistAttributeMetadata":
                    raise
                _log.debug("metadata cast %s unavailable for %s: %s", step, logical_name, exc.code)
                return []

        steps = [
            "entity",
            "StringAttributeMetadata",
            "MemoAttributeMetadata",
            "PicklistAttributeMetadata",
            "MultiSelectPicklistAttributeMetadata",
            "BooleanAttributeMetadata",
        ]
        entity, strings, memos, picklists, multi, booleans = self._run_all(fetch, steps)
        max_lengths = {
            str(a["LogicalName"]): int(a["MaxLength"]) for a in [*strings, *memos] if a.get("MaxLength") is not None
        }
        metadata = build_entity_metadata(
            entity,
            max_lengths=max_lengths,
            choice_attributes=[*picklists, *multi],
            boolean_attributes=booleans,
        )
        self._metadata.put(metadata)
        with self._keys_lock:
            self._primary_keys.setdefault(metadata.entity_set_name, metadata.primary_id)
        return metadata

    # -- single-record writes ----------------------------------------------------------------------

    @overload
    def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        return_representation: Literal[False] = False,
        budget: Budget | None = None,
    ) -> str: ...

    @overload
    def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        return_representation: Literal[True],
        budget: Budget | None = None,
    ) -> dict[str, Any]: ...

    def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        return_representation: bool = False,
        budget: Budget | None = None,
    ) -> str | dict[str, Any]:
        """POST a new record: its id (from `OData-EntityId`), or the created row with `return_representation`.

        Not retried after a read timeout (Dataverse may have created it); 5xx and 429 are retried.
        """
        headers = {"Prefer": "return=representation"} if return_representation else {}
        response = self._pipeline.send(
            "POST", entity_set, json=dict(body), headers=headers, budget=budget, retry_ambiguous=False
        )
        if return_representation:
            return dict(_json(response) or {})
        return _entity_id(response.headers)

    def update(self, entity_set: str, id: str, body: Mapping[str, Any], *, budget: Budget | None = None) -> None:
        """PATCH an existing record (`If-Match: *`); `RecordNotFound` when it does not exist."""
        self.upsert(entity_set, id, body, mode="update_only", budget=budget)

    def upsert(
        self,
        entity_set: str,
        id: str,
        body: Mapping[str, Any],
        *,
        mode: WriteMode = "upsert",
        budget: Budget | None = None,
    ) -> None:
        """PATCH by id: create or update; `create_only` raises `RecordConflict`, `update_only` `RecordNotFound`."""
        self._pipeline.send(
            "PATCH", f"{entity_set}({guid(id)})", json=dict(body), headers=_mode_headers(mode), budget=budget
        )

    def delete(self, entity_set: str, id: str, *, budget: Budget | None = None) -> None:
        """DELETE a record; `RecordNotFound` when it does not exist."""
        self._pipeline.send("DELETE", f"{entity_set}({guid(id)})", budget=budget)

    # -- batches and bulk writes -----------------------------------------------------------------

    def batch(
        self,
        requests: Sequence[BatchRequest],
        *,
        continue_on_error: bool = True,
        budget: Budget | None = None,
    ) -> list[BatchResponse]:
        """Send up to 1000 requests as one `$batch`; one `BatchResponse` per part, in order.

        The batch as a whole is retried on 429/5xx (resent only when every part is safe to repeat,
        i.e. no POST, after an ambiguous timeout). Parts are returned as they came, failures included.
        """
        if not requests:
            return []
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ValueError(f"a $batch holds at most {MAX_BATCH_REQUESTS} requests, got {len(requests)}")
        content_type, content = encode_batch(self.service_root, requests)
        headers = {"Content-Type": content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        response = self._pipeline.send(
            "POST",
            "$batch",
            headers=headers,
            content=content,
            budget=budget,
            retry_ambiguous=not any(r.method.upper() == "POST" for r in requests),
            multipart_errors=True,
        )
        return decode_batch(response.headers.get("content-type", ""), response.content)

    def write_many(
        self,
        entity_set: str,
        items: Sequence[WriteSpec],
        *,
        budget: Budget | None = None,
        chunk_size: int | None = None,
        detect_created: bool = True,
        bulk: bool | None = None,
    ) -> list[RecordResult]:
        """Write many records in parallel requests; one `RecordResult` per item, in order.

        Items are `(id, body, mode)`; `id=None` creates with a server-assigned id. Order: the writes of
        one record (items sharing an id) go out in the order given and never in two concurrent requests
        (`write_waves`); within a wave the writes are split into about as many chunks as the
        environment's concurrency allows, divided among the units of work writing at the same time
        (`sharing_writers`: the worker's concurrent messages) — `chunk_size` fixes it — and the chunks run
        in parallel.

        Each chunk is one request. On a bulk table (contact, account, lead, unless `bulk=False` or the
        client's `use_bulk` is off), `upsert` writes with an id go as `UpsertMultiple` and `update_only`
        ones as `UpdateMultiple` — all or nothing, so when one fails the chunk is sent again as a `$batch`
        (continue-on-error) and every record gets its own result, the bad one with Dataverse's reason.
        Ids are ours, so the fallback and every retry rewrite the same records: nothing is created twice.
        Other writes go as a `$batch` (continue-on-error): one bad record fails alone; parts throttled or
        hitting a 5xx are resent (after the full Retry-After) while the budget lasts, then come back with a
        retryable error (`RecordResult.retryable`). A failure of a whole request (auth, throttled beyond
        the budget, budget exhausted) raises.
        """
        if not items:
            return []
        budget = self._pipeline.budget(budget)
        logical = self._bulk_tables.get(entity_set) if (self.use_bulk if bulk is None else bulk) else None
        key = None
        if logical or (detect_created and any(mode == "upsert" and id for id, _, mode in items)):
            key = self.primary_key(entity_set, budget=budget)
        results: dict[int, RecordResult] = {}
        for wave in write_waves([id for id, _, _ in items]):
            jobs = self._write_jobs(items, wave, logical, chunk_size)
            done = self._run_parallel(
                lambda job: self._write_job(entity_set, logical, job, items, key, budget), jobs
            )
            for (_, positions), group in zip(jobs, done, strict=True):
                results.update(zip(positions, group, strict=True))
        return [results[position] for position in range(len(items))]

    def _write_jobs(
        self, items: Sequence[WriteSpec], wave: list[int], logical: str | None, chunk_size: int | None
    ) -> list[tuple[BulkAction | Literal["$batch"], list[int]]]:
        """The wave's writes grouped by request kind and cut into chunks: [(kind, positions)]."""
        groups: dict[BulkAction | Literal["$batch"], list[int]] = {}
        for position in wave:
            record_id, _, mode = items[position]
            kind: BulkAction | Literal["$batch"] = "$batch"
            if logical and record_id and mode in _BULK_ACTION:
                kind = _BULK_ACTION[mode]
            groups.setdefault(kind, []).append(position)
        parallel = max(1, self._pipeline.limiter.limit.ceiling // writers_sharing())
        size = chunk_size or even_chunk_size(
            len(wave), parallel, smallest=self.min_write_chunk, largest=self.write_chunk_size
        )
        size = max(1, min(size, MAX_BATCH_REQUESTS))
        return [
            (kind, positions[start : start + size])
            for kind, positions in groups.items()
            for start in range(0, len(positions), size)
        ]

    def _run_parallel(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """`[fn(j) for j in jobs]` on up to `max_concurrency` threads of this call's own, each in a copy of
        the caller's context; the first failure is raised after all finish. Threads of its own, not the
        shared pool: a call waiting in the pool's queue behind another workspace's could not take its
        turns at the environment's fair limiter."""
        if len(jobs) <= 1:
            return [fn(job) for job in jobs]
        results: dict[int, R] = {}
        failures: list[BaseException] = []
        lock = threading.Lock()
        positions = iter(range(len(jobs)))

        def work() -> None:
            while True:
                with lock:
                    position = next(positions, None)
                if position is None:
                    return
                try:
                    result = fn(jobs[position])
                except BaseException as exc:
                    with lock:
                        failures.append(exc)
                    continue
                with lock:
                    results[position] = result

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work,), name="dataverse-write", daemon=True)
            for _ in range(min(len(jobs), self.max_concurrency))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return [results[position] for position in range(len(jobs))]

    def _write_job(
        self,
        entity_set: str,
        logical: str | None,
        job: tuple[BulkAction | Literal["$batch"], list[int]],
        items: Sequence[WriteSpec],
        key: str | None,
        budget: Budget,
    ) -> list[RecordResult]:
        kind, positions = job
        chunk = [items[position] for position in positions]
        if kind == "$batch" or logical is None or key is None:
            return self._write_chunk(entity_set, chunk, key, budget)
        try:
            return self._bulk_chunk(entity_set, logical, kind, chunk, key, budget)
        except DataverseError as exc:
            if exc.retryable or isinstance(exc, AuthFailed):
                raise
            if exc.status == 404 and action_unknown(exc, kind):
                with self._keys_lock:
                    self._bulk_tables.pop(entity_set, None)  # this environment's table does not take it
            _log.info(
                "dataverse %s on %s failed for %d records (%s): resending them as a $batch for per-record results",
                kind, entity_set, len(chunk), exc.code or exc.status,
            )  # fmt: skip
            return self._write_chunk(entity_set, chunk, key, budget)

    def _bulk_chunk(
        self,
        entity_set: str,
        logical: str,
        action: BulkAction,
        chunk: list[WriteSpec],
        key: str,
        budget: Budget,
    ) -> list[RecordResult]:
        """One `UpsertMultiple`/`UpdateMultiple` with our ids; each record's result (created when told)."""
        targets = [{**body, key: guid(record_id or "")} for record_id, body, _ in chunk]
        answer = self.bulk(entity_set, logical, action, targets, budget=budget, results=action == "UpsertMultiple")
        reported = answer.get("Results")
        if not isinstance(reported, list) or len(reported) != len(chunk):
            reported = [None] * len(chunk)
        outcome: list[RecordResult] = []
        for target, result in zip(targets, reported, strict=True):
            created: bool | None = False if action == "UpdateMultiple" else None
            if isinstance(result, dict) and isinstance(result.get("RecordCreated"), bool):
                created = bool(result["RecordCreated"])
            status = 204 if created is None else (201 if created else 200)
            outcome.append(RecordResult(str(target[key]), True, status, None, created))
        return outcome

    def _write_request(self, entity_set: str, item: WriteSpec, key: str | None) -> BatchRequest:
        record_id, body, mode = item
        if not record_id:
            if mode == "update_only":
                raise ValueError("update_only needs a record id")
            return BatchRequest("POST", entity_set, body=body)
        headers = _mode_headers(mode)
        params = None
        if mode == "upsert" and key:
            headers = {"Prefer": "return=representation"}
            params = {"$select": key}
        return BatchRequest("PATCH", f"{entity_set}({guid(record_id)})", body=body, headers=headers, params=params)

    @staticmethod
    def _record_result(item: WriteSpec, response: BatchResponse) -> RecordResult:
        record_id, _, mode = item
        error = response.error
        if error is not None:
            return RecordResult(record_id, False, response.status, error, None)
        created: bool | None
        if not record_id:
            record_id, created = _entity_id(response.headers), True
        elif response.status == 201:
            created = True
        elif response.status == 200:
            created = False
        else:
            created = {"create_only": True, "update_only": False}.get(mode)
        return RecordResult(guid(record_id), True, response.status, None, created)

    def _write_chunk(
        self, entity_set: str, items: list[WriteSpec], key: str | None, budget: Budget
    ) -> list[RecordResult]:
        """One `$batch` of writes, resending throttled or 5xx parts while the budget lasts."""
        results: dict[int, RecordResult] = {}
        pending = list(range(len(items)))
        attempt = 0
        while pending:
            responses = self._send_writes(entity_set, [items[i] for i in pending], key, budget)
            settled, retry = self._settle_writes(items, pending, responses)
            results.update(settled)
            if not retry:
                break
            try:
                self._wait_to_resend(retry, attempt, budget)
            except DataverseError as exhausted:
                results.update((index, _given_up(items[index], error, exhausted)) for index, error in retry)
                break
            pending = [index for index, _ in retry]
            attempt += 1
        return [results[index] for index in range(len(items)) if index in results]

    def _send_writes(
        self, entity_set: str, items: list[WriteSpec], key: str | None, budget: Budget
    ) -> list[BatchResponse]:
        """Send the writes as one continue-on-error `$batch`; one response per write, in order."""
        requests = [self._write_request(entity_set, item, key) for item in items]
        responses = self.batch(requests, continue_on_error=True, budget=budget)
        if len(responses) != len(requests):
            raise DataverseError(f"$batch answered {len(responses)} parts for {len(requests)} requests")
        return responses

    def _settle_writes(
        self, items: list[WriteSpec], pending: list[int], responses: list[BatchResponse]
    ) -> tuple[dict[int, RecordResult], list[tuple[int, DataverseError]]]:
        """The final result of each sent write, and the retryable errors of those worth sending again."""
        settled: dict[int, RecordResult] = {}
        retry: list[tuple[int, DataverseError]] = []
        for index, response in zip(pending, responses, strict=True):
            error = response.error
            if error is not None and error.retryable:
                retry.append((index, error))
            else:
                settled[index] = self._record_result(items[index], response)
        return settled, retry

    def _wait_to_resend(self, retry: list[tuple[int, DataverseError]], attempt: int, budget: Budget) -> None:
        """Wait out the longest Retry-After of throttled parts, else back off; raises once the budget is spent."""
        throttled = [e for _, e in retry if isinstance(e, Throttled)]
        if not throttled:
            self._pipeline.backoff(attempt, budget, retry[0][1])
            return
        first = throttled[0]
        longest = max(e.retry_after for e in throttled)
        self._pipeline.on_throttled(
            Throttled(first.message, retry_after=longest, status=429, code=first.code), attempt, budget
        )
        self._pipeline.wait_for_gate(budget, first)

    def bulk(
        self,
        entity_set: str,
        logical_name: str,
        action: BulkAction,
        targets: Sequence[Mapping[str, Any]],
        *,
        budget: Budget | None = None,
        results: bool = False,
    ) -> dict[str, Any]:
        """`CreateMultiple`/`UpdateMultiple`/`UpsertMultiple`: all targets succeed or none do (one request).

        Prefer `write_many` when one bad record must not fail the rest. Returns the action's response
        (`{"Ids": [...]}` for CreateMultiple; with `results`, UpsertMultiple's `{"Results": [{"RecordCreated":
        …}]}`; empty when Dataverse answers 204).
        """
        if action not in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
            raise ValueError(f"unknown bulk action {action!r}")
        if not targets:
            return {}
        odata_type = f"Microsoft.Dynamics.CRM.{logical_name}"
        body = {"Targets": [{"@odata.type": odata_type, **target} for target in targets]}
        response = self._pipeline.send(
            "POST",
            f"{entity_set}/Microsoft.Dynamics.CRM.{action}",
            json=body,
            headers={"Prefer": "return=representation"} if results else None,
            budget=budget,
            retry_ambiguous=action != "CreateMultiple",
        )
        return dict(_json(response) or {})

    # -- activities ------------------------------------------------------------------------------

    def _create_in_state(
        self,
        entity_set: str,
        record_id: str,
        body: Mapping[str, Any],
        state: Mapping[str, Any] | None,
        budget: Budget | None,
    ) -> None:
        if state is None:
            self.create(entity_set, body, budget=budget)
            return
        responses = self.batch(
            [
                BatchRequest("POST", entity_set, body=body, changeset="create"),
                BatchRequest("PATCH", f"{entity_set}({record_id})", body=state, changeset="create"),
            ],
            continue_on_error=False,
            budget=budget,
        )
        for response in responses:
            if response.error is not None:
                raise response.error
        if len(responses) != 2:
            raise DataverseError(f"change set answered {len(responses)} parts for 2 requests")

    def create_task(
        self,
        *,
        subject: str,
        regarding: tuple[str, str] | None = None,
        description: str | None = None,
        scheduled_end: datetime | None = None,
        owner_id: str | None = None,
        task_id: str | None = None,
        completed: bool = False,
        actual_end: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        budget: Budget | None = None,
    ) -> str:
        """Create a task regarding a `(logical name, id)` (contact/account/lead); its id.

        A completed task is created and closed (statecode 1, statuscode 5) in one change set.
        """
        task_id = guid(task_id or uuid.uuid4())
        body = task_body(
            task_id=task_id,
            subject=subject,
            description=description,
            regarding=regarding,
            scheduled_end=scheduled_end,
            owner_id=owner_id,
            extra=extra,
        )
        state = {**TASK_COMPLETED, "actualend": odata_literal(actual_end or datetime.now(UTC))} if completed else None
        self._create_in_state("tasks", task_id, body, state, budget)
        return task_id

    def get_task(self, task_id: str, *, select: Select = None, budget: Budget | None = None) -> dict[str, Any]:
        return self.get("tasks", task_id, select=select or _TASK_SELECT, budget=budget)

    def complete_task(self, task_id: str, *, actual_end: datetime | None = None, budget: Budget | None = None) -> None:
        """Mark a task completed (statecode 1, statuscode 5) with its actual end."""
        body = {**TASK_COMPLETED, "actualend": odata_literal(actual_end or datetime.now(UTC))}
        self.update("tasks", task_id, body, budget=budget)

    def create_email_activity(
        self,
        *,
        subject: str,
        description: str | None = None,
        regarding: tuple[str, str] | None = None,
        from_user_id: str | None = None,
        to: Sequence[tuple[str, str]] = (),
        outgoing: bool = True,
        sent_on: datetime | None = None,
        completed: bool = True,
        owner_id: str | None = None,
        email_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        budget: Budget | None = None,
    ) -> str:
        """Log an email (from a user, to contacts/leads) as an activity; its id.

        Dataverse creates emails as drafts; a completed one is closed (statecode 1, statuscode 2) by a
        PATCH in the same change set.
        """
        email_id = guid(email_id or uuid.uuid4())
        body = email_body(
            email_id=email_id,
            subject=subject,
            description=description,
            regarding=regarding,
            from_user_id=from_user_id,
            to=to,
            outgoing=outgoing,
            sent_on=sent_on,
            owner_id=owner_id,
            extra=extra,
        )
        self._create_in_state("emails", email_id, body, EMAIL_COMPLETED if completed else None, budget)
        return email_id
