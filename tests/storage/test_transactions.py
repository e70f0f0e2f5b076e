"""Entity-group transactions encoded by the app (shared/storage/transactions.py) against Azurite: what
they store reads back exactly as what azure-data-tables stores, they are all or nothing, and a failure
names the operation and Table Storage's reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from shared.storage.tables import TableStorage
from shared.storage.transactions import submit_upserts, transaction_body

AWKWARD_KEYS = ["O'Brien & Sons", "contact|create|a b>c", "ñandú ~ 漢字", "100%25 sure", "x" * 200]


def _entity(partition: str, row: str) -> dict[str, object]:
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "text": "Ana 'la' Pérez — \"quoted\"\nnew line",
        "empty": "",
        "small": 3,
        "negative": -(2**31),
        "flag": True,
        "ratio": 1.25,
        "at": datetime(2026, 12, 6, 15, 4, 5, 123456, tzinfo=UTC),
        "naive_at": datetime(2026, 12, 6, 15, 4, 5),
        "skipped": None,
    }


def test_rows_read_back_as_azure_data_tables_writes_them(tables: TableStorage) -> None:
    table = tables.table("txcheck")
    for key in AWKWARD_KEYS:
        ours, theirs = _entity(f"ours {key}", key), _entity(f"sdk {key}", key)
        submit_upserts(table, [ours])
        table.upsert_entity(theirs, mode=UpdateMode.REPLACE)
        read_ours, read_theirs = table.get_entity(f"ours {key}", key), table.get_entity(f"sdk {key}", key)
        assert {k: v for k, v in read_ours.items() if k != "PartitionKey"} == {
            k: v for k, v in read_theirs.items() if k != "PartitionKey"
        }
        assert "skipped" not in read_ours and read_ours["naive_at"] == datetime(2026, 12, 6, 15, 4, 5, tzinfo=UTC)


def test_replace_and_merge(tables: TableStorage) -> None:
    table = tables.table("txmodes")
    submit_upserts(table, [{"PartitionKey": "p", "RowKey": str(i), "a": "1", "b": "1"} for i in range(100)])
    submit_upserts(table, [{"PartitionKey": "p", "RowKey": "0", "a": "2"}])  # replace: b is gone
    submit_upserts(table, [{"PartitionKey": "p", "RowKey": "1", "a": "2"}], merge=True)  # merge: b stays
    assert dict(table.get_entity("p", "0")) == {"PartitionKey": "p", "RowKey": "0", "a": "2"}
    assert dict(table.get_entity("p", "1")) == {"PartitionKey": "p", "RowKey": "1", "a": "2", "b": "1"}
    assert len(list(table.query_entities("PartitionKey eq 'p'"))) == 100


def test_a_failed_operation_fails_the_whole_transaction_with_its_reason(tables: TableStorage) -> None:
    table = tables.table("txfail")
    good = {"PartitionKey": "p", "RowKey": "good", "a": "1"}
    bad = {"PartitionKey": "p", "RowKey": "bad", "a": "x" * 40_000}  # over the 32K-character property limit
    with pytest.raises(HttpResponseError) as failed:
        submit_upserts(table, [good, bad])
    assert "table transaction failed: 4" in str(failed.value)
    assert list(table.query_entities("PartitionKey eq 'p'")) == []  # all or nothing


def test_what_a_transaction_cannot_hold_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        transaction_body("http://t", "t", [{"PartitionKey": "p", "RowKey": str(i)} for i in range(101)], merge=False)
    with pytest.raises(ValueError, match="one PartitionKey"):
        transaction_body(
            "http://t", "t", [{"PartitionKey": "p", "RowKey": "1"}, {"PartitionKey": "q", "RowKey": "2"}], merge=False
        )
    with pytest.raises(TypeError, match="Int32"):
        transaction_body("http://t", "t", [{"PartitionKey": "p", "RowKey": "1", "big": 2**40}], merge=False)
    with pytest.raises(TypeError, match="bytes"):
        transaction_body("http://t", "t", [{"PartitionKey": "p", "RowKey": "1", "blob": b"x"}], merge=False)
