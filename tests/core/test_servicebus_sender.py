"""The Azure Service Bus path of the queue interface, against azure-servicebus's own message and batch
classes (no namespace here: the client is replaced, the messages we build are the real ones)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessageBatch

from shared.messaging.queue import OutgoingMessage, ServiceBusSender
from shared.platform.settings import load_settings


class _Sender:
    def __init__(self, sent: list[ServiceBusMessageBatch]) -> None:
        self.sent = sent

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=4096)

    def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        self.sent.append(batch)


class _Client:
    def __init__(self) -> None:
        self.sent: list[ServiceBusMessageBatch] = []
        self.queues: list[str] = []

    def get_queue_sender(self, queue: str) -> _Sender:
        self.queues.append(queue)
        return _Sender(self.sent)


def test_messages_keep_session_id_and_message_id_and_overflow_into_new_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _Client()
    monkeypatch.setattr("azure.servicebus.ServiceBusClient.from_connection_string", lambda _cs: client)
    settings = load_settings(
        {
            "API_KEY_HASH_SECRET": "x" * 16,
            "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "SERVICEBUS_CONNECTION_STRING": "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v",
        }
    )
    messages = [
        OutgoingMessage(
            body={"n": i, "pad": "x" * 900},
            session_id="ws-1",
            message_id=f"m-{i}",
            application_properties={"kind": "contact"},
        )
        for i in range(10)
    ]
    ServiceBusSender(
        connection_string=settings.servicebus_connection_string, namespace=None, credential=lambda: None
    ).send("genesy-writes", messages)
    assert client.queues == ["genesy-writes"]
    assert len(client.sent) > 1  # a full batch is sent and a new one started
    sent: list[Any] = [m for batch in client.sent for m in batch._messages]
    assert [m.message_id for m in sent] == [f"m-{i}" for i in range(10)]  # order kept
    assert {m.session_id for m in sent} == {"ws-1"}
    assert sent[0].content_type == "application/json"
    assert json.loads(str(sent[3]))["n"] == 3
    assert sent[0].application_properties == {"kind": "contact"}
