"""Which earlier messages of a session's batch each message must wait for in the writes worker (pure)."""

from __future__ import annotations

from shared.domain.write_messages import WriteItem, WriteMessage, commute, must_wait_for


def _message(operation: str, kind: str, *ids: str) -> WriteMessage:
    return WriteMessage(
        operation=operation,  # type: ignore[arg-type]
        workspace_id="ws",
        kind=kind,  # type: ignore[arg-type]
        items=[WriteItem(crm_id=i) for i in ids],
    )


def _keys(messages: list[WriteMessage]) -> list[frozenset[str]]:
    return [frozenset(f"id:{i.crm_id}" for i in m.items) for m in messages]


def _waits(messages: list[WriteMessage]) -> list[set[int]]:
    return [set(w) for w in must_wait_for(messages, _keys(messages))]


def test_messages_of_one_kind_with_different_records_wait_for_nothing() -> None:
    messages = [_message("create", "contact", f"c{i}") for i in range(5)]
    assert _waits(messages) == [set()] * 5


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
    assert _waits(messages) == [set(), set(), {0, 1}, {0, 1}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}, {0, 1, 4, 5}]


def test_a_message_sharing_a_record_or_identity_waits_for_the_one_before_it() -> None:
    updates = [
        _message("update", "contact", "x", "y"),
        _message("update", "contact", "z"),
        _message("update", "contact", "y"),
    ]
    assert _waits(updates) == [set(), set(), {0}]
    # Identities count as much as ids: the second create could match the first one's record.
    creates = [_message("create", "contact", "n1"), _message("create", "contact", "n2")]
    keys = [frozenset({"id:n1", "key:0:ana@x.example"}), frozenset({"id:n2", "key:0:ana@x.example"})]
    assert [set(w) for w in must_wait_for(creates, keys)] == [set(), {0}]
    assert not commute(creates[0], creates[1], keys[0], keys[1])


def test_tasks_and_activities_run_alone() -> None:
    messages = [
        _message("create", "contact", "c1"),
        _message("task", "task", "t1"),
        _message("task", "task", "t2"),
        _message("activity", "activity", "e1"),
        _message("create", "contact", "c2"),
    ]
    assert _waits(messages) == [set(), {0}, {0, 1}, {0, 1, 2}, {1, 2, 3}]
    assert must_wait_for([], []) == []
