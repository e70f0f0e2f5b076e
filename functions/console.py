"""The admin console at `/api/console`: server-rendered pages and the small JSON API they call.

The host lets these routes through anonymously (a browser cannot hold a function key); the app decides:
`shared.platform.console_auth` lets in the admin Easy Auth signed in with the admin app role (or, on a
developer's machine, a development admin), and every change must come from the console's own origin
with the page's token. Changes go through the same use cases as the admin API under `manage/`. Pages:
`functions.console_ui.pages`; script and styles: `functions/console_ui/static/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.console_ui import pages
from functions.console_ui.pages import Chrome
from shared.domain.mappings import SECTION_MODELS, WorkspaceCreate
from shared.platform.console_auth import (
    ConsolePrincipal,
    check_csrf,
    console_principal,
    cookie_token,
    csrf_cookie,
    csrf_token,
    valid_csrf_token,
)
from shared.platform.errors import AppError, BadRequest, NotFound
from shared.platform.http import handle_errors, json_response, parse_body, read_json
from shared.services import console, metadata, operations
from shared.services import preview as export_preview
from shared.services.root import Services, ServicesProvider
from shared.services.validation import save_section

__all__ = ["STATIC_FILES", "blueprint"]

ANON = func.AuthLevel.ANONYMOUS
_STATIC = Path(__file__).resolve().parent / "console_ui" / "static"
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
_STEP_PAGES = {"sync", "export", "campaign", "users"}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400)


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] | None = Field(default=None, min_length=1, max_length=1000)


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        body, status_code=status, mimetype="text/html", charset="utf-8", headers={**_PAGE_HEADERS, **(headers or {})}
    )


def _base_url(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}/api"


def _optional_body(req: func.HttpRequest, model: type[BaseModel]) -> Any:
    return parse_body(req, model) if (req.get_body() or b"").strip() else model()


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    def _admin(req: func.HttpRequest) -> ConsolePrincipal:
        return console_principal(services().settings, req.headers)

    def _change(req: func.HttpRequest) -> ConsolePrincipal:
        """The admin making a change, after the same-origin and token checks."""
        principal = _admin(req)
        check_csrf(services().settings, principal, req.headers)
        return principal

    def _page(req: func.HttpRequest, render: Any) -> func.HttpResponse:
        """Sign-in, the page's token (reused while valid), then `render(chrome_args)`; errors as pages."""
        try:
            principal = _admin(req)
        except AppError as exc:
            return _html(pages.error_page(exc.status, exc.message), exc.status)
        settings = services().settings
        token = cookie_token(req.headers)
        fresh = not valid_csrf_token(settings, principal, token)
        token = csrf_token(settings, principal) if fresh or token is None else token
        headers = {"Set-Cookie": csrf_cookie(token, secure=req.url.startswith("https:"))} if fresh else None
        try:
            body = render(principal, token)
        except AppError as exc:
            return _html(pages.error_page(exc.status, exc.message), exc.status, headers)
        return _html(body, headers=headers)

    # ---- pages ---------------------------------------------------------------------------------------------

    @bp.function_name("console_home")
    @bp.route(route="console", methods=["GET"], auth_level=ANON)
    def home(req: func.HttpRequest) -> func.HttpResponse:
        return _page(req, lambda who, token: _workspaces(services(), Chrome(who, token)))

    @bp.function_name("console_pages")
    @bp.route(route="console/{*path}", methods=["GET"], auth_level=ANON)
    def page(req: func.HttpRequest) -> func.HttpResponse:
        parts = [p for p in req.route_params.get("path", "").split("/") if p]
        if len(parts) == 2 and parts[0] == "static":
            return _asset(parts[1])
        return _page(req, lambda who, token: _route(services(), req, parts, who, token))

    # ---- the JSON API the pages call -----------------------------------------------------------------------

    @bp.function_name("console_create_workspace")
    @bp.route(route="console/api/workspaces", methods=["POST"], auth_level=ANON)
    @handle_errors
    def create_workspace(req: func.HttpRequest) -> func.HttpResponse:
        who = _change(req)
        spec = parse_body(req, WorkspaceCreate)
        workspace, api_key = services().store.create_workspace(spec, who.name)
        body = {
            "workspace": workspace.model_dump(mode="json"),
            "api_key": api_key,
            "key_header": workspace.key_header,
            "base_url": _base_url(req),
            "page": f"{pages.ROOT}/workspaces/{workspace.id}",
        }
        return json_response(body, status=201)

    @bp.function_name("console_update_workspace")
    @bp.route(route="console/api/workspaces/{workspace_id}", methods=["PATCH"], auth_level=ANON)
    @handle_errors
    def update_workspace(req: func.HttpRequest) -> func.HttpResponse:
        _change(req)
        store, workspace_id = services().store, req.route_params["workspace_id"]
        store.get_workspace(workspace_id)
        patch = read_json(req)
        updated = store.update_workspace(workspace_id, patch, req.headers.get("if-match"))
        return json_response(
            {"workspace": updated.model_dump(mode="json")}, headers={"ETag": store.workspace_etag(workspace_id)}
        )

    @bp.function_name("console_rotate_key")
    @bp.route(route="console/api/workspaces/{workspace_id}/keys", methods=["POST"], auth_level=ANON)
    @handle_errors
    def rotate_key(req: func.HttpRequest) -> func.HttpResponse:
        _change(req)
        body = _optional_body(req, RotateRequest)
        issued = services().store.rotate_key(req.route_params["workspace_id"], body.grace_seconds)
        expire = issued.previous_keys_expire_at
        return json_response(
            {
                "api_key": issued.api_key,
                "key_id": issued.key_id,
                "previous_keys_expire_at": expire.isoformat() if expire else None,
            },
            status=201,
        )

    @bp.function_name("console_connection_test")
    @bp.route(route="console/api/workspaces/{workspace_id}/connection-test", methods=["POST"], auth_level=ANON)
    @handle_errors
    def connection_test(req: func.HttpRequest) -> func.HttpResponse:
        _change(req)
        reply = metadata.connection_test(services(), req.route_params["workspace_id"])
        return json_response(reply.model_dump(mode="json"))

    @bp.function_name("console_save_mapping")
    @bp.route(route="console/api/workspaces/{workspace_id}/mappings/{section}", methods=["PUT"], auth_level=ANON)
    @handle_errors
    def save_mapping(req: func.HttpRequest) -> func.HttpResponse:
        who = _change(req)
        workspace_id, section = req.route_params["workspace_id"], _section(req)
        document = read_json(req)
        result = save_section(services(), workspace_id, section, document, req.headers.get("if-match"), who.name)
        return json_response(result.reply().model_dump(mode="json"), headers={"ETag": result.saved.etag})

    @bp.function_name("console_restore_mapping")
    @bp.route(
        route="console/api/workspaces/{workspace_id}/mappings/{section}/restore", methods=["POST"], auth_level=ANON
    )
    @handle_errors
    def restore_mapping(req: func.HttpRequest) -> func.HttpResponse:
        who = _change(req)
        body = parse_body(req, RestoreRequest)
        result = console.restore_section(
            services(),
            req.route_params["workspace_id"],
            _section(req),
            body.version,
            req.headers.get("if-match"),
            who.name,
        )
        return json_response(result.reply().model_dump(mode="json"), headers={"ETag": result.saved.etag})

    @bp.function_name("console_retry")
    @bp.route(route="console/api/workspaces/{workspace_id}/retry", methods=["POST"], auth_level=ANON)
    @handle_errors
    def retry(req: func.HttpRequest) -> func.HttpResponse:
        _change(req)
        body = _optional_body(req, RetryRequest)
        outcome = operations.retry_failed(services(), req.route_params["workspace_id"], keys=body.keys)
        return json_response(outcome, status=202)

    @bp.function_name("console_reconcile")
    @bp.route(route="console/api/workspaces/{workspace_id}/reconcile", methods=["POST"], auth_level=ANON)
    @handle_errors
    def reconcile(req: func.HttpRequest) -> func.HttpResponse:
        who = _change(req)
        return json_response(console.run_reconciliation(services(), req.route_params["workspace_id"], who.name))

    @bp.function_name("console_replay_dead_letters")
    @bp.route(route="console/api/queues/{queue}/replay", methods=["POST"], auth_level=ANON)
    @handle_errors
    def replay(req: func.HttpRequest) -> func.HttpResponse:
        _change(req)
        settings, queue = services().settings, req.route_params["queue"]
        if queue not in (settings.writes_queue, settings.campaign_queue):
            raise NotFound(f"queue: no queue named '{queue[:64]}'")
        return json_response({"queue": queue, "replayed": operations.replay_dead_letters(services(), queue)})

    return bp


