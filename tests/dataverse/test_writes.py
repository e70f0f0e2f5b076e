"""Writes against the sandbox: single-record CRUD and modes, write_many with a bad record, $batch, bulk."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.dataverse.batch import BatchRequest
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import RecordConflict, RecordNotFound, ValidationFailed

pytestmark = pytest.mark.integration


def test_create_returns_id_and_representation(sandbox: Any, client: DataverseClient) -> None:
    record_id = client.create("contacts", {"lastname": "Created", "emailaddress1": "o'brien+1@x.com"})
    stored = sandbox.store.get("contact", record_id)
    assert stored is not None and stored["emailaddress1"] == "o'brien+1@x.com"

    chosen = str(uuid.uuid4())
    row = client.create("contacts", {"contactid": chosen, "lastname": "Shown"}, return_representation=True)
    assert (row["contactid"], row["lastname"]) == (chosen, "Shown")


def test_update_upsert_modes_and_delete(sandbox: Any, client: DataverseClient) -> None:
    record_id = str(uuid.uuid4())
    with pytest.raises(RecordNotFound):
        client.update("contacts", record_id, {"lastname": "Nobody"})
    with pytest.raises(RecordNotFound):
        client.upsert("contacts", record_id, {"lastname": "Nobody"}, mode="update_only")
    assert sandbox.store.get("contact", record_id) is None

    client.upsert("contacts", record_id, {"lastname": "First"}, mode="create_only")
    with pytest.raises(RecordConflict) as conflict:
        client.upsert("contacts", record_id, {"lastname": "Again"}, mode="create_only")
    assert conflict.value.status == 412
    client.upsert("contacts", record_id, {"lastname": "Second"})
    client.update("contacts", record_id, {"firstname": "Ana"})
    stored = sandbox.store.get("contact", record_id)
    assert stored is not None and (stored["firstname"], stored["lastname"]) == ("Ana", "Second")

    fresh = str(uuid.uuid4())
    client.upsert("contacts", fresh, {"lastname": "Upserted"})
    assert sandbox.store.get("contact", fresh) is not None

    client.delete("contacts", record_id)
    assert sandbox.store.get("contact", record_id) is None
    with pytest.raises(RecordNotFound):
        client.delete("contacts", record_id)


def test_validation_errors_are_typed_with_column(sandbox: Any, client: DataverseClient) -> None:
    with pytest.raises(ValidationFailed) as too_long:
        client.create("contacts", {"lastname": "L", "firstname": "x" * 51})
    assert (too_long.value.code, too_long.value.column) == ("0x80044331", "firstname")
    with pytest.raises(ValidationFailed) as unknown:
        client.create("contacts", {"lastname": "L", "new_nosuchcolumn": 1})
    assert (unknown.value.code, unknown.value.column) == ("0x80060888", "new_nosuchcolumn")
    sandbox.config.enforce_application_required = True  # the Web API itself enforces only SystemRequired
    with pytest.raises(ValidationFailed) as missing:
        client.create("contacts", {"firstname": "NoLast"})
    assert missing.value.column == "lastname"


def test_write_many_one_bad_record_fails_alone(sandbox: Any, client: DataverseClient) -> None:
    existing = sandbox.store.insert("contact", {"lastname": "Existing"})
    good_new = str(uuid.uuid4())
    bad = str(uuid.uuid4())
    items: list[tuple[str | None, dict[str, Any], Any]] = [
        (good_new, {"lastname": "New"}, "upsert"),
        (bad, {"lastname": "Bad", "firstname": "x" * 60}, "upsert"),
        (existing, {"jobtitle": "Updated"}, "upsert"),
        (str(uuid.uuid4()), {"lastname": "Only"}, "create_only"),
        (str(uuid.uuid4()), {"lastname": "Ghost"}, "update_only"),
        (None, {"lastname": "ServerId"}, "create_only"),
    ]
    results = client.write_many("contacts", items)
    assert [r.ok for r in results] == [True, False, True, True, False, True]
    assert [r.created for r in results] == [True, None, False, True, None, True]
    failed = results[1].error
    assert isinstance(failed, ValidationFailed)
    assert (failed.code, failed.column, results[1].status) == ("0x80044331", "firstname", 400)
    assert isinstance(results[4].error, RecordNotFound)
    assert not results[1].retryable
    assert sandbox.store.get("contact", bad) is None
    assert sandbox.store.get("contact", good_new)["lastname"] == "New"
    assert sandbox.store.get("contact", existing)["jobtitle"] == "Updated"
    server_id = results[5].id
    assert server_id is not None and sandbox.store.get("contact", server_id)["lastname"] == "ServerId"


def test_write_many_splits_into_concurrent_chunks(sandbox: Any, client: DataverseClient) -> None:
    items = [(str(uuid.uuid4()), {"lastname": f"Bulk{i}"}, "upsert") for i in range(25)]
    before = len(sandbox.request_log)
    results = client.write_many("contacts", items, chunk_size=10, bulk=False)  # type: ignore[arg-type]
    assert all(r.ok and r.created for r in results)
    assert [r.id for r in results] == [i for i, _, _ in items]
    batches = [r for r in list(sandbox.request_log)[before:] if r["path"].endswith("$batch")]
    assert len(batches) == 3


def test_batch_with_changeset_is_atomic(sandbox: Any, client: DataverseClient) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    responses = client.batch(
        [
            BatchRequest("POST", "contacts", body={"contactid": first, "lastname": "Pair"}, changeset="a"),
            BatchRequest("POST", "contacts", body={"contactid": second, "lastname": "x" * 51}, changeset="a"),
        ],
        continue_on_error=False,
    )
    assert any(isinstance(r.error, ValidationFailed) for r in responses)
    assert sandbox.store.get("contact", first) is None

    responses = client.batch([
        BatchRequest("GET", "contacts", params={"$filter": "lastname eq 'O''Brien'", "$select": "lastname"}),
        BatchRequest("PATCH", f"contacts({first})", body={"lastname": "Single"}, headers={"If-Match": "*"}),
    ])
    assert [r.status for r in responses] == [200, 404]
    assert [row["lastname"] for row in responses[0].json()["value"]] == ["O'Brien"]
    assert isinstance(responses[1].error, RecordNotFound)


def test_bulk_actions_are_all_or_nothing(sandbox: Any, client: DataverseClient) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    created = client.bulk("contacts", "contact", "CreateMultiple",
                          [{"contactid": i, "lastname": f"Multi{n}"} for n, i in enumerate(ids)])
    assert sorted(created["Ids"]) == sorted(ids)
    client.bulk("contacts", "contact", "UpdateMultiple", [{"contactid": i, "jobtitle": "CTO"} for i in ids])
    assert {sandbox.store.get("contact", i)["jobtitle"] for i in ids} == {"CTO"}
    extra = str(uuid.uuid4())
    client.bulk("contacts", "contact", "UpsertMultiple",
                [{"contactid": ids[0], "jobtitle": "CEO"}, {"contactid": extra, "lastname": "Upserted"}])
    assert sandbox.store.get("contact", ids[0])["jobtitle"] == "CEO"
    assert sandbox.store.get("contact", extra) is not None

    before = sandbox.store.count("contact")
    with pytest.raises(ValidationFailed):
        client.bulk("contacts", "contact", "CreateMultiple",
                    [{"lastname": "Fine"}, {"lastname": "Broken", "firstname": "y" * 80}])
    assert sandbox.store.count("contact") == before
