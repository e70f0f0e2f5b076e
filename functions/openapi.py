"""`GET /api/openapi.json`: the OpenAPI 3.1 document of both HTTP surfaces (anonymous: it holds no secret).

The document is generated from `shared.services.api_catalog` (the pydantic models the handlers validate
with, and the reply models), once per app, on the first call. Models defined in the handlers' own modules
are handed to the catalog from here (`HANDLER_MODELS`): the catalog, a layer below, names them.

`python -m functions.openapi` prints the document; `--markdown` prints docs/admin-api.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from functions import admin_operations, genesy_campaign_events
from shared.platform.http import handle_errors, json_response
from shared.services import api_catalog
from shared.services.root import ServicesProvider

__all__ = ["HANDLER_MODELS", "admin_reference", "blueprint", "document"]

HANDLER_MODELS: Mapping[str, type[BaseModel]] = {
    "CampaignEventsRequest": genesy_campaign_events.CampaignEventsRequest,
    "CampaignEventsAccepted": genesy_campaign_events.CampaignEventsAccepted,
    "SyncLogQuery": admin_operations.SyncLogQuery,
    "ReconcileRequest": admin_operations.ReconcileRequest,
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's HTTP operations."""
    return api_catalog.document(HANDLER_MODELS)


def admin_reference() -> str:
    """docs/admin-api.md."""
    return api_catalog.admin_reference(HANDLER_MODELS)


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's function; it needs none of the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]
    built: dict[str, Any] = {}

    @bp.function_name("openapi_document")
    @bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    @handle_errors
    def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
        if not built:
            built.update(document())
        return json_response(built, headers={"Cache-Control": "public, max-age=300"})

    return bp


def main(argv: list[str]) -> int:
    text = admin_reference() if "--markdown" in argv else json.dumps(document(), indent=2, ensure_ascii=False) + "\n"
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
