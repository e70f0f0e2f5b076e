"""An OpenAPI 3.1 document built from a list of operations whose bodies and replies are pydantic models.

Pure: no HTTP, no Azure. `build_document` turns `Operation`s (method, route as registered, parameters,
the request model, one `Reply` per status) into the document. Schemas come from pydantic
(`models_json_schema`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is): request bodies in validation
mode (what the handler accepts), replies in serialization mode (what it sends); every model lands once
in `components.schemas` and operations point at it with `#/components/schemas/{model}`.

A model may be given by name instead (`"CampaignEventsRequest"`) and supplied to `build_document` in
`models`: a catalog kept in a lower layer can so describe bodies whose models live in the layer above
(a handler's module), which hands them down. `Operation.query` expands a model's fields into query
parameters.

`markdown_operations` renders operations of the document as a Markdown reference (one section each,
with the example request and reply the document carries), so a reference page can be generated from
the same source.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

__all__ = [
    "EXTENSION",
    "OPENAPI_VERSION",
    "REF_TEMPLATE",
    "ApiInfo",
    "ModelRef",
    "Operation",
    "Param",
    "Reply",
    "build_document",
    "markdown_operations",
    "markdown_table",
    "openapi_path",
    "operations_of",
]

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
EXTENSION = "x-genesy-dynamics-extension"

_METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
_ROUTE_PARAM = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")

Location = Literal["path", "query", "header"]
Security = Mapping[str, Sequence[str]]
Refs = Mapping[tuple[Any, JsonSchemaMode], Any]  # (model, mode) → its `$ref` schema
ModelRef = type[BaseModel] | str  # a model, or its name in `build_document(models=...)`


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter. Path parameters are always required."""

    name: str
    location: Location
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    example: Any = None


@dataclass(frozen=True)
class Reply:
    """One status of an operation: its description, body model (None: no body) and response headers."""

    description: str
    model: ModelRef | None = None
    headers: tuple[str, ...] = ()  # names in `ApiInfo.headers`
    example: Any = None


@dataclass(frozen=True)
class Operation:
    """One (method, route) of the app. `route` is the Functions route template, without the prefix."""

    method: str
    route: str
    operation_id: str
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    security: tuple[Security, ...] = ()
    params: tuple[Param, ...] = ()
    query: ModelRef | None = None  # its fields are query parameters
    body: ModelRef | None = None
    body_required: bool = True
    body_example: Any = None
    description: str = ""
    extension: bool = False

    @property
    def path(self) -> str:
        return openapi_path(self.route)


@dataclass(frozen=True)
class ApiInfo:
    """What the document says besides its operations."""

    title: str
    version: str
    description: str
    server_url: str
    tags: Mapping[str, str] = field(default_factory=dict)  # name → description, in display order
    security_schemes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # reusable response headers


def openapi_path(route: str) -> str:
    """`tasks/{id:guid}` → `/tasks/{id}`: the route template as an OpenAPI path (constraints dropped)."""
    return "/" + _ROUTE_PARAM.sub(lambda m: "{" + m.group(1) + "}", route.strip("/"))


def _route_params(route: str) -> list[str]:
    return _ROUTE_PARAM.findall(route)


def _check(operations: Sequence[Operation]) -> None:
    """Refuse a catalog the document could not express: duplicates, unknown methods, path parameters
    missing or invented."""
    seen: set[tuple[str, str]] = set()
    ids: set[str] = set()
    for op in operations:
        key = (op.method.lower(), op.path)
        if op.method.lower() not in _METHODS:
            raise ValueError(f"{op.operation_id}: unknown method {op.method}")
        if key in seen or op.operation_id in ids:
            raise ValueError(f"{op.operation_id}: {op.method} {op.path} described twice")
        seen.add(key)
        ids.add(op.operation_id)
        declared = sorted(p.name for p in op.params if p.location == "path")
        if declared != sorted(_route_params(op.route)):
            raise ValueError(f"{op.operation_id}: path parameters {declared} do not match route {op.route!r}")


def _model(ref: ModelRef | None, models: Mapping[str, type[BaseModel]], where: str) -> type[BaseModel] | None:
    if ref is None or not isinstance(ref, str):
        return ref
    if ref not in models:
        raise ValueError(f"{where}: model {ref!r} was named but not supplied")
    return models[ref]


