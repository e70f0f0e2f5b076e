"""API keys: issued once, stored only as an HMAC, resolved by one point read, rotated with a grace
period measured on an injected clock, and checked against the workspace's configured header."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from mapping_store.keys import hash_key, key_id_of
from mapping_store.store import UNAUTHORIZED_MESSAGE, MappingStore, authenticate
from shared.domain.mappings import Workspace, WorkspaceCreate
from shared.platform.errors import NotFound, Unauthorized
from tests.conftest import TEST_KEY_SECRET
from tests.mapping_store.conftest import Clock


def test_issued_key_authenticates_its_workspace(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, key = workspace
    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "gdk" and len(key_id) == 12 and len(secret) == 43
    assert key_id_of(key) == key_id
    assert authenticate(store, {"X-API-Key": key}) == store.mappings(ws.id).workspace
    assert authenticate(store, {"x-api-key": f"  {key} "}).id == ws.id
    assert authenticate(store, {"Content-Type": "application/json", "X-API-KEY": key}).id == ws.id
    assert store.keys.resolve(key) == ws.id


def test_keys_are_stored_only_as_hmac(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, key = workspace
    _, _, secret = key.split("_", 2)
    expected = hmac.new(TEST_KEY_SECRET.encode(), key.encode(), hashlib.sha256).hexdigest()
    assert hash_key(TEST_KEY_SECRET, key) == expected
    rows = list(store._tables.table("apikeys").list_entities())
    assert len(rows) == 2  # the lookup row and the workspace's index row
    dumped = repr([dict(row) for row in rows])
    assert key not in dumped and secret not in dumped
    assert expected in [row["RowKey"] for row in rows]
    lookup = next(row for row in rows if row["RowKey"] == expected)
    assert lookup["workspace_id"] == ws.id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "not-a-genesy-key"},
        {"X-API-Key": "gdk_"},
        {"X-API-Key": "gdk_0123456789ab_" + "A" * 43},  # well formed, never issued
        {"X-API-Key": "gdk_zz_short"},
    ],
)
def test_missing_or_wrong_keys_are_unauthorized(
    store: MappingStore, workspace: tuple[Workspace, str], headers: dict[str, str]
) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, headers)
    assert caught.value.status == 401
    for value in headers.values():
        if value:
            assert value not in caught.value.message


def test_a_tampered_key_is_unauthorized_without_echo(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    _, key = workspace
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, {"X-API-Key": tampered})
    assert tampered not in caught.value.message and tampered[17:] not in caught.value.message


def test_the_key_must_come_in_the_configured_header(
    store: MappingStore, workspace: tuple[Workspace, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, key = workspace
    caplog.set_level(logging.INFO, logger="genesy_dynamics.mapping_store")
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, {"Authorization": f"Bearer {key}"})
    assert caught.value.message == UNAUTHORIZED_MESSAGE  # the same 401 as any refused key
    assert "'X-API-Key' header" in caplog.text and key not in caplog.text  # the reason is logged, not the key

    custom, custom_key = store.create_workspace(
        WorkspaceCreate(name="Custom", environment_url="https://c.crm.dynamics.com", key_header="X-Genesy-Key")
    )
    assert authenticate(store, {"x-genesy-key": custom_key}).id == custom.id
    with pytest.raises(Unauthorized) as wrong:
        authenticate(store, {"X-API-Key": custom_key})
    assert wrong.value.message == UNAUTHORIZED_MESSAGE and "'X-Genesy-Key' header" in caplog.text


def test_two_different_keys_are_refused(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    _, key = workspace
    _, other = store.create_workspace(WorkspaceCreate(name="B", environment_url="https://b.crm.dynamics.com"))
    with pytest.raises(Unauthorized):
        authenticate(store, {"X-API-Key": key, "X-Other": other})
    # The same key twice is fine.
    assert authenticate(store, {"X-API-Key": key, "X-Other": key})


def test_rotation_keeps_old_keys_for_the_grace_period(
    store: MappingStore, workspace: tuple[Workspace, str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genesy_dynamics.mapping_store")
    ws, old = workspace
    issued = store.rotate_key(ws.id, grace_seconds=60)
    assert issued.api_key != old
    assert issued.previous_keys_expire_at == clock.wall.replace(minute=1)
    assert authenticate(store, {"X-API-Key": old}).id == ws.id
    assert authenticate(store, {"X-API-Key": issued.api_key}).id == ws.id

    clock.advance(59)
    assert store.keys.resolve(old) == ws.id
    clock.advance(1)
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, {"X-API-Key": old})
    assert caught.value.message == UNAUTHORIZED_MESSAGE and "expired" in caplog.text  # the reason: in the log
    assert authenticate(store, {"X-API-Key": issued.api_key}).id == ws.id

    # The expired lookup row was deleted lazily; the index keeps the record with its expiry.
    old_hash = hash_key(TEST_KEY_SECRET, old)
    lookups = [r["RowKey"] for r in store._tables.table("apikeys").list_entities()]
    assert old_hash not in lookups
    records = {r.key_id: r for r in store.get_workspace(ws.id).keys}
    assert records[key_id_of(old) or ""].expires_at == issued.previous_keys_expire_at
    assert records[issued.key_id].expires_at is None


def test_rotation_with_zero_grace_and_no_extension(
    store: MappingStore, workspace: tuple[Workspace, str], clock: Clock
) -> None:
    ws, first = workspace
    second = store.rotate_key(ws.id, grace_seconds=600)
    clock.advance(10)
    third = store.rotate_key(ws.id, grace_seconds=3600)
    # The first key keeps its earlier deadline; the second gets the new one.
    records = {r.key_id: r.expires_at for r in store.get_workspace(ws.id).keys}
    assert records[key_id_of(first) or ""] == second.previous_keys_expire_at
    assert records[second.key_id] == third.previous_keys_expire_at
    fourth = store.rotate_key(ws.id, grace_seconds=0)
    for stale in (first, second.api_key, third.api_key):
        with pytest.raises(Unauthorized):
            store.keys.resolve(stale)
    assert store.keys.resolve(fourth.api_key) == ws.id


def test_default_grace_comes_from_settings(store: MappingStore, workspace: tuple[Workspace, str], clock: Clock) -> None:
    ws, old = workspace
    issued = store.rotate_key(ws.id)
    grace = store.settings.key_grace_seconds
    assert issued.previous_keys_expire_at is not None
    assert (issued.previous_keys_expire_at - clock.wall).total_seconds() == grace
    clock.advance(grace - 1)
    assert store.keys.resolve(old) == ws.id


def test_issue_key_adds_without_expiring(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, old = workspace
    extra = store.issue_key(ws.id)
    assert store.keys.resolve(old) == store.keys.resolve(extra.api_key) == ws.id
    with pytest.raises(NotFound):
        store.issue_key("f" * 32)


def test_keys_are_not_logged(
    store: MappingStore, workspace: tuple[Workspace, str], caplog: pytest.LogCaptureFixture
) -> None:
    ws, key = workspace
    caplog.set_level(logging.DEBUG)
    issued = store.rotate_key(ws.id, grace_seconds=0)
    authenticate(store, {"X-API-Key": issued.api_key})
    with pytest.raises(Unauthorized):
        authenticate(store, {"X-API-Key": key})
    assert issued.key_id in caplog.text
    assert key not in caplog.text and issued.api_key not in caplog.text


def test_a_key_only_opens_its_own_workspace(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    a, a_key = workspace
    b, b_key = store.create_workspace(WorkspaceCreate(name="B", environment_url="https://b.crm.dynamics.com"))
    assert authenticate(store, {"X-API-Key": a_key}).id == a.id
    assert authenticate(store, {"X-API-Key": b_key}).id == b.id
    store.rotate_key(a.id, grace_seconds=0)
    with pytest.raises(Unauthorized):
        authenticate(store, {"X-API-Key": a_key})
    assert authenticate(store, {"X-API-Key": b_key}).id == b.id


def test_a_verified_key_is_cached_but_a_rotation_here_takes_effect_at_once(
    store: MappingStore, workspace: tuple[Workspace, str]
) -> None:
    ws, key = workspace
    assert store.keys.resolve(key) == ws.id
    assert store.keys.resolve(key) == ws.id  # from the cache
    # Rotating in this process with no grace rejects the old key at once, cache or not.
    store.keys.rotate_key(ws.id, grace_seconds=0)
    with pytest.raises(Unauthorized):
        store.keys.resolve(key)
