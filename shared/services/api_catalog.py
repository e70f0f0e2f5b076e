"""The catalog of the app's HTTP operations, from which the OpenAPI 3.1 document is generated.

One `Operation` per (method, route) the function app registers: the Genesy Custom CRM surface
(`functions/genesy_*.py`, anonymous auth level, our own key in `X-API-Key` or the header the workspace
configured), the admin surface under `manage/` (`functions/admin_*.py`, function key) and the document
itself (`functions/openapi.py`). Request bodies are the pydantic models the handlers validate with
(`shared.domain.genesy_models`, `shared.domain.mappings`, `shared.services.preview`, ...); replies are
the models the handlers dump (`shared.services.validation`, `.metadata`, `.preview`) or, for replies the
handlers build as dicts, `shared.domain.replies`. Where a handler checks a body by hand, the model here
describes what it accepts (`WorkspacePatch`, `RotateKeyRequest`, `MappingPut`).

Operations Genesy does not document (HEAD /health, the batch reads, GET /activities/{id}, the admin
surface, the document) carry `x-genesy-dynamics-extension: true`.

`tests/functions/test_openapi.py` fails for any registered HTTP function missing here (or described here
but not registered). `python -m functions.openapi` prints the document;
`python -m functions.openapi --markdown > docs/admin-api.md` regenerates the admin reference.

Models defined in a handler's module (which this layer cannot import) are named here as strings and
supplied by `functions.openapi`; a model local to a handler function is mirrored (`RetryRequest`) and
the tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from shared.domain.genesy_models import (
    ActivityCreate,
    AssociationsRequest,
    CompaniesRequest,
    CompaniesUpdateRequest,
    ContactsRequest,
    ContactsSyncRequest,
    ContactsUpdateRequest,
    IdsRequest,
    TaskCreate,
    TaskPatch,
    TasksBatchPatch,
)
from shared.domain.mappings import SECTION_MODELS, WorkspaceCreate, default_section
from shared.domain.replies import (
    Activity,
    AllMappings,
    AssociationsReply,
    BatchGetReply,
    ErrorBody,
    ExportReply,
    HealthReply,
    KeyIssued,
    MappingHistory,
    MappingSection,
    OpenApiDocument,
    ReconcileReply,
    ReplayOutcome,
    RetryOutcome,
    SectionDocument,
    SyncHealth,
    SyncLog,
    SyncReply,
    Task,
    TaskList,
    UpdateReply,
    UserList,
    WorkspaceCreated,
    WorkspaceList,
    WorkspaceReply,
)
from shared.platform.openapi import (
    ApiInfo,
    Operation,
    Param,
    Reply,
    build_document,
    markdown_operations,
    markdown_table,
)
from shared.services.metadata import TABLES, ConnectionTestReply, TableMetadataReply, UsersReply
from shared.services.preview import IdentitiesReply, PreviewReply, PreviewRequest
from shared.services.validation import InvalidMappingReply, SavedSectionReply, ValidationReply
from shared.services.webhooks import (
    DeliveriesQuery,
    ReprocessReply,
    ReprocessRequest,
    WebhookAccepted,
    WebhookBody,
    WebhookDeliveries,
    WebhookSecretIssued,
    WebhookSecretRequest,
)
from shared.storage.ledger import LedgerStatus

__all__ = [
    "ADMIN_TAGS",
    "CONSOLE_ROUTES",
    "GENESY_TAGS",
    "INFO",
    "MAX_GRACE_SECONDS",
    "OPERATIONS",
    "SYNC_LOG_KINDS",
    "MappingPut",
    "RetryRequest",
    "RotateKeyRequest",
    "SectionEnvelope",
    "WorkspacePatch",
    "admin_reference",
    "document",
    "named_models",
]

# Registered HTTP functions the document leaves out on purpose: the admin console (`functions/console.py`,
# docs/console.md). Its pages are HTML, and its JSON calls are the page's own, same-origin, signed in through
# Easy Auth with a page token — not an API for other clients. They call the same use cases as the admin API
# under `manage/`, which is the documented one. tests/functions/test_openapi.py skips exactly these routes.
_CONSOLE_REASON = "admin console (docs/console.md): the page's own same-origin calls, not an API for other clients"
CONSOLE_ROUTES: dict[str, str] = {
    route: _CONSOLE_REASON
    for route in (
        "console",
        "console/{*path}",
        "console/api/workspaces",
        "console/api/workspaces/{workspace_id}",
        "console/api/workspaces/{workspace_id}/keys",
        "console/api/workspaces/{workspace_id}/connection-test",
        "console/api/workspaces/{workspace_id}/mappings/{section}",
        "console/api/workspaces/{workspace_id}/mappings/{section}/restore",
        "console/api/workspaces/{workspace_id}/retry",
        "console/api/workspaces/{workspace_id}/reconcile",
        "console/api/queues/{queue}/replay",
    )
}

VERSION = "1.0.0"
SERVER_URL = "/api"  # host.json extensions.http.routePrefix

Requirements = tuple[Mapping[str, list[str]], ...]
GENESY_SECURITY: Requirements = ({"genesyApiKey": []},)
ADMIN_SECURITY: Requirements = ({"functionKey": []}, {"functionKeyQuery": []})
WEBHOOK_SECURITY: Requirements = ({"webhookSecret": []},)
PUBLIC: Requirements = ()

GENESY_TAGS = (
    "Genesy connection",
    "Genesy records",
    "Genesy tasks",
    "Genesy activities",
    "Campaign events",
    "Genesy webhooks",
)
ADMIN_TAGS = ("Admin workspaces", "Admin mappings", "Admin Dynamics", "Admin operations", "Admin webhooks")

# ---------------------------------------------------------------------------------------------
# Bodies checked by hand, or validated by a model local to the handler's module (mirrored here)

MAX_GRACE_SECONDS = 30 * 86_400  # functions.admin_workspaces.MAX_GRACE_SECONDS
SYNC_LOG_KINDS = ("association", "campaign", "company", "contact")  # functions.admin_operations._KINDS


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(name: str) -> tuple[Any, Any]:
    """A field of `WorkspaceCreate`, with its constraints, made optional (absent: unchanged)."""
    return WorkspaceCreate.model_fields[name].rebuild_annotation(), Field(default=None, json_schema_extra=_no_default)


_PATCH_FIELDS: dict[str, Any] = {name: _optional(name) for name in WorkspaceCreate.model_fields}

WorkspacePatch: type[BaseModel] = create_model(
    "WorkspacePatch",
    __config__=ConfigDict(extra="forbid", title="WorkspacePatch"),
    __doc__="The workspace fields to change; the others keep their values. `If-Match` is required.",
    **_PATCH_FIELDS,
)


class RotateKeyRequest(BaseModel):
    """Optional body of a key rotation: how long the older keys stay valid (default: the configured grace)."""

    model_config = ConfigDict(extra="forbid")
    grace_seconds: float | None = Field(default=None, ge=0, le=MAX_GRACE_SECONDS)


class RetryRequest(BaseModel):  # mirrors functions.admin_operations RetryRequest
    model_config = ConfigDict(extra="forbid")
    kind: Literal["contact", "company", "association"] | None = None
    keys: list[str] | None = Field(default=None, max_length=1000)
    statuses: list[Literal["failed", "retrying"]] = Field(default=["failed", "retrying"], min_length=1)


class SectionEnvelope(BaseModel):
    """A `GET` or `PUT` reply sent back as is (functions.admin_mappings `_ENVELOPE`): only its `document` is
    stored."""

    model_config = ConfigDict(extra="forbid")
    section: Any = None
    version: Any = None
    etag: Any = None
    updated_at: Any = None
    updated_by: Any = None
    warnings: Any = None
    document: SectionDocument


class MappingPut(RootModel[SectionDocument | SectionEnvelope]):
    """The section's new document (validated as the section of the path), or a GET reply with it."""


