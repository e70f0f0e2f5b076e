"""Plain result types returned by the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.dataverse.errors import DataverseError

__all__ = ["ColumnMetadata", "EntityMetadata", "RecordResult", "SystemUser", "WriteMode"]

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
class SystemUser:
    id: str
    name: str
    email: str | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class ColumnMetadata:
    """What the mapping engine needs to convert and check a value for one column."""

    logical_name: str
    type: str
    max_length: int | None = None
    required: bool = False
    options: dict[str, int] = field(default_factory=dict)
    valid_for_create: bool = True
    valid_for_update: bool = True


@dataclass(frozen=True, slots=True)
class EntityMetadata:
    logical_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str | None
    columns: dict[str, ColumnMetadata]
