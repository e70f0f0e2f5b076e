"""Table transactions of upserts survive a connection dropped mid-request (Azurite closes idle keep-alive
connections; networks drop): they are retried like a GET instead of failing the worker's delivery."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.platform.settings import Settings
from shared.storage.ledger import Ledger, LedgerEntry
from shared.storage.tables import TableStorage


class DropsFirstPost(RequestsTransport):  # type: ignore[misc]
    """The real HTTP transport, except that the first transaction's connection is reset."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.method == "POST" and request.url.endswith("$batch"):
            self.posts += 1
            if self.posts == 1:
                raise ServiceResponseError(
                    "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
                )
        return super().send(request, **kwargs)


def test_a_ledger_transaction_is_retried_when_its_connection_drops(settings: Settings) -> None:
    storage = TableStorage(connection_string=settings.tables_connection_string, prefix=settings.table_prefix)
    transport = DropsFirstPost()
    storage.service = TableServiceClient.from_connection_string(
        settings.tables_connection_string, transport=transport, retry_backoff_factor=0.01
    )
    ledger = Ledger(storage)
    ledger.record([LedgerEntry(workspace_id="ws-drop", kind="contact", operation="create", key="e1", status="created")])
    assert transport.posts == 3  # the dropped one, its retry, the log index's transaction
    stored = ledger.get("ws-drop", "contact", "create", "e1")
    assert stored is not None and stored.status == "created"
    storage.close()