# ---------------------------------------------------------------------------------------------
# Shared pieces

CORRELATION = "X-Correlation-Id"
ETAG = "ETag"

_GENESY_ERRORS: dict[int, str] = {
    400: "The body or a parameter is invalid; `message` and `details` name the field.",
    401: "The API key is missing, unknown, expired, or not in the workspace's header.",
    404: "The record does not exist (or the contact/company the body refers to).",
    500: "Our fault; `message` quotes the correlation id that is in our logs.",
    502: "Dynamics refused the query (usually a mapping naming a missing column).",
    503: "Dynamics did not answer in time; retry later.",
}

_ADMIN_ERRORS: dict[int, str] = {
    400: "The body or a parameter is invalid; `message` and `details` name the field.",
    404: "No such workspace (or section, or queue).",
    412: "`If-Match` is stale: someone else changed it; GET it again.",
    428: "`If-Match` is missing.",
    500: "Our fault; `message` quotes a correlation id.",
    502: "Dynamics refused the query (usually a mapping naming a missing column).",
    503: "Dynamics did not answer in time; retry later.",
}

_ADMIN_401 = Reply("The function key is missing or wrong (`x-functions-key` header or `code` query); no body.")

_GENESY_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"error": "invalid_body", "message": "body: a JSON body is required"},
    401: {"error": "unauthorized", "message": "invalid API key"},
}

_ADMIN_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"error": "invalid_body", "message": "body: a JSON body is required"},
    404: {"error": "workspace_not_found", "message": "workspace '3f2b8c1d9e6a4f7b8c0d1e2f3a4b5c6d' not found"},
    412: {"error": "etag_mismatch", "message": "the campaign mapping was changed by someone else; GET it again"},
    428: {"error": "if_match_required", "message": "If-Match is required: GET it and send its ETag back"},
}

_WORKSPACE_ID = "3f2b8c1d9e6a4f7b8c0d1e2f3a4b5c6d"
_CONTACT_ID = "5074c0a2-020f-5a43-943e-d1358eb61505"
_COMPANY_ID = "9c1e4f7a-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
_TASK_ID = "0b7c6f3e-3c58-4a8e-9d0e-2f1f7d3b9a10"
_ACTIVITY_ID = "6a0d1f2e-7b3c-5d4e-9f8a-1b2c3d4e5f60"
_USER_ID = "d2f1e0c9-8b7a-4c6d-9e5f-4a3b2c1d0e9f"


def _correlation_param() -> Param:
    return Param(
        "x-correlation-id",
        "header",
        "Optional id to follow the call in our logs (letters, digits, dashes; ≤ 64); a new one otherwise. "
        "Every reply carries it back.",
    )


def _genesy(
    method: str,
    route: str,
    operation_id: str,
    summary: str,
    tag: str,
    ok: Mapping[int, Reply],
    errors: Iterable[int],
    **extra: Any,
) -> Operation:
    """A Genesy Custom CRM operation: our API key, a correlation id in and out, `{error, message}` errors."""
    replies = {
        status: Reply(reply.description, reply.model, (CORRELATION, *reply.headers), reply.example)
        for status, reply in ok.items()
    }
    for status in errors:
        replies[status] = Reply(_GENESY_ERRORS[status], ErrorBody, (CORRELATION,), _GENESY_ERROR_EXAMPLES.get(status))
    params = (*extra.pop("params", ()), _correlation_param())
    return Operation(method, route, operation_id, summary, tag, replies, GENESY_SECURITY, params, **extra)


def _admin(
    method: str,
    route: str,
    operation_id: str,
    summary: str,
    tag: str,
    ok: Mapping[int, Reply],
    errors: Iterable[int],
    **extra: Any,
) -> Operation:
    """An admin operation: function key, `{error, message}` errors; always our extension."""
    replies: dict[int, Reply] = {**ok, 401: _ADMIN_401}
    for status in errors:
        replies[status] = Reply(_ADMIN_ERRORS[status], ErrorBody, (), _ADMIN_ERROR_EXAMPLES.get(status))
    return Operation(method, route, operation_id, summary, tag, replies, ADMIN_SECURITY, extension=True, **extra)


def _path(name: str, description: str, example: str, schema: Mapping[str, Any] | None = None) -> Param:
    return Param(name, "path", description, schema or {"type": "string", "minLength": 1}, True, example)


