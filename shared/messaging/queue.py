"""The write queues behind one small interface.

In Azure: azure-servicebus (sessions, duplicate detection by message id). In tests and the local host:
`InProcessQueue`, which keeps the same semantics that matter to us: per-session FIFO order, duplicate
detection by message id, delivery counts, abandon → redelivery, dead-letter after `max_delivery_count`
with a reason.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol

from shared.platform.settings import Settings

__all__ = [
    "DeadLetter",
    "InProcessQueue",
    "MessageSender",
    "OutgoingMessage",
    "ReceivedMessage",
    "ServiceBusSender",
    "build_sender",
]


@dataclass(frozen=True)
class OutgoingMessage:
    body: dict[str, Any]
    session_id: str
    message_id: str
    application_properties: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> str:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":"), default=str)


class MessageSender(Protocol):
    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None: ...

    def replay_dead_letters(self, queue: str, *, limit: int = 1000) -> int:
        """Move dead-lettered messages back onto their queue (same session); how many."""
        ...


class ServiceBusSender:
    """azure-servicebus sender: the app's Azure credential on the namespace, or a connection string."""

    def __init__(self, *, connection_string: str | None, namespace: str | None, credential: Callable[[], Any]):
        from azure.servicebus import ServiceBusClient

        if connection_string:
            self._client = ServiceBusClient.from_connection_string(connection_string)
        else:
            if not namespace:
                raise ValueError("Service Bus needs a connection string or a namespace")
            self._client = ServiceBusClient(namespace, credential())
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def replay_dead_letters(self, queue: str, *, limit: int = 1000) -> int:
        """Receive from the queue's dead-letter sub-queue and send copies (fresh message id) to the queue."""
        from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

        client = self._client
        replayed = 0
        with client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
            sender = client.get_queue_sender(queue)
            with sender:
                while replayed < limit:
                    batch = receiver.receive_messages(max_message_count=min(100, limit - replayed), max_wait_time=5)
                    if not batch:
                        break
                    for dead in batch:
                        copy = ServiceBusMessage(
                            b"".join(dead.body),
                            session_id=dead.session_id,
                            message_id=f"{dead.message_id}-replay-{uuid.uuid4().hex[:8]}",
                            content_type=dead.content_type,
                            application_properties=dead.application_properties,
                        )
                        sender.send_messages(copy)
                        receiver.complete_message(dead)
                        replayed += 1
        return replayed

    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        from azure.servicebus import ServiceBusMessage

        if not messages:
            return
        with self._lock, self._client.get_queue_sender(queue) as sender:
            batch = sender.create_message_batch()
            for msg in messages:
                sb_msg = ServiceBusMessage(
                    msg.encoded(),
                    session_id=msg.session_id,
                    message_id=msg.message_id,
                    content_type="application/json",
                    application_properties=dict(msg.application_properties),  # type: ignore[arg-type]
                )
                try:
                    batch.add_message(sb_msg)
                except ValueError:
                    sender.send_messages(batch)
                    batch = sender.create_message_batch()
                    batch.add_message(sb_msg)
            sender.send_messages(batch)


@dataclass
class ReceivedMessage:
    queue: str
    body: str
    session_id: str
    message_id: str
    application_properties: dict[str, str]
    enqueued_time_utc: datetime
    delivery_count: int = 1


@dataclass(frozen=True)
class DeadLetter:
    message: ReceivedMessage
    reason: str
    description: str


