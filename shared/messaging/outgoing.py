"""Domain messages as queue messages: `genesy-writes` parts in the workspace's session."""

from __future__ import annotations

from shared.domain.write_messages import WriteMessage, split_for_queue
from shared.messaging.queue import OutgoingMessage

__all__ = ["to_outgoing"]


def to_outgoing(message: WriteMessage) -> list[OutgoingMessage]:
    """The Service Bus messages for one write operation, in order, in the workspace's session; message ids
    come from content, so duplicate detection drops a repeated call's messages."""
    return [
        OutgoingMessage(
            body=part.model_dump(mode="json"),
            session_id=part.workspace_id,
            message_id=part.content_id(),
            application_properties={"operation": part.operation, "kind": part.kind},
        )
        for part in split_for_queue(message)
    ]
