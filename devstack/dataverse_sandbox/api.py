"""The Web API proper: routes one request (method, path, query, headers, body) to CRUD, queries, bulk
actions, WhoAmI and metadata. Synchronous and run under the store lock, so each request is atomic;
`$batch` reuses `handle` for its parts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from odata_query import ast

from devstack.dataverse_sandbox import errors
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.cost import Work
from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.filters import compile_filter
from devstack.dataverse_sandbox.index import candidate_rows
from devstack.dataverse_sandbox.keys import API_PREFIX, KeySpec, parse_entity_ref, parse_key, split_top_segments
from devstack.dataverse_sandbox.metadata import (
    ATTRIBUTE_CASTS,
    BASE_ATTRIBUTE_PROPS,
    ENTITY_PROPS,
    attribute_document,
    cast_of,
    entity_document,
    find_entity,
    key_documents,
    project_attribute,
)
from devstack.dataverse_sandbox.query import (
    SUPPORTED_OPTIONS,
    decode_skiptoken,
    encode_skiptoken,
    order_rows,
    parse_expand,
    parse_orderby,
    parse_select,
    record_predicate,
    render_row,
)
from devstack.dataverse_sandbox.schema import ENTITIES, ENTITY_SETS, Entity
from devstack.dataverse_sandbox.seed import BUSINESS_UNIT_ID, ORGANIZATION_ID
from devstack.dataverse_sandbox.store import Row, Store

__all__ = [
    "API_PREFIX",
    "ApiRequest",
    "ApiResponse",
    "DataverseApi",
    "error_response",
    "json_response",
    "parse_query_string",
]

_JSON = "application/json; odata.metadata=minimal"
# The parent lookup `PerformParentingChecks` compares, per mergeable table.
_MERGE_PARENT = {"account": "parentaccountid", "contact": "parentcustomerid", "lead": "parentaccountid"}
_NS = "Microsoft.Dynamics.CRM."


@dataclass
class ApiRequest:
    method: str
    path: str  # below the service root, still percent-encoded: "contacts(…)"
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def option(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def prefer(self) -> dict[str, str]:
        prefs: dict[str, str] = {}
        for part in self.headers.get("prefer", "").split(","):
            key, _, value = part.strip().partition("=")
            if key:
                prefs[key.strip().lower()] = value.strip()
        return prefs

    def json_body(self) -> Any:
        if not self.body.strip():
            raise DataverseError.bad_request("The request body is empty.", errors.INVALID_PAYLOAD)
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise DataverseError.bad_request(f"Invalid JSON. {exc}", errors.INVALID_PAYLOAD) from None


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    route: str = ""
    entity_path: str | None = None  # "/contacts(guid)" of a created/upserted row, for Content-ID refs
    work: Work | None = None  # what the cost model charges (None: a read for GET, else a write)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None, route: str = "") -> ApiResponse:
    hdrs = {"Content-Type": _JSON, **(headers or {})}
    return ApiResponse(status, hdrs, json.dumps(payload, ensure_ascii=False, default=str).encode(), route)


def error_response(err: DataverseError, route: str = "") -> ApiResponse:
    return json_response(err.status, err.body(), err.headers, route)


class DataverseApi:
    """Dispatches requests against one store; `base_url` is the environment URL."""

    def __init__(self, store: Store, config: SandboxConfig, base_url: str, user_id: str) -> None:
        self.store = store
        self.config = config
        self.base_url = base_url
        self.api_root = f"{base_url}/api/data/v9.2"
        self.user_id = user_id

    # ------------------------------------------------------------------ entry point
    def handle(self, req: ApiRequest, resolve_ref: Callable[[str], str] | None = None) -> ApiResponse:
        """Answer one request; DataverseErrors become Dataverse error responses."""
        route = f"{req.method} {req.path.split('(')[0].split('?')[0]}"
        try:
            with self.store.lock:
                self.store.enforce_application_required = self.config.enforce_application_required
                resp = self._route(req, resolve_ref)
        except DataverseError as err:
            resp = error_response(err, route)
        if not resp.route:
            resp.route = route
        if resp.work is None:
            resp.work = Work("read") if req.method == "GET" else Work("write")
        return resp

    def _route(self, req: ApiRequest, resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        segments = split_top_segments(req.path)
        allowed = _options_for(req.method, segments)
        if allowed is not None:
            _reject_unsupported(req, allowed)
        _reject_unsupported_headers(req)
        if not segments:
            return json_response(200, {"@odata.context": f"{self.api_root}/$metadata",
                                       "value": [{"name": e.entity_set, "kind": "EntitySet", "url": e.entity_set}
                                                 for e in ENTITIES.values()]})
        head = segments[0]
        if head in ("WhoAmI", "WhoAmI()"):
            if req.method != "GET":
                raise DataverseError(405, errors.UNEXPECTED, "WhoAmI is a function; use GET.")
            return json_response(200, {"@odata.context": f"{self.api_root}/$metadata#{_NS}WhoAmIResponse",
                                       "BusinessUnitId": BUSINESS_UNIT_ID, "UserId": self.user_id,
                                       "OrganizationId": ORGANIZATION_ID}, route="GET WhoAmI")
        if head == "Merge":
            if req.method != "POST":
                raise DataverseError(405, errors.UNEXPECTED, "Merge is an action; use POST.")
            return self._merge(req, resolve_ref)
        if head.startswith("EntityDefinitions"):
            if req.method != "GET":
                raise DataverseError(405, errors.UNEXPECTED, "The sandbox serves metadata read-only.")
            return self._metadata(req, segments)
        set_name, key = _split_key(head)
        entity = ENTITY_SETS.get(set_name)
        if entity is None:
            raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"Resource not found for the segment '{set_name}'.")
        if key is None:
            if len(segments) == 1:
                if req.method == "GET":
                    return self._query(req, entity)
                if req.method == "POST":
                    return self._create(req, entity, resolve_ref)
                raise DataverseError(405, errors.UNEXPECTED, f"{req.method} is not allowed on a collection.")
            action = segments[1]
            if len(segments) == 2 and action.startswith(_NS) and req.method == "POST":
                return self._bulk(req, entity, action[len(_NS):], resolve_ref)
            raise DataverseError(404, errors.PROPERTY_NOT_FOUND,
                                 f"Resource not found for the segment '{action}'.")
        spec = parse_key(unquote(key))
        if len(segments) == 1:
            if req.method == "GET":
                return self._retrieve(req, entity, spec)
            if req.method == "PATCH":
                return self._patch(req, entity, spec, resolve_ref)
            if req.method == "DELETE":
                return self._delete(req, entity, spec)
            raise DataverseError(405, errors.UNEXPECTED, f"{req.method} is not allowed on an entity.")
        return self._navigation(req, entity, spec, segments[1:], resolve_ref)

    # ------------------------------------------------------------------ records
    def _entity_path(self, entity: Entity, record_id: str) -> str:
        return f"/{entity.entity_set}({record_id})"

    def _entity_headers(self, entity: Entity, record_id: str) -> dict[str, str]:
        return {"OData-EntityId": f"{self.api_root}/{entity.entity_set}({record_id})"}

    def _representation(self, req: ApiRequest, entity: Entity, row: Row, status: int) -> ApiResponse:
        select = parse_select(entity, req.option("$select"))
        body = render_row(self.store, entity, row, select, parse_expand(req.option("$expand")) or None,
                          req.prefer().get("odata.include-annotations"))
        sel = f"({','.join(select)})" if select else ""
        payload = {"@odata.context": f"{self.api_root}/$metadata#{entity.entity_set}{sel}/$entity", **body}
        resp = json_response(status, payload, {**self._entity_headers(entity, row[entity.primary_id]),
                                               "Preference-Applied": "return=representation"})
        resp.entity_path = self._entity_path(entity, row[entity.primary_id])
        return resp

    def _no_content(self, entity: Entity, record_id: str) -> ApiResponse:
        return ApiResponse(204, self._entity_headers(entity, record_id),
                           entity_path=self._entity_path(entity, record_id))

    def _wants_representation(self, req: ApiRequest) -> bool:
        return req.prefer().get("return") == "representation"

    def _body_object(self, req: ApiRequest) -> dict[str, Any]:
        body = req.json_body()
        if not isinstance(body, dict):
            raise DataverseError.bad_request("The request body must be a JSON object.", errors.INVALID_PAYLOAD)
        return body

    def _create(self, req: ApiRequest, entity: Entity, resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        record_id = self.store.create(entity, self._body_object(req), user_id=self.user_id, resolve=resolve_ref)
        if self._wants_representation(req):
            row = self.store.find(entity, record_id)
            assert row is not None
            return self._representation(req, entity, row, 201)
        return self._no_content(entity, record_id)

    def _retrieve(self, req: ApiRequest, entity: Entity, spec: KeySpec) -> ApiResponse:
        row = self.store.find_by_keyspec(entity, spec)
        if row is None:
            raise DataverseError.not_found(entity.logical_name, _show_key(spec))
        resp = self._representation(req, entity, row, 200)
        resp.work = Work("read", rows=1)
        return resp

    def _patch(self, req: ApiRequest, entity: Entity, spec: KeySpec,
               resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        body = self._body_object(req)
        if_match = req.headers.get("if-match")
        if_none_match = req.headers.get("if-none-match")
        row = self.store.find_by_keyspec(entity, spec)
        if row is not None and if_none_match == "*":
            raise DataverseError(412, errors.DUPLICATE_KEY, "A record with matching key values already exists.")
        if row is None:
            if if_match is not None:
                raise DataverseError.not_found(entity.logical_name, _show_key(spec))
            record_id = self.store.create(entity, body, user_id=self.user_id, resolve=resolve_ref, key=spec)
            created = self.store.find(entity, record_id)
            assert created is not None
            if self._wants_representation(req):
                return self._representation(req, entity, created, 201)
            return self._no_content(entity, record_id)
        if if_match and if_match != "*" and if_match != f'W/"{row.get("versionnumber")}"':
            raise DataverseError(412, errors.ROW_VERSION_MISMATCH,
                                 "The version of the existing record doesn't match the RowVersion property provided.")
        if spec.alternate:
            for col, val in spec.alternate:
                body.setdefault(col, val)
        self.store.update(entity, row, body, user_id=self.user_id, resolve=resolve_ref)
        updated = self.store.find(entity, row[entity.primary_id])
        assert updated is not None
        if self._wants_representation(req):
            return self._representation(req, entity, updated, 200)
        return self._no_content(entity, updated[entity.primary_id])

    def _delete(self, req: ApiRequest, entity: Entity, spec: KeySpec) -> ApiResponse:
        row = self.store.find_by_keyspec(entity, spec)
        if row is None:
            raise DataverseError.not_found(entity.logical_name, _show_key(spec))
        self.store.delete(entity, row[entity.primary_id])
        return ApiResponse(204)

    def _navigation(self, req: ApiRequest, entity: Entity, spec: KeySpec, rest: list[str],
                    resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        """`contacts(id)/parentcustomerid_account/$ref` (PUT/DELETE) and `emails(id)/email_activity_parties`."""
        row = self.store.find_by_keyspec(entity, spec)
        if row is None:
            raise DataverseError.not_found(entity.logical_name, _show_key(spec))
        nav_name = rest[0]
        if len(rest) == 2 and rest[1] == "$ref" and nav_name in entity.navs:
            nav = entity.navs[nav_name]
            if req.method == "DELETE":
                self.store.update(entity, row, {f"{nav_name}@odata.bind": None}, user_id=self.user_id)
                return ApiResponse(204)
            if req.method == "PUT":
                target = self._body_object(req).get("@odata.id")
                if not isinstance(target, str):
                    raise DataverseError.bad_request("@odata.id is required.", errors.INVALID_PAYLOAD)
                self.store.update(entity, row, {f"{nav.name}@odata.bind": target}, user_id=self.user_id,
                                  resolve=resolve_ref)
                return ApiResponse(204)
        if len(rest) == 1 and req.method == "GET" and nav_name in entity.collections:
            coll = entity.collections[nav_name]
            child = ENTITIES[coll.child_entity]
            select = parse_select(child, req.option("$select"))
            kids = self.store.referencing(child, coll.child_attribute, row[entity.primary_id])
            resp = json_response(200, {"@odata.context": f"{self.api_root}/$metadata#{child.entity_set}",
                                       "value": [render_row(self.store, child, k, select)
                                                 for k in order_rows(child, kids, [], False)]})
            resp.work = Work("read", rows=len(kids))
            return resp
        raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"Resource not found for the segment '{nav_name}'.")

    # ------------------------------------------------------------------ queries
    def _query(self, req: ApiRequest, entity: Entity) -> ApiResponse:
        if req.option("$deltatoken") is not None or "odata.track-changes" in req.prefer():
            return self._track_changes(req, entity)
        _reject_unsupported(req, SUPPORTED_OPTIONS)
        select = parse_select(entity, req.option("$select"))
        order = parse_orderby(entity, req.option("$orderby"))
        expand = parse_expand(req.option("$expand")) or None
        filter_text = req.option("$filter")
        if filter_text:
            # Compiled first: an unknown column is a 400 before any index is built for it.
            pred = record_predicate(self.store, entity, filter_text, self.config.accent_insensitive)
            indexed = candidate_rows(self.store, entity, filter_text, self.config.accent_insensitive)
            rows = [r for r in (indexed if indexed is not None else self.store.table(entity).values()) if pred(r)]
        else:
            rows = list(self.store.table(entity).values())
        rows = order_rows(entity, rows, order, self.config.accent_insensitive)
        total = len(rows)
        prefer = req.prefer()
        applied: list[str] = []
        top_text = req.option("$top")
        next_link = None
        if top_text is not None:
            try:
                top = int(top_text)
            except ValueError:
                raise DataverseError.bad_request(f"Invalid value for $top: {top_text}",
                                                 errors.PROPERTY_NOT_FOUND) from None
            if top < 0:
                raise DataverseError.bad_request("$top must be non-negative.", errors.PROPERTY_NOT_FOUND)
            page_rows = rows[:top]
        else:
            page_size = self.config.max_page_size
            if "odata.maxpagesize" in prefer:
                try:
                    page_size = max(1, min(int(prefer["odata.maxpagesize"]), self.config.max_page_size))
                except ValueError:
                    raise DataverseError.bad_request("Invalid odata.maxpagesize preference.") from None
                applied.append(f"odata.maxpagesize={page_size}")
            page, offset = 1, 0
            token = req.option("$skiptoken")
            if token:
                page, offset = decode_skiptoken(token)
            page_rows = rows[offset:offset + page_size]
            if offset + page_size < total:
                params = [(k, v) for k, v in req.query if k != "$skiptoken"]
                params.append(("$skiptoken", encode_skiptoken(page + 1, offset + page_size)))
                next_link = f"{self.api_root}/{entity.entity_set}?" + urlencode(params, quote_via=quote,
                                                                                   safe="$,'()")
        annotations = prefer.get("odata.include-annotations")
        if annotations:
            applied.append(f"odata.include-annotations={annotations}")
        sel = f"({','.join(select)})" if select else ""
        payload: dict[str, Any] = {"@odata.context": f"{self.api_root}/$metadata#{entity.entity_set}{sel}"}
        if (req.option("$count") or "").lower() == "true":
            payload["@odata.count"] = min(total, 5000)
        payload["value"] = [render_row(self.store, entity, r, select, expand, annotations) for r in page_rows]
        if next_link:
            payload["@odata.nextLink"] = next_link
        headers = {"Preference-Applied": ",".join(applied)} if applied else {}
        resp = json_response(200, payload, headers)
        resp.work = Work("read", rows=len(page_rows))
        return resp

    # ------------------------------------------------------------------ change tracking
    def _track_changes(self, req: ApiRequest, entity: Entity) -> ApiResponse:
        """`Prefer: odata.track-changes` (all rows + a delta link) or a delta link (changes since its token)."""
        if entity.logical_name in self.config.change_tracking_disabled:
            raise DataverseError.bad_request(
                f"Change tracking is not enabled for the entity '{entity.logical_name}'. Enable the Track "
                "changes option (ChangeTrackingEnabled) of the table before requesting changes.",
                errors.CHANGE_TRACKING_DISABLED)
        for name, _ in req.query:
            if name not in ("$select", "$deltatoken"):
                raise DataverseError.bad_request(
                    f"The query parameter {name} is not supported together with change tracking.",
                    errors.PROPERTY_NOT_FOUND)
        select = parse_select(entity, req.option("$select"))
        token_text = req.option("$deltatoken")
        current = self.store.version
        values: list[dict[str, Any]] = []
        if token_text is None:
            rows = order_rows(entity, list(self.store.table(entity).values()), [], False)
            values = [render_row(self.store, entity, r, select) for r in rows]
        else:
            since = self._delta_version(token_text)
            for record_id, row in self.store.changes_since(entity, since):
                if row is None:
                    values.append({"@odata.context": f"{self.api_root}/$metadata#{entity.entity_set}/$deletedEntity",
                                   "id": record_id, "reason": "deleted"})
                else:
                    values.append(render_row(self.store, entity, row, select))
        token = f"{current}!{datetime.now(UTC):%m/%d/%Y %H:%M:%S}"
        params = [("$select", ",".join(select))] if select else []
        params.append(("$deltatoken", token))
        delta_link = f"{self.api_root}/{entity.entity_set}?" + urlencode(params, quote_via=quote, safe="$,")
        sel = f"({','.join(select)})" if select else ""
        payload = {"@odata.context": f"{self.api_root}/$metadata#{entity.entity_set}{sel}/$delta",
                   "@odata.deltaLink": delta_link, "value": values}
        resp = json_response(200, payload, {"Preference-Applied": "odata.track-changes"},
                             route=f"GET {entity.entity_set} (delta)" if token_text else "")
        resp.work = Work("read", rows=len(values))
        return resp

    def _delta_version(self, token: str) -> int:
        """The version a `$deltatoken` (`<version>!<utc time>`, as Dataverse's look) stands for; 400 when
        it is malformed, from the future or older than the change log (expired, e.g. after `sb.reset()`)."""
        head, bang, _ = token.partition("!")
        try:
            version = int(head)
        except ValueError:
            version = -1
        if not bang or version < 0 or version > self.store.version:
            raise DataverseError.bad_request(f"The delta token '{token}' is not valid.", errors.INVALID_DELTA_TOKEN)
        if version < self.store.change_floor:
            raise DataverseError.bad_request(
                "Version stamp associated with the client has expired. Please perform a full sync.",
                errors.INVALID_DELTA_TOKEN)
        return version

    # ------------------------------------------------------------------ Merge
    def _merge(self, req: ApiRequest, resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        """`POST Merge`: Target survives (gets UpdateContent), Subordinate is deactivated and points at it."""
        body = self._body_object(req)
        target, subordinate = body.get("Target"), body.get("Subordinate")
        if not isinstance(target, dict) or not isinstance(subordinate, dict):
            raise DataverseError.bad_request("Merge requires the Target and Subordinate parameters.",
                                             errors.INVALID_PAYLOAD)
        entity = self._merge_entity(target, "Target")
        if self._merge_entity(subordinate, "Subordinate") is not entity:
            raise DataverseError.bad_request("The Target and the Subordinate of a merge must be the same table.")
        ids = []
        for name, ref in (("Target", target), ("Subordinate", subordinate)):
            value = ref.get(entity.primary_id)
            if not isinstance(value, str) or not value:
                raise DataverseError.bad_request(f"{name} must carry {entity.primary_id}.", errors.INVALID_PAYLOAD)
            ids.append(value.lower())
        target_id, subordinate_id = ids
        if target_id == subordinate_id:
            raise DataverseError.bad_request("A record cannot be merged into itself: the Target and the "
                                             "Subordinate are the same record.")
        rows = []
        for record_id in ids:
            row = self.store.find(entity, record_id)
            if row is None:
                raise DataverseError.not_found(entity.logical_name, record_id)
            rows.append(row)
        for name, row in zip(("Target", "Subordinate"), rows, strict=True):
            if row.get("statecode") != 0:
                raise DataverseError.bad_request(
                    f"The {name} {entity.logical_name} {row[entity.primary_id]} is inactive; only active "
                    "records can be merged.")
        content = body.get("UpdateContent") or {}
        if not isinstance(content, dict):
            raise DataverseError.bad_request("UpdateContent must be an entity object.", errors.INVALID_PAYLOAD)
        content = {k: v for k, v in content.items() if k not in ("@odata.type", entity.primary_id)}
        checks = body.get("PerformParentingChecks", False)
        if not isinstance(checks, bool):
            raise DataverseError.bad_request("PerformParentingChecks must be a boolean.", errors.INVALID_PAYLOAD)
        parent = _MERGE_PARENT[entity.logical_name]
        parents = [row.get(parent) for row in rows]
        if checks and all(p is not None for p in parents) and parents[0] != parents[1]:
            raise DataverseError.bad_request(
                f"The parent ({parent}) of the Target differs from the parent of the Subordinate; merge with "
                "PerformParentingChecks false to merge them anyway.")
        self.store.merge(entity, target_id, subordinate_id, content, user_id=self.user_id, resolve=resolve_ref)
        return ApiResponse(204, route="POST Merge")

    def _merge_entity(self, ref: dict[str, Any], name: str) -> Entity:
        type_name = str(ref.get("@odata.type", "")).lstrip("#")
        entity = ENTITIES.get(type_name[len(_NS):]) if type_name.startswith(_NS) else None
        if entity is None or entity.logical_name not in _MERGE_PARENT:
            raise DataverseError.bad_request(
                f"{name} must have @odata.type Microsoft.Dynamics.CRM.account, contact or lead "
                f"(got '{type_name}'): only those tables can be merged.", errors.INVALID_PAYLOAD)
        return entity

    # ------------------------------------------------------------------ bulk actions
    def _bulk(self, req: ApiRequest, entity: Entity, action: str,
              resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        route = f"POST {entity.entity_set}/{action}"
        if action not in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
            raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"Resource not found for the segment '{_NS}{action}'.")
        targets = self._body_object(req).get("Targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
            raise DataverseError.bad_request("Targets must be a non-empty array of entities.", errors.INVALID_PAYLOAD)
        if self.config.max_bulk_targets and len(targets) > self.config.max_bulk_targets:
            raise DataverseError.bad_request(f"The number of Targets exceeds {self.config.max_bulk_targets}.")
        for target in targets:
            odata_type = str(target.get("@odata.type", "")).lstrip("#")
            if odata_type != entity.type_name:
                raise DataverseError.bad_request(
                    f"Each item in Targets must have @odata.type '{entity.type_name}' (got '{odata_type}').",
                    errors.INVALID_PAYLOAD)
        try:
            resp = self._bulk_apply(req, entity, action, targets, resolve_ref)
        except DataverseError as err:
            resp = error_response(err, route)  # rolled back as a whole, after running up to the failure
        resp.route = route
        resp.work = Work("bulk", targets=len(targets))
        return resp

    def _bulk_apply(self, req: ApiRequest, entity: Entity, action: str, targets: list[dict[str, Any]],
                    resolve_ref: Callable[[str], str] | None) -> ApiResponse:
        route = f"POST {entity.entity_set}/{action}"
        ids: list[str] = []
        results: list[dict[str, Any]] = []
        with self.store.transaction():
            for target in targets:
                body = {k: v for k, v in target.items() if k not in ("@odata.type", "@odata.id")}
                if action == "CreateMultiple":
                    ids.append(self.store.create(entity, body, user_id=self.user_id, resolve=resolve_ref))
                    continue
                spec = self._target_key(entity, target)
                row = self.store.find_by_keyspec(entity, spec) if spec else None
                if action == "UpdateMultiple":
                    if spec is None:
                        raise DataverseError.bad_request(
                            f"The primary key '{entity.primary_id}' is required for each item of UpdateMultiple.")
                    if row is None:
                        raise DataverseError.not_found(entity.logical_name, _show_key(spec))
                    self.store.update(entity, row, body, user_id=self.user_id, resolve=resolve_ref)
                    continue
                if row is None:
                    rid = self.store.create(entity, body, user_id=self.user_id, resolve=resolve_ref, key=spec)
                    results.append({"RecordCreated": True, "Target": {"@odata.type": f"#{entity.type_name}",
                                                                      entity.primary_id: rid}})
                else:
                    self.store.update(entity, row, body, user_id=self.user_id, resolve=resolve_ref)
                    results.append({"RecordCreated": False, "Target": {"@odata.type": f"#{entity.type_name}",
                                                                       entity.primary_id: row[entity.primary_id]}})
        if action == "CreateMultiple":
            return json_response(200, {"@odata.context": f"{self.api_root}/$metadata#{_NS}CreateMultipleResponse",
                                       "Ids": ids}, route=route)
        if action == "UpsertMultiple" and self._wants_representation(req):
            return json_response(200, {"@odata.context": f"{self.api_root}/$metadata#{_NS}UpsertMultipleResponse",
                                       "Results": results}, route=route)
        return ApiResponse(204, route=route)

    def _target_key(self, entity: Entity, target: dict[str, Any]) -> KeySpec | None:
        pk = target.get(entity.primary_id)
        if isinstance(pk, str) and pk:
            return KeySpec(record_id=pk.lower())
        odata_id = target.get("@odata.id")
        if isinstance(odata_id, str) and odata_id:
            set_name, spec = parse_entity_ref(odata_id)
            if set_name != entity.entity_set:
                raise DataverseError.bad_request(f"@odata.id '{odata_id}' does not address {entity.entity_set}.")
            return spec
        return None

    # ------------------------------------------------------------------ metadata
    def _metadata(self, req: ApiRequest, segments: list[str]) -> ApiResponse:
        ctx = f"{self.api_root}/$metadata#EntityDefinitions"
        _, key = _split_key(segments[0])
        select = [s.strip() for s in (req.option("$select") or "").split(",") if s.strip()] or None
        expand = parse_expand(req.option("$expand"))
        if key is None:
            if len(segments) > 1:
                raise DataverseError(404, errors.PROPERTY_NOT_FOUND,
                                     f"Resource not found for the segment '{segments[1]}'.")
            docs = [self._entity_document(e) for e in ENTITIES.values()]
            filter_text = req.option("$filter")
            if filter_text:
                pred = compile_filter(filter_text, _doc_resolver(ENTITY_PROPS, "EntityMetadata"),
                                      accent_insensitive=False)
                docs = [d for d in docs if pred(d)]
            return json_response(200, {"@odata.context": ctx, "value": [_project(d, select, ENTITY_PROPS,
                                                                                  "EntityMetadata") for d in docs]},
                                 route="GET EntityDefinitions")
        entity = find_entity(unquote(key))
        if len(segments) == 1:
            doc = _project(self._entity_document(entity), select, ENTITY_PROPS, "EntityMetadata")
            for nav, opts in expand.items():
                if nav == "Attributes":
                    doc["Attributes"] = self._attributes(entity, opts.get("$select"), opts.get("$filter"), None,
                                                         opts.get("$expand"))
                elif nav == "Keys":
                    doc["Keys"] = key_documents(entity)
                else:
                    raise DataverseError.unknown_property(nav, f"{_NS}EntityMetadata")
            return json_response(200, {"@odata.context": f"{ctx}/$entity", **doc}, route="GET EntityDefinitions")
        rest = segments[1:]
        if rest[0] == "Keys":
            return json_response(200, {"@odata.context": f"{ctx}({entity.metadata_id})/Keys",
                                       "value": key_documents(entity)}, route="GET EntityDefinitions")
        name, attr_key = _split_key(rest[0])
        if name != "Attributes":
            raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"Resource not found for the segment '{rest[0]}'.")
        cast = None
        if len(rest) > 1:
            cast_name = rest[1][len(_NS):] if rest[1].startswith(_NS) else rest[1]
            if cast_name not in ATTRIBUTE_CASTS or len(rest) > 2:
                raise DataverseError(404, errors.PROPERTY_NOT_FOUND, f"Resource not found for the segment '{rest[1]}'.")
            cast = cast_name
        if attr_key is None:
            value = self._attributes(entity, select, req.option("$filter"), cast, expand)
            return json_response(200, {"@odata.context": f"{ctx}({entity.metadata_id})/Attributes", "value": value},
                                 route="GET EntityDefinitions")
        attr_key = unquote(attr_key)
        if attr_key.startswith("LogicalName="):
            attr = entity.attributes.get(attr_key.split("=", 1)[1].strip("'"))
        else:
            attr = next((a for a in entity.attributes.values()
                         if a.metadata_id(entity.logical_name) == attr_key.lower()), None)
        if attr is None or (cast is not None and cast_of(attr) != cast):
            raise DataverseError(404, errors.NOT_FOUND,
                                 f"Could not find attribute {attr_key} on {entity.logical_name}.")
        doc = project_attribute(entity, attr, select, expand, cast)
        return json_response(200, {"@odata.context": f"{ctx}({entity.metadata_id})/Attributes/$entity", **doc},
                             route="GET EntityDefinitions")

    def _entity_document(self, entity: Entity) -> dict[str, Any]:
        return entity_document(entity, entity.logical_name not in self.config.change_tracking_disabled)

    def _attributes(self, entity: Entity, select: list[str] | None, filter_text: str | None, cast: str | None,
                    expand: dict[str, Any] | None) -> list[dict[str, Any]]:
        attrs = [a for a in entity.attributes.values() if cast is None or cast_of(a) == cast]
        if filter_text:
            pred = compile_filter(filter_text, _doc_resolver(BASE_ATTRIBUTE_PROPS, "AttributeMetadata"),
                                  accent_insensitive=False)
            attrs = [a for a in attrs if pred(attribute_document(entity, a))]
        return [project_attribute(entity, a, select, expand or None, cast) for a in attrs]


def _project(doc: dict[str, Any], select: list[str] | None, allowed: frozenset[str], type_name: str) -> dict[str, Any]:
    if not select:
        return dict(doc)
    for name in select:
        if name not in allowed:
            raise DataverseError.unknown_property(name, f"{_NS}{type_name}")
    return {k: doc[k] for k in ("MetadataId", *select) if k in doc}


def _doc_resolver(allowed: frozenset[str], type_name: str) -> Callable[[Any, Any], Any]:
    def resolve(doc: dict[str, Any] | None, node: Any) -> Any:
        if not isinstance(node, ast.Identifier) or node.name not in allowed:
            shown = node.name if isinstance(node, ast.Identifier) else str(node)
            raise DataverseError.unknown_property(shown, f"{_NS}{type_name}")
        if doc is None:
            return None
        value = doc.get(node.name)
        if isinstance(value, dict) and "Value" in value:
            return value["Value"]
        return value

    return resolve


_RECORD_OPTIONS = frozenset({"$select", "$expand"})
_METADATA_OPTIONS = frozenset({"$select", "$filter", "$expand"})
# What Dataverse answers and the sandbox does not implement: refused, never silently ignored.
_NOT_IMPLEMENTED = frozenset({"fetchXml", "savedQuery", "userQuery", "$apply", "$search", "$compute", "$levels",
                              "$format", "$index", "$schemaversion"})


def _options_for(method: str, segments: list[str]) -> frozenset[str] | None:
    """The query options the sandbox implements on this route (None: `_query` decides, per its mode)."""
    if not segments or segments[0] in ("WhoAmI", "WhoAmI()", "Merge"):
        return frozenset()
    if segments[0].startswith("EntityDefinitions"):
        return _METADATA_OPTIONS
    keyed = "(" in segments[0]
    if len(segments) == 1:
        if not keyed and method == "GET":
            return None
        return frozenset() if method == "DELETE" else _RECORD_OPTIONS
    if keyed and len(segments) == 2 and method == "GET":
        return frozenset({"$select"})  # a collection-valued navigation property: emails(id)/email_activity_parties
    return frozenset()


def _reject_unsupported(req: ApiRequest, allowed: frozenset[str]) -> None:
    """400 for a query option this route does not implement, rather than an answer that ignores it."""
    for name, _ in req.query:
        if name in allowed:
            continue
        if name == "$skip":  # Dataverse itself refuses $skip (page with $skiptoken)
            raise DataverseError.bad_request("The query parameter $skip is not supported", errors.PROPERTY_NOT_FOUND)
        if name in _NOT_IMPLEMENTED or name.startswith("@"):
            raise DataverseError.bad_request(
                f"The query parameter {name} is not supported by the Dataverse sandbox: Dataverse answers it, the "
                "sandbox does not implement it (devstack/dataverse_sandbox/README.md, 'Refused, not ignored').",
                errors.NOT_IMPLEMENTED)
        raise DataverseError.bad_request(f"The query parameter {name} is not supported on this request",
                                         errors.PROPERTY_NOT_FOUND)


def _reject_unsupported_headers(req: ApiRequest) -> None:
    """Duplicate detection (`MSCRM.SuppressDuplicateDetection: false`) runs Dataverse's duplicate rules,
    which the sandbox does not have: refused rather than answered as if no rule matched."""
    if req.headers.get("mscrm.suppressduplicatedetection", "").strip().lower() == "false":
        raise DataverseError.bad_request(
            "Duplicate detection (MSCRM.SuppressDuplicateDetection: false) is not supported by the Dataverse "
            "sandbox: it has no duplicate detection rules.", errors.NOT_IMPLEMENTED)


def _split_key(segment: str) -> tuple[str, str | None]:
    open_at = segment.find("(")
    if open_at < 0:
        return segment, None
    if not segment.endswith(")"):
        raise DataverseError.bad_request(f"Bad Request - Error in query syntax: '{segment}'",
                                         errors.PROPERTY_NOT_FOUND)
    return segment[:open_at], segment[open_at + 1:-1]


def _show_key(spec: KeySpec) -> str:
    return spec.record_id or ",".join(f"{k}={v}" for k, v in spec.alternate)


def parse_query_string(raw: str) -> list[tuple[str, str]]:
    """Decoded query pairs; `+` means space, so clients must send a literal plus as %2B."""
    return parse_qsl(raw, keep_blank_values=True)