def _section(req: func.HttpRequest) -> str:
    section = str(req.route_params.get("section", ""))
    if section not in SECTION_MODELS:
        raise NotFound(f"section: must be one of {', '.join(SECTION_MODELS)}", code="unknown_section")
    return section


def _asset(name: str) -> func.HttpResponse:
    if name not in STATIC_FILES:
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain")
    return func.HttpResponse(
        (_STATIC / name).read_bytes(),
        mimetype=STATIC_FILES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# ---- pages, by path ------------------------------------------------------------------------------------


def _workspaces(services: Services, chrome: Chrome) -> str:
    return pages.workspaces_page(chrome, services.store.list_workspaces())


def _route(services: Services, req: func.HttpRequest, parts: list[str], who: ConsolePrincipal, token: str) -> str:
    if parts in ([], ["workspaces"]):
        return _workspaces(services, Chrome(who, token))
    if len(parts) not in (2, 3) or parts[0] != "workspaces":
        raise NotFound("no console page at this address")
    workspace = services.store.get_workspace(parts[1])
    step = parts[2] if len(parts) == 3 else ""
    chrome = Chrome(who, token, workspace, step)
    if step == "":
        etag = services.store.workspace_etag(workspace.id)
        return pages.workspace_page(chrome, workspace, _base_url(req), etag)
    if step in _STEP_PAGES:
        render = {
            "sync": pages.sync_page,
            "export": pages.export_page,
            "campaign": pages.campaign_page,
            "users": pages.users_page,
        }[step]
        return render(chrome, console.mapping_page(services, workspace.id, step))
    if step == "preview":
        return _preview(services, req, chrome)
    if step == "health":
        return pages.health_page(chrome, console.sync_health_page(services, workspace.id))
    raise NotFound("no console page at this address")


def _preview_request(form: dict[str, str]) -> export_preview.PreviewRequest:
    """The preview form (a GET: a dry run changes nothing) as the admin API's request; 400 naming the field."""
    try:
        record = json.loads(form.get("record") or "{}")
        values = json.loads(form.get("exportValues") or "{}")
    except ValueError as exc:
        raise BadRequest(f"record: not valid JSON ({exc})") from None
    crm_id = (form.get("crmId") or "").strip()
    request: dict[str, Any] = {"kind": form.get("kind", "contact"), "exportValues": values}
    if crm_id:
        request["crmIds"] = [crm_id]
        record = {k: v for k, v in record.items() if k != "externalId"} if isinstance(record, dict) else record
    request["records"] = [record] if record else []
    try:
        return export_preview.PreviewRequest.model_validate(request)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "record"
        raise BadRequest(f"{where}: {str(problem['msg']).removeprefix('Value error, ')}") from None


def _preview(services: Services, req: func.HttpRequest, chrome: Chrome) -> str:
    form = {k: v for k, v in req.params.items()}
    if form.get("run") != "1":
        return pages.preview_page(chrome, form, None, None)
    assert chrome.workspace is not None
    try:
        request = _preview_request(form)
        reply = export_preview.preview(services.workspace(chrome.workspace.id), request)
    except AppError as exc:
        return pages.preview_page(chrome, form, None, exc.message)
    return pages.preview_page(chrome, form, reply.records, None)
