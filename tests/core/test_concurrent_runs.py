"""Which messages of a session's batch the writes worker may process at the same time (pure)."""

from __future__ import annotations

from shared.domain.write_messages import WriteItem, WriteMessage, concurrent_runs


def _message(operation: str, kind: str, *ids: str) -> WriteMessage:
    return WriteMessage(
        operation=operation,  # type: ignore[arg-type]
        workspace_id="ws",
        kind=kind,  # type: ignore[arg-type]
        items=[WriteItem(crm_id=i) for i in ids],
    )


def _keys(messages: list[WriteMessage]) -> list[frozenset[str]]:
    return [frozenset(f"id:{i.crm_id}" for i in m.items) for m in messages]


def test_consecutive_messages_of_one_kind_with_different_records_run_together() -> None:
    messages = [_message("create", "contact", f"c{i}") for i in range(5)]
    assert concurrent_runs(messages, _keys(messages), max_run=8) == [[0, 1, 2, 3, 4]]
    assert concurrent_runs(messages, _keys(messages), max_run=2) == [[0, 1], [2, 3], [4]]


def test_the_order_between_kinds_and_operations_is_kept() -> None:
    messages = [
        _message("create", "company", "a1"),
        _message("create", "company", "a2"),
        _message("create", "contact", "c1"),
        _message("create", "contact", "c2"),
        _message("associate", "association", "c1"),
        _message("update", "contact", "c2"),
        _message("create", "contact", "c3"),
    ]
    assert concurrent_runs(messages, _keys(messages), max_run=8) == [[0, 1], [2, 3], [4], [5], [6]]


def test_a_message_sharing_a_record_or_identity_waits_for_the_run_before_it() -> None:
    messages = [
        _message("update", "contact", "x", "y"),
        _message("update", "contact", "z"),
        _message("update", "contact", "y"),
    ]
    assert concurrent_runs(messages, _keys(messages), max_run=8) == [[0, 1], [2]]
    # Identities count as much as ids: the second create could match the first one's record.
    creates = [_message("create", "contact", "n1"), _message("create", "contact", "n2")]
    keys = [frozenset({"id:n1", "key:0:ana@x.example"}), frozenset({"id:n2", "key:0:ana@x.example"})]
    assert concurrent_runs(creates, keys, max_run=8) == [[0], [1]]


def test_tasks_and_activities_run_alone() -> None:
    messages = [
        _message("create", "contact", "c1"),
        _message("task", "task", "t1"),
        _message("task", "task", "t2"),
        _message("activity", "activity", "e1"),
        _message("create", "contact", "c2"),
        _message("create", "contact", "c3"),
    ]
    assert concurrent_runs(messages, _keys(messages), max_run=8) == [[0], [1], [2], [3], [4, 5]]
    assert concurrent_runs([], [], max_run=8) == []