WORKSPACE_ID = _path("workspace_id", "The workspace's id (from `POST /manage/workspaces`).", _WORKSPACE_ID)
SECTION = _path(
    "section",
    "The mapping section.",
    "sync",
    {"type": "string", "enum": list(SECTION_MODELS)},
)
ACTOR = Param("x-actor", "header", "Who makes the change, for the history (default `admin`).", example="jane@acme.com")
WORKSPACE_ID_WEBHOOK = _path(
    "workspace_id", "The workspace's id (in the URL given to Genesy).", "3f2b8c1d9e6a4f7b8c0d1e2f3a4b5c6d"
)
IF_MATCH = Param(
    "if-match", "header", "The ETag of the GET this change starts from (428 without it, 412 when stale).", required=True
)

# ---------------------------------------------------------------------------------------------
# Examples

_WEBHOOK_DELIVERY: dict[str, Any] = {
    "id": "e3b0c44298fc1c149afbf4c8996fb92427ae41e46",
    "event_type": "MESSAGE_REPLIED",
    "event_id": "evt-7f3b",
    "outcome": "parsed",
    "status": "waiting",
    "reason": "no contact in Dynamics matches the delivery yet; reprocess it once the contact is exported",
    "contact_id": None,
    "received_at": "2025-01-10T10:00:01+00:00",
    "processed_at": "2025-01-10T10:00:01+00:00",
    "attempts": 1,
    "truncated": False,
}
_CONTACT = {
    "externalId": "lead-123",
    "email": "jane.doe@acme.com",
    "firstName": "Jane",
    "lastName": "Doe",
    "company": "Acme Inc",
    "title": "CTO",
    "linkedinUrl": "https://linkedin.com/in/janedoe",
    "ownerId": _USER_ID,
    "campaigns": "Q3 outbound",
}
_COMPANY = {
    "externalId": "company-789",
    "name": "Acme Inc",
    "domain": "acme.com",
    "industry": "Technology",
    "numberOfEmployees": 150,
    "linkedinUrl": "https://linkedin.com/company/acme",
}
_TASK = {
    "id": _TASK_ID,
    "subject": "Follow up with Jane",
    "description": "Discuss the pricing proposal",
    "type": "call",
    "ownerId": _USER_ID,
    "dueDate": "2024-01-15T10:00:00Z",
    "contactId": _CONTACT_ID,
    "companyId": None,
    "completed": False,
    "completedAt": None,
}
_ACTIVITY_IN = {
    "type": "LINKEDIN",
    "subject": "[1/3] [FROM Acme Corp] John Smith",
    "body": "Hi Jane, I noticed your company is expanding...",
    "direction": "OUTBOUND",
    "ownerId": _USER_ID,
    "occurredAt": "2024-12-31T10:00:00Z",
    "contactId": _CONTACT_ID,
    "metadata": {"messageId": "linkedin-msg-123", "sequenceIndex": 1, "sequenceMessageCount": 3},
}
_ACTIVITY = {
    "id": _ACTIVITY_ID,
    "type": "LINKEDIN",
    "subject": "[1/3] [FROM Acme Corp] John Smith",
    "direction": "OUTBOUND",
    "occurredAt": "2024-12-31T10:00:00Z",
    "contactId": _CONTACT_ID,
    "companyId": None,
    "dynamicsEntity": "task",
    "created": True,
}
_WORKSPACE = {
    "id": _WORKSPACE_ID,
    "name": "Acme EMEA",
    "environment_url": "https://acme.crm4.dynamics.com",
    "contact_entity": "contact",
    "key_header": "X-API-Key",
    "created_at": "2025-01-10T09:30:00Z",
    "keys": [{"key_id": "a1b2c3d4e5f6", "created_at": "2025-01-10T09:30:00Z", "expires_at": None}],
}
_API_KEY = "gdk_a1b2c3d4e5f6_Zq0yH1k3sV2m9bWcR8tLxP4nE7aJ6gUfD5oQiKvXy0A"
_NOTE = "shown once: store the API key now; only its hash is kept"
_LEDGER_ENTRY = {
    "kind": "contact",
    "operation": "create",
    "key": "lead-123",
    "status": "failed",
    "crmId": _CONTACT_ID,
    "externalId": "lead-123",
    "aliases": [],
    "code": "0x80040237",
    "message": "A record with matching key values already exists.",
    "warnings": [],
    "attempts": 1,
    "retryable": True,
    "at": "2025-01-10T10:02:11+00:00",
}


_TABLE = {"type": "string", "enum": list(TABLES)}
_TABLE_METADATA = {
    "table": "contact",
    "entity_set_name": "contacts",
    "primary_id": "contactid",
    "primary_name": "fullname",
    "columns": [
        {
            "logical_name": "emailaddress1",
            "display_name": "Email",
            "type": "String",
            "max_length": 100,
            "required_level": "None",
            "required": False,
            "options": [],
            "writable_on_create": True,
            "writable_on_update": True,
        }
    ],
}
_CONNECTION_TEST = {
    "ok": True,
    "environment_url": "https://acme.crm4.dynamics.com",
    "whoami": {"user_id": _USER_ID, "business_unit_id": None, "organization_id": None},
    "error": None,
    "tables": [
        {
            "table": "contact",
            "entity_set_name": "contacts",
            "used_for": "contacts",
            "read": "ok",
            "write": "not_checked",
            "message": "read ok; write is checked at the first export (Dynamics grants it per record and role)",
        }
    ],
}
_IDENTITIES = {
    "workspace_id": _WORKSPACE_ID,
    "identities": [
        {
            "identity": "jane.smith@acme.com",
            "role": "owner",
            "lastSeen": "2025-01-10T10:00:00Z",
            "seenIn": [{"source": "contact.ownerEmail", "lastSeen": "2025-01-10T10:00:00Z"}],
            "resolution": "auto-matched",
            "source": "auto-matched",
            "user": {"id": _USER_ID, "name": "Jane Smith", "email": "jane.smith@acme.com"},
        }
    ],
}
_PREVIEW_RECORD = {
    "externalId": "lead-123",
    "crmId": _CONTACT_ID,
    "writesTo": _CONTACT_ID,
    "matched": True,
    "ambiguousIds": [],
    "match": {
        "decision": "matched",
        "record": _CONTACT_ID,
        "rule": {
            "index": 0,
            "conditions": [{"field": "email", "column": "emailaddress1", "normaliser": "email"}],
            "description": "email = emailaddress1 (email)",
        },
        "candidates": [],
    },
    "action": "update",
    "columns": [
        {"column": "jobtitle", "source": "field:title", "current": "Head of IT", "value": "CTO", "decision": "write"},
        {
            "column": "emailaddress1",
            "source": "field:email",
            "current": "jane.doe@acme.com",
            "value": "jane.doe@acme.com",
            "decision": "skip: if_empty",
        },
    ],
    "owner": {"source": "none", "resolution": "none", "user": None},
    "body": {"jobtitle": "CTO"},
    "writes": [{"column": "jobtitle", "value": "CTO", "source": "field:title"}],
    "skipped": [{"column": "emailaddress1", "source": "field:email", "reason": "if_empty"}],
    "warnings": [],
}
_PROBLEM = {
    "section": "campaign",
    "path": "columns.opens",
    "severity": "error",
    "message": "contact has no column 'gd_opens'",
    "fix": "create the column in Dynamics, or map opens to an existing whole-number column",
}


