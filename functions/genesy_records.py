"""Genesy Custom CRM endpoints for companies, contacts, associations, users and health (anonymous
auth level: the workspace key in the header Genesy was told to use is checked by us)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import azure.functions as func

from shared.domain.genesy_models import (
    AssociationsRequest,
    CompaniesRequest,
    CompaniesUpdateRequest,
    ContactsRequest,
    ContactsSyncRequest,
    ContactsUpdateRequest,
    IdsRequest,
)
from shared.platform.http import genesy_call, json_response, parse_body
from shared.services import associations as links
from shared.services import export
from shared.services.root import ServicesProvider

ANON = func.AuthLevel.ANONYMOUS


def _no_body_on_head(fn: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[..., func.HttpResponse]:
    """HEAD answers what GET would (status and headers) without the body."""

    @functools.wraps(fn)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        response = fn(req)
        if req.method.upper() != "HEAD":
            return response
        return func.HttpResponse(
            status_code=response.status_code,
            headers=dict(response.headers),
            mimetype=response.mimetype,
            charset=response.charset,
        )

    return wrapper


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="health", methods=["GET", "HEAD"], auth_level=ANON)
    @_no_body_on_head
    @genesy_call
    def health(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        return json_response({"status": "ok", "workspace": ctx.workspace.name})

    @bp.route(route="companies", methods=["POST"], auth_level=ANON)
    @genesy_call
    def companies_create(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, CompaniesRequest)
        records = [c.fields() for c in body.companies]
        return json_response({"results": export.accept_export(ctx, "company", records, body.exportValues)})

    @bp.route(route="companies", methods=["PUT"], auth_level=ANON)
    @genesy_call
    def companies_update(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, CompaniesUpdateRequest)
        records = [c.fields() for c in body.companies]
        return json_response({"results": export.accept_update(ctx, "company", records, body.exportValues)})

    @bp.route(route="companies/sync", methods=["POST"], auth_level=ANON)
    @genesy_call
    def companies_sync(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, CompaniesRequest)
        return json_response({"results": export.sync_records(ctx, "company", [c.fields() for c in body.companies])})

    @bp.route(route="companies/batch", methods=["POST"], auth_level=ANON)
    @genesy_call
    def companies_batch(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, IdsRequest)
        return json_response({"results": export.batch_get(ctx, "company", body.ids)})

    @bp.route(route="contacts", methods=["POST"], auth_level=ANON)
    @genesy_call
    def contacts_create(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, ContactsRequest)
        records = [c.fields() for c in body.contacts]
        return json_response({"results": export.accept_export(ctx, "contact", records, body.exportValues)})

    @bp.route(route="contacts", methods=["PUT"], auth_level=ANON)
    @genesy_call
    def contacts_update(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, ContactsUpdateRequest)
        records = [c.fields() for c in body.contacts]
        return json_response({"results": export.accept_update(ctx, "contact", records, body.exportValues)})

    @bp.route(route="contacts/sync", methods=["POST"], auth_level=ANON)
    @genesy_call
    def contacts_sync(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, ContactsSyncRequest)
        return json_response({"results": export.sync_records(ctx, "contact", [c.fields() for c in body.contacts])})

    @bp.route(route="contacts/batch", methods=["POST"], auth_level=ANON)
    @genesy_call
    def contacts_batch(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, IdsRequest)
        return json_response({"results": export.batch_get(ctx, "contact", body.ids)})

    @bp.route(route="associations", methods=["POST"], auth_level=ANON)
    @genesy_call
    def associations(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, AssociationsRequest)
        return json_response(links.accept_associations(ctx, [p.model_dump() for p in body.associations]))

    @bp.route(route="users", methods=["GET"], auth_level=ANON)
    @genesy_call
    def users(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        return json_response(export.list_users(ctx))

    return bp