def _resolved(op: Operation, models: Mapping[str, type[BaseModel]]) -> Operation:
    """`op` with every named model replaced by the model supplied under that name."""
    where = op.operation_id
    replies = {
        status: dataclasses.replace(reply, model=_model(reply.model, models, where))
        for status, reply in op.replies.items()
    }
    return dataclasses.replace(
        op, replies=replies, query=_model(op.query, models, where), body=_model(op.body, models, where)
    )


def _models(operations: Sequence[Operation]) -> list[tuple[Any, JsonSchemaMode]]:
    wanted: dict[tuple[Any, JsonSchemaMode], None] = {}
    for op in operations:
        for model in (op.query, op.body):
            if model is not None:
                wanted[(model, "validation")] = None
        for reply in op.replies.values():
            if reply.model is not None:
                wanted[(reply.model, "serialization")] = None
    return list(wanted)


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: `anyOf[X, null]` → X."""
    out = {k: v for k, v in schema.items() if k != "default" or v is not None}
    options = [o for o in out.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        out.update(options[0])
    elif options:
        out["anyOf"] = options
    return out


def _query_params(model: Any, refs: Refs, definitions: Mapping[str, Any]) -> list[Param]:
    """One optional-or-required query parameter per field of `model` (its schema, title and description)."""
    name = str(refs[(model, "validation")]["$ref"]).rsplit("/", 1)[-1]
    schema = definitions[name]
    required = set(schema.get("required", []))
    params = []
    for field_name, prop in schema.get("properties", {}).items():
        prop_schema = _without_null(prop)
        description = str(prop_schema.pop("description", prop_schema.get("title", field_name)))
        params.append(Param(field_name, "query", description, prop_schema, field_name in required))
    return params


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": True if param.location == "path" else param.required,
        "schema": dict(param.schema),
    }
    if param.example is not None:
        out["example"] = param.example
    return out


def _json_content(schema: Mapping[str, Any], example: Any) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": dict(schema)}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _response(reply: Reply, refs: Refs) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        out["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in reply.headers}
    if reply.model is not None:
        out["content"] = _json_content(refs[(reply.model, "serialization")], reply.example)
    return out


def _operation(op: Operation, refs: Refs, definitions: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{name: list(scopes) for name, scopes in requirement.items()} for requirement in op.security],
    }
    if op.description:
        out["description"] = op.description
    params = [*op.params, *(_query_params(op.query, refs, definitions) if op.query is not None else [])]
    if params:
        out["parameters"] = [_parameter(p) for p in params]
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": _json_content(refs[(op.body, "validation")], op.body_example),
        }
    out["responses"] = {str(status): _response(reply, refs) for status, reply in sorted(op.replies.items())}
    if op.extension:
        out[EXTENSION] = True
    return out


def build_document(
    info: ApiInfo, operations: Sequence[Operation], models: Mapping[str, type[BaseModel]] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations` (in their order; paths as first seen). `models` supplies
    the models the operations name."""
    _check(operations)
    resolved = [_resolved(op, models or {}) for op in operations]
    refs, definitions = models_json_schema(_models(resolved), ref_template=REF_TEMPLATE)
    schemas = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in resolved:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas)
    components: dict[str, Any] = {"schemas": schemas}
    if info.security_schemes:
        components["securitySchemes"] = {k: dict(v) for k, v in info.security_schemes.items()}
    if info.headers:
        components["headers"] = {k: dict(v) for k, v in info.headers.items()}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "servers": [{"url": info.server_url}],
        "tags": [{"name": name, "description": text} for name, text in info.tags.items()],
        "paths": paths,
        "components": components,
    }


# ---------------------------------------------------------------------------------------------
# Markdown