def _section_example(section: str, version: int = 3) -> dict[str, Any]:
    return {
        "section": section,
        "version": version,
        "etag": f"\"{version}.W/datetime'2025-01-10T10%3A00%3A00.000Z'\"",
        "updated_at": "2025-01-10T10:00:00+00:00",
        "updated_by": "jane@acme.com",
        "document": default_section(section).model_dump(mode="json"),
    }


# ---------------------------------------------------------------------------------------------
# The Genesy Custom CRM surface

_ANY_ID = "Our id for it (as returned when it was created)."

GENESY: tuple[Operation, ...] = (
    _genesy(
        "GET",
        "health",
        "health",
        "Check the connection and the API key",
        "Genesy connection",
        {200: Reply("The key is valid.", HealthReply, example={"status": "ok", "workspace": "Acme EMEA"})},
        (401, 500),
        description="Genesy calls it when the Custom CRM is connected: any 2xx means the key works.",
    ),
    _genesy(
        "HEAD",
        "health",
        "health_head",
        "Check the connection and the API key, without a body",
        "Genesy connection",
        {200: Reply("The key is valid (no body).")},
        (),
        description="Answers what GET would (status and headers) without the body; 401 for a bad key.",
        extension=True,
    ),
    _genesy(
        "GET",
        "users",
        "users",
        "List the Dynamics users Genesy can assign as owners",
        "Genesy connection",
        {
            200: Reply(
                "Enabled, interactive users, sorted by name.",
                UserList,
                example=[{"id": _USER_ID, "name": "Jane Smith", "email": "jane.smith@acme.com"}],
            )
        },
        (401, 500, 502, 503),
    ),
    _genesy(
        "POST",
        "companies",
        "companies_create",
        "Export companies (create or match them; ids are fixed now, written by the worker)",
        "Genesy records",
        {
            200: Reply(
                "One crmId per company.",
                ExportReply,
                example={"results": [{"externalId": "company-789", "crmId": _COMPANY_ID}]},
            )
        },
        (400, 401, 500, 502, 503),
        body=CompaniesRequest,
        body_example={"companies": [_COMPANY], "exportValues": {"leadSource": "Genesy"}},
    ),
    _genesy(
        "PUT",
        "companies",
        "companies_update",
        "Update companies by crmId",
        "Genesy records",
        {
            200: Reply(
                "One result per company.", UpdateReply, example={"results": [{"crmId": _COMPANY_ID, "success": True}]}
            )
        },
        (400, 401, 500, 502, 503),
        body=CompaniesUpdateRequest,
        body_example={"companies": [{"crmId": _COMPANY_ID, "industry": "Software"}]},
    ),
    _genesy(
        "POST",
        "companies/sync",
        "companies_sync",
        "Find the companies that exist in Dynamics",
        "Genesy records",
        {
            200: Reply(
                "The companies that matched, with their sync-back properties.",
                SyncReply,
                example={
                    "results": [
                        {"externalId": "company-789", "crmId": _COMPANY_ID, "properties": {"accountTier": "Enterprise"}}
                    ]
                },
            )
        },
        (400, 401, 500, 502, 503),
        body=CompaniesRequest,
        body_example={"companies": [_COMPANY]},
    ),
    _genesy(
        "POST",
        "companies/batch",
        "companies_batch",
        "Read companies by crmId",
        "Genesy records",
        {
            200: Reply(
                "The companies that exist, in Genesy's field names.",
                BatchGetReply,
                example={"results": [{"id": _COMPANY_ID, "name": "Acme Inc", "domain": "acme.com"}]},
            )
        },
        (400, 401, 500, 502, 503),
        body=IdsRequest,
        body_example={"ids": [_COMPANY_ID]},
        extension=True,
    ),
    _genesy(
        "POST",
        "contacts",
        "contacts_create",
        "Export contacts (create or match them; ids are fixed now, written by the worker)",
        "Genesy records",
        {
            200: Reply(
                "One crmId per contact.",
                ExportReply,
                example={"results": [{"externalId": "lead-123", "crmId": _CONTACT_ID}]},
            )
        },
        (400, 401, 500, 502, 503),
        body=ContactsRequest,
        body_example={"contacts": [_CONTACT]},
    ),
    _genesy(
        "PUT",
        "contacts",
        "contacts_update",
        "Update contacts by crmId",
        "Genesy records",
        {
            200: Reply(
                "One result per contact.", UpdateReply, example={"results": [{"crmId": _CONTACT_ID, "success": True}]}
            )
        },
        (400, 401, 500, 502, 503),
        body=ContactsUpdateRequest,
        body_example={"contacts": [{"crmId": _CONTACT_ID, "title": "CEO"}]},
    ),
    _genesy(
        "POST",
        "contacts/sync",
        "contacts_sync",
        "Find the contacts that exist in Dynamics",
        "Genesy records",
        {
            200: Reply(
                "The contacts that matched, with their sync-back properties.",
                SyncReply,
                example={
                    "results": [{"externalId": "lead-123", "crmId": _CONTACT_ID, "properties": {"leadScore": 80}}]
                },
            )
        },
        (400, 401, 500, 502, 503),
        body=ContactsSyncRequest,
        body_example={"contacts": [_CONTACT]},
    ),
    _genesy(
        "POST",
        "contacts/batch",
        "contacts_batch",
        "Read contacts by crmId",
        "Genesy records",
        {
            200: Reply(
                "The contacts that exist, in Genesy's field names.",
                BatchGetReply,
                example={"results": [{"id": _CONTACT_ID, "firstName": "Jane", "email": "jane.doe@acme.com"}]},
            )
        },
        (400, 401, 500, 502, 503),
        body=IdsRequest,
        body_example={"ids": [_CONTACT_ID]},
        extension=True,
    ),
    _genesy(
        "POST",
        "associations",
        "associations",
        "Link contacts to companies",
        "Genesy records",
        {
            200: Reply(
                "What was linked; pairs naming unknown records are in `errors`.",
                AssociationsReply,
                example={"success": True, "created": 1},
            )
        },
        (400, 401, 500),
        body=AssociationsRequest,
        body_example={"associations": [{"contactCRMId": _CONTACT_ID, "companyCRMId": _COMPANY_ID}]},
    ),
    _genesy(
        "POST",
        "tasks",
        "tasks_create",
        "Create a task in Dynamics",
        "Genesy tasks",
        {201: Reply("The task as stored.", Task, example=_TASK)},
        (400, 401, 404, 500, 502, 503),
        body=TaskCreate,
        body_example={
            "subject": "Follow up with Jane",
            "description": "Discuss the pricing proposal",
            "type": "call",
            "ownerId": _USER_ID,
            "dueDate": "2024-01-15T10:00:00Z",
            "contactId": _CONTACT_ID,
        },
    ),
    _genesy(
        "POST",
        "tasks/batch",
        "tasks_batch_get",
        "Read tasks by id",
        "Genesy tasks",
        {200: Reply("The tasks that exist, in the order asked (a bare array).", TaskList, example=[_TASK])},
        (400, 401, 500, 502, 503),
        body=IdsRequest,
        body_example={"ids": [_TASK_ID]},
    ),
    _genesy(
        "PATCH",
        "tasks/batch",
        "tasks_batch_patch",
        "Complete (or reopen) tasks by id",
        "Genesy tasks",
        {
            200: Reply(
                "The updated tasks (a bare array).",
                TaskList,
                example=[{**_TASK, "completed": True, "completedAt": "2024-01-15T11:00:00Z"}],
            )
        },
        (400, 401, 500, 502, 503),
        body=TasksBatchPatch,
        body_example={"ids": [_TASK_ID], "completed": True},
    ),
    _genesy(
        "GET",
        "tasks/{id}",
        "tasks_get",
        "Read a task",
        "Genesy tasks",
        {200: Reply("The task.", Task, example=_TASK)},
        (401, 404, 500, 502, 503),
        params=(_path("id", _ANY_ID, _TASK_ID),),
    ),
    _genesy(
        "PATCH",
        "tasks/{id}",
        "tasks_patch",
        "Update, complete or reopen a task",
        "Genesy tasks",
        {
            200: Reply(
                "The task as stored afterwards.",
                Task,
                example={**_TASK, "completed": True, "completedAt": "2024-01-15T11:00:00Z"},
            )
        },
        (400, 401, 404, 500, 502, 503),
        params=(_path("id", _ANY_ID, _TASK_ID),),
        body=TaskPatch,
        body_example={"completed": True},
    ),
    _genesy(
        "POST",
        "activities",
        "activities_create",
        "Log an activity (an e-mail, a LinkedIn message, ...) once",
        "Genesy activities",
        {
            201: Reply("Logged.", Activity, example=_ACTIVITY),
            200: Reply(
                "Logged before (a repeat of the same message): the first one.",
                Activity,
                example={**_ACTIVITY, "created": False},
            ),
        },
        (400, 401, 404, 500, 502, 503),
        body=ActivityCreate,
        body_example=_ACTIVITY_IN,
    ),
    _genesy(
        "GET",
        "activities/{id}",
        "activities_get",
        "Read an activity logged through this workspace",
        "Genesy activities",
        {200: Reply("The activity as first answered.", Activity, example={**_ACTIVITY, "created": False})},
        (401, 404, 500),
        params=(_path("id", _ANY_ID, _ACTIVITY_ID),),
        extension=True,
    ),
    _genesy(
        "POST",
        "campaign-events",
        "campaign_events",
        "Queue campaign events (the `campaign-updates` contract over HTTPS)",
        "Campaign events",
        {202: Reply("Queued for the campaign worker.", "CampaignEventsAccepted", example={"accepted": 1})},
        (400, 401, 500),
        body="CampaignEventsRequest",
        body_example={
            "events": [
                {
                    "contact_id": _CONTACT_ID,
                    "campaign": "Q3 outbound",
                    "event": "open",
                    "step": 1,
                    "step_count": 3,
                    "occurred_at": "2025-01-10T10:00:00Z",
                    "event_id": "esp-evt-8812",
                }
            ]
        },
        description="For integrators without a Service Bus client. The workspace comes from the key: an event "
        "may leave `workspace_id` out; naming another workspace is a 400.",
        extension=True,
    ),
    Operation(
        "POST",
        "webhooks/genesy/{workspace_id}",
        "genesy_webhook",
        "Receive a Genesy conversation-events webhook delivery",
        "Genesy webhooks",
        {
            202: Reply(
                "Stored and processed (or a repeat of a delivery already processed: `duplicate`). `status`: "
                "`processed`, `waiting` (no contact matches yet), `unparsed`, `ignored` or `failed`.",
                WebhookAccepted,
                (CORRELATION,),
                {"accepted": True, "duplicate": False, "status": "processed"},
            ),
            401: Reply(
                "The `X-Webhook-Secret` is missing or wrong, or the workspace is unknown; nothing is stored.",
                ErrorBody,
                (CORRELATION,),
                {"error": "unauthorized", "message": "invalid webhook secret"},
            ),
            500: Reply(_GENESY_ERRORS[500], ErrorBody, (CORRELATION,)),
            503: Reply(
                "Dynamics did not answer in time: the delivery is stored as `failed`; Genesy's retry, or a "
                "reprocess, runs it again.",
                ErrorBody,
                (CORRELATION,),
            ),
        },
        WEBHOOK_SECURITY,
        (WORKSPACE_ID_WEBHOOK, _correlation_param()),
        body=WebhookBody,
        body_example={
            "eventType": "EMAIL_SENT",
            "eventId": "evt-7f3a",
            "timestamp": "2025-01-10T10:00:00Z",
            "contact": {"email": "jane.doe@acme.com", "firstName": "Jane", "lastName": "Doe"},
            "campaign": {"id": 123, "name": "Q3 outbound"},
            "step": 1,
            "totalSteps": 3,
            "messageId": "email-msg-991",
        },
        description="The URL given to Genesy when subscribing (`POST https://openapi.genesy.ai/v1/webhooks`, "
        "with the secret from `POST /manage/workspaces/{workspace_id}/webhook-secret`). See "
        "docs/genesy-webhooks.md.",
        extension=True,
    ),
)

