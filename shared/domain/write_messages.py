"""Messages on `genesy-writes`: one workspace's ordered write operations (session id = workspace id).

Large calls are split so each message stays well under Service Bus's 256 KB; message ids are derived
from content, so Service Bus duplicate detection drops a repeated call's messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["MAX_MESSAGE_BYTES", "WriteItem", "WriteMessage", "commute", "must_wait_for", "split_for_queue"]

MAX_MESSAGE_BYTES = 192 * 1024


class WriteItem(BaseModel):
    """One record to write. `crm_id` is fixed already; `matched` says it was found in Dynamics."""

    external_id: str | None = None
    crm_id: str
    matched: bool = False
    ambiguous_ids: list[str] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict)
    # For associations: the company this contact belongs to.
    company_id: str | None = None


class WriteMessage(BaseModel):
    version: Literal[1] = 1
    # task / task_update / activity: items that refer to a record accepted but not written yet, queued
    # behind it in the workspace's session (their ids are fixed at accept time).
    operation: Literal["create", "update", "associate", "task", "task_update", "activity"]
    workspace_id: str
    kind: Literal["contact", "company", "association", "task", "activity"]
    items: list[WriteItem]
    export_values: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = None
    accepted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Set when an operator or the reconciliation re-queues records, so duplicate detection keeps it.
    retry_of: str | None = None

    def content_id(self) -> str:
        """Same operation on the same records → the same id (for duplicate detection)."""
        canonical = json.dumps(
            [
                self.operation,
                self.workspace_id,
                self.kind,
                [i.model_dump() for i in self.items],
                self.export_values,
                self.retry_of,
            ],
            sort_keys=True,
            default=str,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:48]


def split_for_queue(message: WriteMessage) -> list[WriteMessage]:
    """The message in parts that each stay under `MAX_MESSAGE_BYTES`, in order."""
    size = len(message.model_dump_json())
    if size <= MAX_MESSAGE_BYTES or len(message.items) <= 1:
        return [message]
    half = len(message.items) // 2
    first = message.model_copy(update={"items": message.items[:half]})
    second = message.model_copy(update={"items": message.items[half:]})
    return split_for_queue(first) + split_for_queue(second)


_ALONE = frozenset({"task", "task_update", "activity"})


def commute(a: WriteMessage, b: WriteMessage, a_keys: frozenset[str], b_keys: frozenset[str]) -> bool:
    """Whether two messages may be processed in either order, or at the same time: the same operation
    and kind (not tasks or activities) and no key in common (the records they write, the identities
    they may match)."""
    return (
        a.operation == b.operation
        and a.kind == b.kind
        and a.operation not in _ALONE
        and a_keys.isdisjoint(b_keys)
    )


def must_wait_for(messages: Sequence[WriteMessage], conflict_keys: Sequence[frozenset[str]]) -> list[frozenset[int]]:
    """For each message of a session's batch (in session order), the earlier messages that must be done
    before it starts: every one it does not commute with. So companies come before the contacts and
    associations sent after them, one record's writes keep Genesy's order, a re-check sees the record an
    earlier message created, tasks and activities run alone — and everything else may overlap."""
    return [
        frozenset(
            i for i in range(j) if not commute(messages[i], messages[j], conflict_keys[i], conflict_keys[j])
        )
        for j in range(len(messages))
    ]
