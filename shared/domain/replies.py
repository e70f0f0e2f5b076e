"""What the HTTP functions answer, as models: the OpenAPI document's response schemas come from these.

The handlers build their replies as plain dicts (`shared.services.*`); these models describe those dicts
field for field, so `shared.services.api_catalog` can generate the document from them instead of
describing replies by hand. A field that is sometimes absent has a default and is not required; a field
that is always sent, possibly as `null`, is required and nullable. Replies may grow fields: apart from
the models that mirror a stored document (`Workspace`), unknown fields are allowed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from shared.domain.mappings import CampaignMapping, ExportMapping, SyncMapping, UserMapping, Workspace

__all__ = [
    "Activity",
    "AllMappings",
    "AssociationError",
    "AssociationsReply",
    "BatchGetReply",
    "ErrorBody",
    "ErrorDetail",
    "ExportReply",
    "HealthReply",
    "IdMapping",
    "KeyIssued",
    "LedgerEntryView",
    "MappingHistory",
    "MappingHistoryEntry",
    "MappingSection",
    "OpenApiDocument",
    "ReconcileReply",
    "RecordValues",
    "ReplayOutcome",
    "RetryOutcome",
    "SectionDocument",
    "SyncHealth",
    "SyncLog",
    "SyncMatch",
    "SyncReply",
    "Task",
    "TaskList",
    "UpdateReply",
    "UpdateResult",
    "User",
    "UserList",
    "WorkspaceCreated",
    "WorkspaceList",
    "WorkspaceReply",
]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------------------------------------
# Errors (every surface)


class ErrorDetail(_Reply):
    """One problem: the field it concerns (`contacts[3].email`, `body`) and what is wrong with it."""

    field: str
    message: str


class ErrorBody(_Reply):
    """Every error reply: a stable code, a message naming the field, and per-field details when known."""

    error: str = Field(description="Stable code, e.g. `invalid_body`, `unauthorized`, `Task not found`.")
    message: str = Field(description="What went wrong, naming the field; at most 1,000 characters.")
    details: list[ErrorDetail] = Field(default_factory=list, description="Sent only when there are details.")


# ---------------------------------------------------------------------------------------------
# Genesy Custom CRM


class HealthReply(_Reply):
    """The key is valid: the workspace it belongs to."""

    status: Literal["ok"]
    workspace: str = Field(description="The workspace's name.")


class IdMapping(_Reply):
    """One exported record: Genesy's id and the Dynamics id fixed for it (matched, or issued now)."""

    externalId: str
    crmId: str


class ExportReply(_Reply):
    """One result per exported record, in the order sent (copies of one person share a `crmId`)."""

    results: list[IdMapping]


class SyncMatch(_Reply):
    """A record that exists in Dynamics, with the configured sync-back columns as `properties`."""

    externalId: str
    crmId: str
    properties: dict[str, Any] = Field(default_factory=dict, description="Sent when sync-back columns are set.")


class SyncReply(_Reply):
    """Only the records that matched; the others are left out."""

    results: list[SyncMatch]


class UpdateResult(_Reply):
    """One update: accepted (queued), or refused with the reason."""

    crmId: str
    success: bool
    error: str | None = Field(default=None, description="Sent when `success` is false.")


class UpdateReply(_Reply):
    results: list[UpdateResult]


class RecordValues(_Reply):
    """A record's current Dynamics values under Genesy's field names (the mapped ones that are set)."""

    id: str = Field(description="The crmId asked for.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Sent when sync-back columns are set.")


class BatchGetReply(_Reply):
    """The records that exist, in the order asked; unknown ids are left out."""

    results: list[RecordValues]


class AssociationError(_Reply):
    contactCRMId: str
    companyCRMId: str
    error: str = Field(description="`Contact not found` or `Company not found`.")


class AssociationsReply(_Reply):
    """`success` is false only when no pair could be linked; the pairs refused are in `errors`."""

    success: bool
    created: int = Field(ge=0, description="Links that are new (a link that exists already is not counted).")
    errors: list[AssociationError] = Field(default_factory=list, description="Sent when a pair was refused.")


class User(_Reply):
    """An enabled, interactive Dynamics user Genesy can offer as an owner."""

    id: str
    name: str
    email: str | None = Field(default=None, description="Sent when the user has one.")


class UserList(RootModel[list[User]]):
    """A bare array, sorted by name."""


class Task(_Reply):
    """A task as Dynamics holds it (or as it will be written, while queued behind its record)."""

    id: str
    subject: str | None
    description: str | None
    type: str | None
    ownerId: str | None
    dueDate: datetime | None
    contactId: str | None
    companyId: str | None
    completed: bool
    completedAt: datetime | None


class TaskList(RootModel[list[Task]]):
    """A bare array of tasks, in the order asked; unknown ids are left out."""


class Activity(_Reply):
    """An activity as first logged; a repeat of the same message answers the first one's id."""

    id: str
    type: str
    subject: str | None
    direction: Literal["INBOUND", "OUTBOUND"] | None
    occurredAt: datetime | None
    contactId: str | None
    companyId: str | None
    dynamicsEntity: Literal["email", "task"] = Field(description="Where it was logged: an e-mail or a task.")
    created: bool = Field(description="False when the activity had been logged before (a repeat).")