# ---------------------------------------------------------------------------------------------
# The admin surface

_MAPPINGS = "manage/workspaces/{workspace_id}/mappings"

ADMIN: tuple[Operation, ...] = (
    _admin(
        "POST",
        "manage/workspaces",
        "manage_create_workspace",
        "Create a workspace and its first API key",
        "Admin workspaces",
        {
            201: Reply(
                "Created; the API key is shown this once.",
                WorkspaceCreated,
                example={"workspace": _WORKSPACE, "api_key": _API_KEY, "note": _NOTE},
            )
        },
        (400, 500),
        params=(ACTOR,),
        body=WorkspaceCreate,
        body_example={"name": "Acme EMEA", "environment_url": "https://acme.crm4.dynamics.com"},
    ),
    _admin(
        "GET",
        "manage/workspaces",
        "manage_list_workspaces",
        "List the workspaces",
        "Admin workspaces",
        {200: Reply("Every workspace, oldest first.", WorkspaceList, example={"workspaces": [_WORKSPACE]})},
        (500,),
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}",
        "manage_get_workspace",
        "Read a workspace",
        "Admin workspaces",
        {
            200: Reply(
                "The workspace; `ETag` is what an update sends back as `If-Match`.",
                WorkspaceReply,
                (ETAG,),
                {"workspace": _WORKSPACE},
            )
        },
        (404, 500),
        params=(WORKSPACE_ID,),
    ),
    _admin(
        "PATCH",
        "manage/workspaces/{workspace_id}",
        "manage_update_workspace",
        "Change a workspace's name, environment, contact entity or key header",
        "Admin workspaces",
        {
            200: Reply(
                "The workspace as changed, with its new `ETag`.",
                WorkspaceReply,
                (ETAG,),
                {"workspace": {**_WORKSPACE, "key_header": "X-Genesy-Key"}},
            )
        },
        (400, 404, 412, 428, 500),
        params=(WORKSPACE_ID, IF_MATCH),
        body=WorkspacePatch,
        body_example={"key_header": "X-Genesy-Key"},
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/keys",
        "manage_rotate_key",
        "Issue a new API key; older keys expire after a grace period",
        "Admin workspaces",
        {
            201: Reply(
                "The new key, shown this once.",
                KeyIssued,
                example={
                    "api_key": _API_KEY,
                    "key_id": "a1b2c3d4e5f6",
                    "previous_keys_expire_at": "2025-01-11T09:30:00+00:00",
                    "note": _NOTE,
                },
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        body=RotateKeyRequest,
        body_required=False,
        body_example={"grace_seconds": 86400},
    ),
    _admin(
        "GET",
        _MAPPINGS,
        "manage_all_mappings",
        "Read the four mapping sections",
        "Admin mappings",
        {
            200: Reply(
                "Every section, as `GET …/mappings/{section}` answers it.",
                AllMappings,
                example={
                    "workspace_id": _WORKSPACE_ID,
                    "sections": {
                        "users": _section_example("users", 0)
                        | {"etag": '"0.new"', "updated_at": None, "updated_by": None}
                    },
                },
            )
        },
        (404, 500),
        params=(WORKSPACE_ID,),
    ),
    _admin(
        "GET",
        _MAPPINGS + "/{section}",
        "manage_get_mapping",
        "Read a mapping section",
        "Admin mappings",
        {
            200: Reply(
                "The section; `ETag` is what a PUT sends back as `If-Match`.",
                MappingSection,
                (ETAG,),
                _section_example("campaign"),
            )
        },
        (404, 500),
        params=(WORKSPACE_ID, SECTION),
        description='A section never written is its default document (version 0, ETag `"0.new"`). A stored '
        "section that no longer validates answers 500 `stored_mapping_invalid`: PUT a corrected one.",
    ),
    _admin(
        "PUT",
        _MAPPINGS + "/{section}",
        "manage_put_mapping",
        "Replace a mapping section",
        "Admin mappings",
        {
            200: Reply(
                "The section as stored, with its new `ETag`, and the problems it was saved with (warnings).",
                SavedSectionReply,
                (ETAG,),
                {**_section_example("campaign", 4), "warnings": []},
            ),
            422: Reply(
                "The section has errors against the environment's metadata or the other sections: nothing saved.",
                InvalidMappingReply,
                example={
                    "error": "invalid_mapping",
                    "message": "the campaign mapping was not saved: columns.opens: contact has no column 'gd_opens'",
                    "problems": [_PROBLEM],
                },
            ),
        },
        (400, 404, 412, 428, 500),
        params=(WORKSPACE_ID, SECTION, IF_MATCH, ACTOR),
        body=MappingPut,
        body_example=default_section("campaign").model_dump(mode="json"),
        description="The body is the section's document, or a GET reply sent back as is (its `document` is "
        "stored). It is checked against the environment's live metadata and the other sections first.",
    ),
    _admin(
        "GET",
        _MAPPINGS + "/{section}/history",
        "manage_mapping_history",
        "A mapping section's changes, newest first",
        "Admin mappings",
        {
            200: Reply(
                "The changes.",
                MappingHistory,
                example={
                    "section": "users",
                    "entries": [
                        {
                            "section": "users",
                            "version": 1,
                            "changed_at": "2025-01-10T10:00:00+00:00",
                            "changed_by": "jane@acme.com",
                            "old": {},
                            "new": {**default_section("users").model_dump(mode="json"), "default_owner_id": _USER_ID},
                        }
                    ],
                },
            )
        },
        (400, 404, 500),
        params=(
            WORKSPACE_ID,
            SECTION,
            Param(
                "limit",
                "query",
                "At most this many changes (1-500, default 50).",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
            ),
        ),
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/metadata/{table}",
        "manage_table_metadata",
        "A Dynamics table's columns, as mappings name them",
        "Admin Dynamics",
        {200: Reply("The table and its columns.", TableMetadataReply, example=_TABLE_METADATA)},
        (400, 404, 500, 502, 503),
        params=(
            WORKSPACE_ID,
            _path("table", "The table: the contact table (contact or lead) or account.", "contact", _TABLE),
            Param(
                "refresh",
                "query",
                "`true` reads the metadata again instead of the cached copy.",
                {"type": "boolean", "default": False},
            ),
        ),
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/users",
        "manage_workspace_users",
        "The environment's enabled users (for the users mapping)",
        "Admin Dynamics",
        {
            200: Reply(
                "Enabled, interactive users.",
                UsersReply,
                example={"users": [{"id": _USER_ID, "name": "Jane Smith", "email": "jane.smith@acme.com"}]},
            )
        },
        (404, 500, 502, 503),
        params=(WORKSPACE_ID,),
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/connection-test",
        "manage_connection_test",
        "Test the connection: WhoAmI and a read of every table the mappings use",
        "Admin Dynamics",
        {
            200: Reply(
                "What worked and what failed (a failure is reported here, not as 5xx).",
                ConnectionTestReply,
                example=_CONNECTION_TEST,
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        description="Takes no body (one sent is ignored, but must be JSON).",
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/identities",
        "manage_identities",
        "The Genesy identities seen in exports and activities, and whom each resolves to now",
        "Admin Dynamics",
        {200: Reply("Every identity seen.", IdentitiesReply, example=_IDENTITIES)},
        (404, 500, 502, 503),
        params=(WORKSPACE_ID,),
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/sync-health",
        "manage_sync_health",
        "Counts of records by kind and status, and those that need attention",
        "Admin operations",
        {
            200: Reply(
                "The workspace's sync health.",
                SyncHealth,
                example={
                    "workspace_id": _WORKSPACE_ID,
                    "counts": {"contact": {"created": 120, "failed": 1}},
                    "attention": [_LEDGER_ENTRY],
                },
            )
        },
        (404, 500),
        params=(WORKSPACE_ID,),
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/sync-log",
        "manage_sync_log",
        "The ledger: each record's latest outcome, newest first",
        "Admin operations",
        {200: Reply("A page of entries.", SyncLog, example={"entries": [_LEDGER_ENTRY], "next": None})},
        (400, 404, 500),
        params=(
            WORKSPACE_ID,
            Param("status", "query", "Only this status.", {"type": "string", "enum": sorted(get_args(LedgerStatus))}),
            Param("kind", "query", "Only this kind.", {"type": "string", "enum": list(SYNC_LOG_KINDS)}),
        ),
        query="SyncLogQuery",
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/reconcile",
        "manage_reconcile",
        "Reconcile now: merges and deletions in Dynamics, ledger verification, waiting work (what the timer does)",
        "Admin operations",
        {
            200: Reply(
                "The run's report (also kept as sync health's `last_reconciliation`).",
                ReconcileReply,
                example={
                    "workspace_id": _WORKSPACE_ID,
                    "status": "completed",
                    "started": "2026-11-29T10:00:00+00:00",
                    "finished": "2026-11-29T10:00:02+00:00",
                    "requeued": 2,
                    "failed": 1,
                    "changes": {"tables": {"contact": {"mode": "change_tracking", "changed": 3, "merged": 1,
                                                       "deleted": 1}}},
                    "verification": {"since": "2026-11-29T09:45:00+00:00", "until": "2026-11-29T10:00:00+00:00",
                                     "checked": 48, "missing": 1, "requeued": 1, "left_failed": 0, "unchecked": 0},
                    "campaign_values": {"waiting": 1, "written": 1},
                    "transient_retries": {"requeued": 0, "permanent": 1, "waiting": 0, "gave_up": 0},
                    "dataverse_requests": 9,
                    "throttled": 0,
                    "request_budget": 300,
                    "skipped": [],
                },
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        body="ReconcileRequest",
        body_required=False,
        body_example={"stale_after_seconds": 600},
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/sync-log/retry",
        "manage_sync_retry",
        "Queue failed records again",
        "Admin operations",
        {202: Reply("Queued.", RetryOutcome, example={"requeued": 3, "not_retryable": 0})},
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        body=RetryRequest,
        body_required=False,
        body_example={"kind": "contact", "statuses": ["failed"]},
    ),
    _admin(
        "POST",
        "manage/queues/{queue}/replay-dead-letters",
        "manage_replay_dead_letters",
        "Move a queue's dead-lettered messages back onto it",
        "Admin operations",
        {200: Reply("How many were replayed.", ReplayOutcome, example={"queue": "genesy-writes", "replayed": 2})},
        (404, 500),
        params=(
            _path(
                "queue",
                "The queue: the writes or the campaign queue (by default `genesy-writes`, `campaign-updates`).",
                "genesy-writes",
            ),
        ),
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/preview",
        "manage_preview_export",
        "Dry-run an export: the match and the exact body each record would get",
        "Admin operations",
        {
            200: Reply(
                "One entry per record; nothing is written.",
                PreviewReply,
                example={"records": [_PREVIEW_RECORD]},
            )
        },
        (400, 404, 500, 502, 503),
        params=(WORKSPACE_ID,),
        body=PreviewRequest,
        body_example={
            "kind": "contact",
            "records": [{"externalId": "lead-123", "email": "jane.doe@acme.com", "title": "CTO"}],
        },
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/validate",
        "manage_validate_mappings",
        "Check the stored mappings against the environment's live metadata",
        "Admin operations",
        {
            200: Reply(
                "What would not work (no errors when `valid`; warnings may remain).",
                ValidationReply,
                example={"valid": False, "problems": [_PROBLEM]},
            )
        },
        (400, 404, 500, 502, 503),
        params=(WORKSPACE_ID,),
        description="Takes no body (one sent is ignored, but must be JSON).",
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/webhook-secret",
        "manage_webhook_secret",
        "Issue the secret Genesy sends in `X-Webhook-Secret`; older secrets expire after a grace period",
        "Admin webhooks",
        {
            201: Reply(
                "The new secret, shown this once, and where Genesy delivers.",
                WebhookSecretIssued,
                example={
                    "secret": "gdw_3q2VtQw0m8Zr7xg1pJf4c6YbH2sNn9LkD5aE0uWiTqo",
                    "url_path": "/api/webhooks/genesy/" + _WORKSPACE_ID,
                    "header": "X-Webhook-Secret",
                    "previous_secrets_expire_at": None,
                    "note": "shown once: give it to Genesy as the webhook subscription's secret; only its hash is kept",
                },
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        body=WebhookSecretRequest,
        body_required=False,
        body_example={"grace_seconds": 86400},
    ),
    _admin(
        "GET",
        "manage/workspaces/{workspace_id}/webhook-deliveries",
        "manage_webhook_deliveries",
        "List the webhook deliveries received (newest first)",
        "Admin webhooks",
        {
            200: Reply(
                "Each delivery's event, parse outcome, status and reason (bodies are kept, not shown).",
                WebhookDeliveries,
                example={"workspace_id": _WORKSPACE_ID, "deliveries": [_WEBHOOK_DELIVERY]},
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        query=DeliveriesQuery,
    ),
    _admin(
        "POST",
        "manage/workspaces/{workspace_id}/webhook-deliveries/reprocess",
        "manage_webhook_reprocess",
        "Run stored webhook deliveries through the current parser again",
        "Admin webhooks",
        {
            200: Reply(
                "What each delivery came to.",
                ReprocessReply,
                example={
                    "reprocessed": 1,
                    "results": [{"id": _WEBHOOK_DELIVERY["id"], "status": "processed", "reason": None}],
                },
            )
        },
        (400, 404, 500),
        params=(WORKSPACE_ID,),
        body=ReprocessRequest,
        body_example={"status": "waiting"},
        description="By id (`ids`), or every delivery in a status (`unparsed`, `waiting`, `failed`), oldest "
        "first; effects are idempotent (campaign events and activities are keyed by the event).",
    ),
)

META: tuple[Operation, ...] = (
    Operation(
        "GET",
        "openapi.json",
        "openapi_document",
        "This document (OpenAPI 3.1)",
        "Meta",
        {200: Reply("The OpenAPI document of every HTTP operation of the app.", OpenApiDocument)},
        PUBLIC,
        extension=True,
    ),
)

OPERATIONS: tuple[Operation, ...] = (*GENESY, *ADMIN, *META)

INFO = ApiInfo(
    title="genesy-dynamics",
    version=VERSION,
    description=(
        "Genesy's Custom CRM API, implemented on Azure Functions in front of Microsoft Dynamics 365, and the "
        "admin API that configures it. Operations beyond Genesy's documented API carry "
        "`x-genesy-dynamics-extension: true`."
    ),
    server_url=SERVER_URL,
    tags={
        "Genesy connection": "Genesy: health check and owners.",
        "Genesy records": "Genesy: export, update, sync and read contacts and companies; link them.",
        "Genesy tasks": "Genesy: tasks in Dynamics.",
        "Genesy activities": "Genesy: conversation activity (e-mails, LinkedIn messages) logged in Dynamics.",
        "Campaign events": "Integrators: campaign events (opens, clicks, replies) over HTTPS, with the workspace key.",
        "Admin workspaces": "Admin: workspaces and their API keys.",
        "Admin mappings": "Admin: the four mapping sections, versioned.",
        "Admin Dynamics": "Admin: what the environment offers mapping editors: columns, users, a connection test, "
        "and whom Genesy identities resolve to.",
        "Genesy webhooks": "Genesy: conversation-events webhook deliveries, with the workspace's webhook secret.",
        "Admin operations": "Admin: sync health, log, retries, dead letters, preview, validation.",
        "Admin webhooks": "Admin: the webhook secret Genesy sends, and the deliveries received.",
        "Meta": "This document.",
    },
    security_schemes={
        "genesyApiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The workspace's API key (`gdk_…`), in `X-API-Key` unless the workspace configured "
            "another header name (`key_header`), which Genesy is then told to use.",
        },
        "webhookSecret": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Webhook-Secret",
            "description": "The workspace's webhook secret (from `POST /manage/workspaces/{workspace_id}/"
            "webhook-secret`), which Genesy sends verbatim with each delivery.",
        },
        "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key", "description": "A function key."},
        "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code", "description": "A function key."},
    },
    headers={
        CORRELATION: {
            "description": "The call's correlation id (the one sent, or a new one): it finds the call in our logs.",
            "schema": {"type": "string"},
        },
        ETAG: {"description": "The version to send back as `If-Match`.", "schema": {"type": "string"}},
    },
)


def named_models() -> set[str]:
    """The models the catalog names instead of importing: the caller of `document` supplies them."""
    names: set[str] = set()
    for op in OPERATIONS:
        refs = [op.query, op.body, *(reply.model for reply in op.replies.values())]
        names.update(ref for ref in refs if isinstance(ref, str))
    return names


def document(models: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's HTTP operations; `models` supplies the models named here
    (those defined in the handlers' modules, which this layer cannot import: see `functions.openapi`)."""
    return build_document(INFO, OPERATIONS, models)


_REFERENCE_INTRO = """\
# Admin API reference

<!-- Generated from shared/services/api_catalog.py: python -m functions.openapi --markdown > docs/admin-api.md
     (tests/functions/test_openapi.py fails when this file is out of date). -->

The admin API configures the app: workspaces and their API keys, the four mapping sections, and the
running sync. Every route is under `/api/manage/` (the Functions host reserves `/admin/`) and needs a
**function key**, in the `x-functions-key` header or the `code` query parameter; without one the host
answers 401 with no body. Errors are `{"error": code, "message": text, "details"?: [{field, message}]}`.

The machine-readable description of both surfaces is `GET /api/openapi.json` (OpenAPI 3.1, no key
needed); the shapes below are taken from it.

## The Genesy Custom CRM surface

Genesy calls these with the workspace's API key in `X-API-Key` (or the header the workspace configured).
The schemas are in [`/api/openapi.json`](/api/openapi.json); "extension" marks what Genesy does not
document.

"""


def admin_reference(models: Mapping[str, type[BaseModel]]) -> str:
    """docs/admin-api.md: the Genesy routes as a table, then every admin route with examples."""
    doc = document(models)
    return (
        _REFERENCE_INTRO
        + markdown_table(doc, GENESY_TAGS)
        + "\n## Admin routes\n\n"
        + markdown_operations(doc, ADMIN_TAGS)
    )
