"""The ledger in Table Storage: transactions that survive a dropped connection, and the move from the
single-partition layout to the sharded one.

Table transactions of upserts survive a connection dropped mid-request (Azurite closes idle keep-alive
connections; networks drop): they are retried like a GET instead of failing the worker's delivery."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.platform.settings import Settings
from shared.storage.ledger import AliasStore, Ledger, LedgerEntry
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


def test_rows_of_the_single_partition_layout_move_to_the_sharded_partitions(tables: TableStorage) -> None:
    ledger = Ledger(tables)
    table = tables.table("ledger")
    old = [
        LedgerEntry(workspace_id="ws-old", kind="contact", operation="create", key=f"k{i}", status="created")
        for i in range(30)
    ]
    for entry in old:  # as the single-partition layout stored them: `<workspace>` and `<workspace>~log`
        table.upsert_entity({**entry.to_entity(), "PartitionKey": "ws-old"})
        table.upsert_entity({**entry.to_log_entity(), "PartitionKey": "ws-old~log"})
    assert ledger.get("ws-old", "contact", "create", "k1") is None

    assert ledger.reindex("ws-old") == 30
    assert ledger.get("ws-old", "contact", "create", "k1") is not None
    assert ledger.summary("ws-old")["counts"] == {"contact": {"created": 30}}
    assert len(ledger.log("ws-old", limit=100).entries) == 30
    left = list(table.query_entities("PartitionKey eq 'ws-old' or PartitionKey eq 'ws-old~log'"))
    assert left == []
    partitions = {
        e["PartitionKey"] for e in table.query_entities("PartitionKey ge 'ws-old~' and PartitionKey lt 'ws-old~~'")
    }
    assert len(partitions) > 2  # spread over the record and log shards


def test_written_marks_have_their_own_table_and_older_marks_still_count(tables: TableStorage) -> None:
    aliases = AliasStore(tables)
    aliases.mark_written("ws-w", "contact", ["A1", "a2"])
    # A mark stored before the marks had a table of their own (in the aliases table).
    tables.table("aliases").upsert_entity({"PartitionKey": "ws-w", "RowKey": "contact-written|old"})
    assert aliases.written("ws-w", "contact", ["a1", "A2", "old", "pending"]) == {"a1", "a2", "old"}
    assert AliasStore(tables).written("ws-w", "contact", ["a1", "old", "pending"]) == {"a1", "old"}  # another process
    assert aliases.written("ws-w", "company", ["a1"]) == set()
    assert list(tables.table("aliases").query_entities("RowKey eq 'contact|a1'")) == []  # not beside the aliases