# ---------------------------------------------------------------------------------------------
# Admin: workspaces and keys


class WorkspaceReply(_Reply):
    """A workspace; the reply's `ETag` header is what an update sends back as `If-Match`."""

    workspace: Workspace


class WorkspaceCreated(_Reply):
    """The new workspace and its first API key, shown this once (only its hash is kept)."""

    workspace: Workspace
    api_key: str
    note: str


class WorkspaceList(_Reply):
    workspaces: list[Workspace]


class KeyIssued(_Reply):
    """A new API key, shown this once; older keys stay valid until `previous_keys_expire_at`."""

    api_key: str
    key_id: str
    previous_keys_expire_at: datetime | None
    note: str


# ---------------------------------------------------------------------------------------------
# Admin: mappings

SectionDocument = SyncMapping | ExportMapping | CampaignMapping | UserMapping


class MappingSection(_Reply):
    """A mapping section as stored (version 0 and ETag `"0.new"`: the default, never written)."""

    section: Literal["sync", "export", "campaign", "users"]
    version: int = Field(ge=0)
    etag: str
    updated_at: datetime | None
    updated_by: str | None
    document: SectionDocument


class AllMappings(_Reply):
    workspace_id: str
    sections: dict[str, MappingSection] = Field(description="By section name: sync, export, campaign, users.")


class MappingHistoryEntry(_Reply):
    section: str
    version: int
    changed_at: datetime
    changed_by: str
    old: dict[str, Any]
    new: dict[str, Any]


class MappingHistory(_Reply):
    """The section's changes, newest first."""

    section: str
    entries: list[MappingHistoryEntry]


# ---------------------------------------------------------------------------------------------
# Admin: operations


class LedgerEntryView(_Reply):
    """One record's latest outcome in the ledger."""

    kind: str
    operation: str
    key: str = Field(description="externalId, crmId, or `contactId>companyId` for a link.")
    status: str
    crmId: str | None
    externalId: str | None
    aliases: list[str]
    code: str | None
    message: str | None
    warnings: list[str]
    attempts: int
    retryable: bool
    at: datetime


class SyncHealth(_Reply):
    workspace_id: str
    counts: dict[str, dict[str, int]] = Field(description="Records by kind, then by status.")
    warnings: dict[str, int] = Field(default_factory=dict, description="Records with mapping warnings, by kind.")
    attention: list[LedgerEntryView] = Field(description="The latest failed, retrying or ambiguous records (≤ 50).")
    last_reconciliation: dict[str, Any] | None = Field(
        default=None, description="The report of the last reconciliation run (see the reconcile route); null: none yet."
    )


class SyncLog(_Reply):
    """A page of the log, newest first."""

    entries: list[LedgerEntryView]
    next: str | None = Field(default=None, description="Pass as `continuation` for the next page; null: no more.")


class ReconcileReply(_Reply):
    """One workspace's reconciliation run: `status` completed (completed_with_errors when a step failed in Dynamics:
    `errors`), or skipped while another run holds the workspace's lease (`reason`). A completed run reports
    stale `retrying` records queued again (`requeued`), records failed now (`failed`), what change tracking
    showed per table (`changes.tables`: mode change_tracking or modifiedon, changed/merged/deleted), the ledger
    verification (`verification`: window, checked, missing, requeued, left_failed, unchecked), campaign values
    written once their contact existed (`campaign_values`), webhook deliveries that waited for their contact
    tried again (`webhook_deliveries`), transient failures queued again (`transient_retries`), and the Dataverse
    requests it spent against its budget (`dataverse_requests`, `request_budget`, steps `skipped` for want of
    budget)."""

    workspace_id: str
    status: Literal["completed", "completed_with_errors", "skipped", "failed"] = "completed"
    reason: str | None = None
    errors: dict[str, str] | None = Field(
        default=None, description="Steps Dynamics failed (step → Dataverse's code and message); the next run retries."
    )
    requeued: int = Field(ge=0)
    failed: int = Field(ge=0)
    started: str | None = None
    finished: str | None = None
    by: str | None = Field(default=None, description="Who started the run: the timer, the admin API, an admin.")
    changes: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    campaign_values: dict[str, Any] | None = None
    webhook_deliveries: dict[str, Any] | None = None
    transient_retries: dict[str, Any] | None = None
    dataverse_requests: int | None = Field(default=None, ge=0)
    throttled: int | None = Field(default=None, ge=0)
    request_budget: int | None = Field(default=None, ge=0)
    skipped: list[str] | None = None


class RetryOutcome(_Reply):
    requeued: int = Field(ge=0)
    not_retryable: int = Field(ge=0)


class ReplayOutcome(_Reply):
    queue: str
    replayed: int = Field(ge=0)


# ---------------------------------------------------------------------------------------------
# Meta


class OpenApiDocument(_Reply):
    """An OpenAPI 3.1 document."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any] = Field(default_factory=dict)
