"""Plain result types returned by the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.dataverse.errors import DataverseError
from shared.domain.metadata import ColumnMetadata, EntityMetadata, SystemUser

__all__ = ["ChangeSet", "ColumnMetadata", "EntityMetadata", "RecordResult", "SystemUser", "WriteMode"]

WriteMode = Literal["upsert", "create_only", "update_only"]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of one record of a bulk write; `error` is set exactly when `ok` is false."""

    id: str | None
    ok: bool
    status: int
    error: DataverseError | None = None
    created: bool | None = None

    @property
    def retryable(self) -> bool:
        """True when a later attempt may succeed (throttled, 5xx, budget ran out)."""
        return self.error is not None and self.error.retryable


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """One round of change tracking: rows created or changed, ids deleted, and the link for the next round."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    delta_link: str | None = None
    # Set when the round stopped at `max_pages` before its end: pass it back to continue where it stopped.
    next_link: str | None = None
