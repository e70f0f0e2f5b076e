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

__all__ = ["MAX_MESSAGE_BYTES", "WriteItem", "WriteMessage", "concurrent_runs", "split_for_queue"]

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


def concurrent_runs(
    messages: Sequence[WriteMessage], conflict_keys: Sequence[frozenset[str]], max_run: int
) -> list[list[int]]:
    """Positions of a session's batch (in session order) cut into runs whose messages may be processed at
    the same time; the runs themselves go one after another.

    A run is consecutive messages of the same operation and kind whose `conflict_keys` (the records they
    write, the identities they may match) are pairwise disjoint, at most `max_run` of them: such messages
    commute, so running them together keeps every order that matters — companies before the contacts and
    associations sent after them, one record's writes in the order Genesy sent them, a re-check that sees
    the record an earlier message created. Tasks and activities run alone.
    """
    runs: list[list[int]] = []
    current: list[int] = []
    taken: set[str] = set()
    for position, message in enumerate(messages):
        keys = conflict_keys[position]
        head = messages[current[0]] if current else None
        joins = (
            head is not None
            and message.operation not in _ALONE
            and len(current) < max_run
            and (head.operation, head.kind) == (message.operation, message.kind)
            and taken.isdisjoint(keys)
        )
        if joins:
            current.append(position)
            taken.update(keys)
            continue
        if current:
            runs.append(current)
        current, taken = [position], set(keys)
        if message.operation in _ALONE:
            runs.append(current)
            current, taken = [], set()
    if current:
        runs.append(current)
    return runs