def operations_of(
    document: Mapping[str, Any], tags: Iterable[str] | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of the document, in its order, optionally only those of `tags`."""
    wanted = set(tags) if tags is not None else None
    out = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in _METHODS and (wanted is None or wanted & set(op.get("tags", []))):
                out.append((method.upper(), path, op))
    return out


def markdown_table(document: Mapping[str, Any], tags: Iterable[str] | None = None) -> str:
    """One row per operation: method, path, summary, and whether it is our extension."""
    prefix = document["servers"][0]["url"].rstrip("/")
    rows = ["| Method | Path | What | Extension |", "|---|---|---|---|"]
    for method, path, op in operations_of(document, tags):
        extension = "yes" if op.get(EXTENSION) else ""
        rows.append(f"| {method} | `{prefix}{path}` | {op['summary']} | {extension} |")
    return "\n".join(rows) + "\n"


def _fence(value: Any, language: str = "json") -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"```{language}\n{text}\n```"


def _schema_name(schema: Mapping[str, Any]) -> str:
    ref = str(schema.get("$ref", ""))
    return f"`{ref.rsplit('/', 1)[-1]}`" if ref else "JSON"


def _params_markdown(op: Mapping[str, Any]) -> list[str]:
    params = op.get("parameters", [])
    if not params:
        return []
    lines = ["| Parameter | In | Required | Description |", "|---|---|---|---|"]
    for p in params:
        lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {p['description']} |")
    return [*lines, ""]


def _example_target(prefix: str, path: str, op: Mapping[str, Any]) -> str:
    """The path with its parameters' examples, and the query parameters that have one."""
    query = []
    for p in op.get("parameters", []):
        example = p.get("example")
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", str(example if example is not None else p["name"]))
        elif p["in"] == "query" and example is not None:
            query.append(f"{p['name']}={example}")
    return prefix + path + ("?" + "&".join(query) if query else "")


def _example_headers(document: Mapping[str, Any], op: Mapping[str, Any]) -> list[str]:
    """The credential of the operation's first security requirement (when in a header), then the header
    parameters that are required or have an example."""
    headers = []
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name in (op.get("security") or [{}])[0]:
        scheme = schemes.get(name, {})
        if scheme.get("in") == "header":
            headers.append(f"{scheme['name']}: <{name}>")
    for p in op.get("parameters", []):
        if p["in"] == "header" and (p.get("required") or p.get("example") is not None):
            headers.append(f"{p['name']}: {p.get('example') or '<' + p['name'] + '>'}")
    return headers


def _request_markdown(document: Mapping[str, Any], method: str, path: str, op: Mapping[str, Any]) -> list[str]:
    prefix = document["servers"][0]["url"].rstrip("/")
    lines = [f"{method} {_example_target(prefix, path, op)}", *_example_headers(document, op)]
    body = op.get("requestBody")
    media = body["content"]["application/json"] if body else {}
    title = "Example request"
    if body:
        optional = "" if body.get("required") else ", optional"
        title += f" (body: {_schema_name(media['schema'])}{optional})"
    if "example" in media:
        lines += ["Content-Type: application/json", "", json.dumps(media["example"], indent=2, ensure_ascii=False)]
    return [f"{title}:", "", _fence("\n".join(lines), "http"), ""]


def _responses_markdown(op: Mapping[str, Any]) -> list[str]:
    """The replies as a table, then the example of each successful one."""
    lines = ["| Status | Body | When |", "|---|---|---|"]
    examples: list[str] = []
    for status, response in op["responses"].items():
        media = response.get("content", {}).get("application/json")
        body = _schema_name(media["schema"]) if media else "none"
        lines.append(f"| {status} | {body} | {response['description']} |")
        if media and "example" in media and status.startswith("2"):
            examples += [f"Example response {status}:", "", _fence(media["example"]), ""]
    return [*lines, "", *examples]


def markdown_operations(document: Mapping[str, Any], tags: Iterable[str] | None = None, level: int = 3) -> str:
    """A reference section per operation: summary, description, parameters, example request, the replies
    and the example of each successful one."""
    prefix = document["servers"][0]["url"].rstrip("/")
    hashes = "#" * level
    out: list[str] = []
    for method, path, op in operations_of(document, tags):
        out += [f"{hashes} `{method} {prefix}{path}`: {op['summary']}", ""]
        if op.get("description"):
            out += [op["description"], ""]
        out += _params_markdown(op)
        out += _request_markdown(document, method, path, op)
        out += _responses_markdown(op)
    return "\n".join(out).rstrip("\n") + "\n"