class InProcessQueue:
    """Service Bus semantics we rely on, in memory: sessions, duplicate detection, redelivery, DLQ."""

    def __init__(self, max_delivery_count: int = 10, duplicate_window: int = 100_000):
        self.max_delivery_count = max_delivery_count
        self._lock = threading.Condition()
        self._queues: dict[str, OrderedDict[str, deque[ReceivedMessage]]] = {}
        self._seen: dict[str, OrderedDict[str, None]] = {}
        self._locked_sessions: set[tuple[str, str]] = set()
        self._duplicate_window = duplicate_window
        self.dead_letters: dict[str, list[DeadLetter]] = {}
        self.sent_count = 0
        self.duplicates_dropped = 0

    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        now = datetime.now(UTC)
        with self._lock:
            sessions = self._queues.setdefault(queue, OrderedDict())
            seen = self._seen.setdefault(queue, OrderedDict())
            for msg in messages:
                if msg.message_id in seen:
                    self.duplicates_dropped += 1
                    continue
                seen[msg.message_id] = None
                if len(seen) > self._duplicate_window:
                    seen.popitem(last=False)
                sessions.setdefault(msg.session_id, deque()).append(
                    ReceivedMessage(
                        queue=queue,
                        body=msg.encoded(),
                        session_id=msg.session_id,
                        message_id=msg.message_id,
                        application_properties=dict(msg.application_properties),
                        enqueued_time_utc=now,
                    )
                )
                self.sent_count += 1
            self._lock.notify_all()

    def pending(self, queue: str | None = None) -> int:
        with self._lock:
            queues = [queue] if queue else list(self._queues)
            return sum(len(d) for q in queues for d in self._queues.get(q, {}).values())

    def queues(self) -> list[str]:
        with self._lock:
            return list(self._queues)

    def accept_session(self, queue: str) -> str | None:
        """Lock the next session with messages (like a session receiver); None if there is none."""
        with self._lock:
            for session_id, items in self._queues.get(queue, {}).items():
                if items and (queue, session_id) not in self._locked_sessions:
                    self._locked_sessions.add((queue, session_id))
                    return session_id
            return None

    def release_session(self, queue: str, session_id: str) -> None:
        with self._lock:
            self._locked_sessions.discard((queue, session_id))
            sessions = self._queues.get(queue)
            if sessions is not None and session_id in sessions and not sessions[session_id]:
                del sessions[session_id]
            self._lock.notify_all()

    def peek_next(self, queue: str, session_id: str) -> ReceivedMessage | None:
        first = self.peek_batch(queue, session_id, 1)
        return first[0] if first else None

    def peek_batch(self, queue: str, session_id: str, max_count: int) -> list[ReceivedMessage]:
        """The session's first `max_count` messages in order (a batch receive of a session receiver)."""
        with self._lock:
            sessions = self._queues.get(queue)
            items = sessions.get(session_id) if sessions is not None else None
            return list(islice(items, max(1, max_count))) if items else []

    def complete(self, message: ReceivedMessage) -> None:
        with self._lock:
            items = self._queues[message.queue][message.session_id]
            if items and items[0] is message:
                items.popleft()

    def abandon(self, message: ReceivedMessage, reason: str) -> bool:
        """Count a failed delivery; dead-letter past the limit. True when the message was dead-lettered."""
        with self._lock:
            message.delivery_count += 1
            if message.delivery_count > self.max_delivery_count:
                items = self._queues[message.queue][message.session_id]
                # A batch settles as a whole: the message may stand behind others of its batch.
                for position, item in enumerate(items):
                    if item is message:
                        del items[position]
                        break
                self.dead_letters.setdefault(message.queue, []).append(
                    DeadLetter(message, "MaxDeliveryCountExceeded", reason[:4096])
                )
                return True
            return False

    def replay_dead_letters(self, queue: str, *, limit: int = 1000) -> int:
        """Move dead letters back to their queue (operators' replay command)."""
        with self._lock:
            letters = self.dead_letters.pop(queue, [])
            for letter in letters:
                msg = letter.message
                msg.delivery_count = 1
                self._queues.setdefault(queue, OrderedDict()).setdefault(msg.session_id, deque()).append(msg)
            return len(letters)


def build_sender(settings: Settings, credential: Callable[[], Any]) -> MessageSender:
    """The sender for the configured backend: Service Bus, or a new in-process queue (tests, local host)."""
    if settings.queue_backend == "inprocess":
        return InProcessQueue()
    return ServiceBusSender(
        connection_string=settings.servicebus_connection_string,
        namespace=settings.servicebus_namespace,
        credential=credential,
    )
