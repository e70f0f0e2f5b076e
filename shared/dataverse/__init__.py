"""Dataverse (Dynamics 365) Web API client: typed errors, budgets, throttling-aware retries, `$batch`."""

from shared.dataverse.batch import BatchRequest, BatchResponse
from shared.dataverse.budget import Budget
from shared.dataverse.client import BulkAction, DataverseClient, WriteItem
from shared.dataverse.errors import (
    AuthFailed,
    BudgetExceeded,
    Conflict,
    DataverseError,
    NotFound,
    Throttled,
    TransientError,
    ValidationFailed,
)
from shared.dataverse.models import ColumnMetadata, EntityMetadata, RecordResult, SystemUser, WriteMode
from shared.domain.odata import eq_filter, odata_literal
from shared.platform.correlation import correlation_scope, current_correlation_id

__all__ = [
    "AuthFailed",
    "BatchRequest",
    "BatchResponse",
    "Budget",
    "BudgetExceeded",
    "BulkAction",
    "ColumnMetadata",
    "Conflict",
    "DataverseClient",
    "DataverseError",
    "EntityMetadata",
    "NotFound",
    "RecordResult",
    "SystemUser",
    "Throttled",
    "TransientError",
    "ValidationFailed",
    "WriteItem",
    "WriteMode",
    "correlation_scope",
    "current_correlation_id",
    "eq_filter",
    "odata_literal",
]
