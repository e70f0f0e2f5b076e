"""Queue ledger records again (admin retry, reconciliation): each record's retry payload goes back to the
writes queue in a message like the one it came in, in the original order of operations (creates, updates,
links), and its ledger row says so."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from shared.domain.write_messages import WriteItem, WriteMessage
from shared.messaging.outgoing import to_outgoing
from shared.services.root import Services
from shared.storage.ledger import LedgerEntry

__all__ = ["requeue"]


def requeue(
    services: Services, workspace_id: str, entries: Iterable[LedgerEntry], *, note: str = "retry"
) -> dict[str, int]:
    """Queue the entries that keep a retry payload: `{"requeued": n, "not_retryable": n}`."""
    groups, not_retryable = _retry_messages(entries)
    nonce = uuid.uuid4().hex
    sender, settings = services.sender, services.settings
    requeued = 0
    for group, pairs in sorted(groups.items(), key=lambda g: _OPERATION_ORDER.get(g[0][0], 3)):
        sender.send(settings.writes_queue, to_outgoing(_retry_message(workspace_id, group, pairs, nonce)))
        _mark_queued_again(pairs, f"{note} {nonce}")
        services.ledger.record(entry for entry, _ in pairs)
        requeued += len(pairs)
    return {"requeued": requeued, "not_retryable": not_retryable}


# A retried message is identified by (operation, kind, export values as JSON).
_RetryGroup = tuple[str, str, str]
_RetryPairs = list[tuple[LedgerEntry, WriteItem]]
_OPERATION_ORDER = {"create": 0, "update": 1, "associate": 2}


def _retry_messages(entries: Iterable[LedgerEntry]) -> tuple[dict[_RetryGroup, _RetryPairs], int]:
    """The retryable entries grouped by the message they go back in, and how many cannot be retried."""
    groups: dict[_RetryGroup, _RetryPairs] = {}
    not_retryable = 0
    for entry in entries:
        if not entry.retry:
            not_retryable += 1
            continue
        retry = entry.retry
        group = (str(retry["operation"]), str(retry["kind"]), json.dumps(retry.get("export_values") or {}))
        groups.setdefault(group, []).append((entry, WriteItem.model_validate(retry["item"])))
    return groups, not_retryable


def _retry_message(workspace_id: str, group: _RetryGroup, pairs: _RetryPairs, nonce: str) -> WriteMessage:
    operation, record_kind, values = group
    return WriteMessage(
        operation=operation,
        workspace_id=workspace_id,
        kind=record_kind,
        items=[item for _, item in pairs],
        export_values=json.loads(values),
        correlation_id=f"retry-{nonce}",
        retry_of=nonce,
    )


def _mark_queued_again(pairs: _RetryPairs, by: str) -> None:
    for entry, _ in pairs:
        entry.status = "accepted"
        entry.message = f"queued again by {by} (was: {entry.message or entry.status})"
        entry.at = datetime.now(UTC)


