"""Persistence of workspaces and sections on Azurite: defaults, versions and ETags, concurrent writers,
history, Table Storage size limits, the mappings cache, and workspace isolation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from mapping_store.store import DEFAULT_ETAG, MAX_DOCUMENT_CHARS, SECTIONS, MappingStore
from shared.domain.mappings import ExportMapping, SyncMapping, Workspace, WorkspaceCreate, default_section
from shared.platform.errors import AppError, BadRequest, NotFound, PreconditionFailed, PreconditionRequired
from tests.mapping_store.conftest import Clock

LEAD = WorkspaceCreate(name="Leads Inc", environment_url="https://leads.crm.dynamics.com/", contact_entity="lead")


# -- workspaces ----------------------------------------------------------------------------------


def test_create_get_and_list_workspaces(store: MappingStore, clock: Clock) -> None:
    started = clock.wall
    first, key = store.create_workspace(
        WorkspaceCreate(name=" Acme ", environment_url="https://ACME.crm4.dynamics.com"), actor="ana"
    )
    clock.advance(1)
    second, _ = store.create_workspace(LEAD)
    assert key.startswith("gdk_")
    assert first.name == "Acme"
    assert first.environment_url == "https://acme.crm4.dynamics.com"
    assert first.created_at == started
    assert [k.key_id for k in first.keys] == [key.split("_")[1]]
    assert store.get_workspace(first.id) == first
    assert second.contact_entity == "lead"
    assert [w.id for w in store.list_workspaces()] == [first.id, second.id]
    assert store.list_workspaces()[0].keys == first.keys


@pytest.mark.parametrize("workspace_id", ["0" * 32, "", "../etc", "a' or PartitionKey ne '", "x" * 2000, "a/b#c"])
def test_unknown_or_malformed_workspace_ids_are_not_found(store: MappingStore, workspace_id: str) -> None:
    for call in (
        lambda: store.get_workspace(workspace_id),
        lambda: store.get_section(workspace_id, "sync"),
        lambda: store.put_section(workspace_id, "sync", {}, DEFAULT_ETAG),
        lambda: store.history(workspace_id, "sync"),
        lambda: store.mappings(workspace_id),
        lambda: store.rotate_key(workspace_id),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.code == "workspace_not_found"
        assert len(caught.value.message) < 120


def test_update_workspace_uses_its_etag(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, _ = workspace
    etag = store.workspace_etag(ws.id)
    updated = store.update_workspace(ws.id, {"name": "Acme EU", "key_header": "X-Genesy-Key"}, etag)
    assert (updated.name, updated.key_header, updated.environment_url) == (
        "Acme EU",
        "X-Genesy-Key",
        ws.environment_url,
    )
    with pytest.raises(PreconditionFailed):
        store.update_workspace(ws.id, {"name": "stale"}, etag)
    with pytest.raises(PreconditionRequired):
        store.update_workspace(ws.id, {"name": "blind"}, None)
    with pytest.raises(BadRequest) as caught:
        store.update_workspace(ws.id, {"id": "other"}, store.workspace_etag(ws.id))
    assert caught.value.details == [{"field": "id", "message": "cannot be changed"}]
    with pytest.raises(BadRequest) as caught:
        store.update_workspace(ws.id, {"environment_url": "http://insecure"}, store.workspace_etag(ws.id))
    assert caught.value.details is not None and caught.value.details[0]["field"] == "environment_url"
    assert store.get_workspace(ws.id).name == "Acme EU"


# -- sections: defaults, versions, ETags ---------------------------------------------------------


def test_defaults_follow_the_contact_entity(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    contact_ws, _ = workspace
    lead_ws, _ = store.create_workspace(LEAD)
    for section in SECTIONS:
        for ws in (contact_ws, lead_ws):
            got = store.get_section(ws.id, section)
            assert (got.version, got.etag, got.updated_at, got.updated_by) == (0, DEFAULT_ETAG, None, None)
            assert got.document == default_section(section, ws.contact_entity)
    contact_sync = store.get_section(contact_ws.id, "sync").document
    lead_sync = store.get_section(lead_ws.id, "sync").document
    assert isinstance(contact_sync, SyncMapping) and isinstance(lead_sync, SyncMapping)
    assert contact_sync.contact.company_column == "parentcustomerid_account/name"
    assert lead_sync.contact.company_column == "companyname"
    lead_export = store.get_section(lead_ws.id, "export").document
    contact_export = store.get_section(contact_ws.id, "export").document
    assert isinstance(lead_export, ExportMapping) and isinstance(contact_export, ExportMapping)
    assert "companyname" in lead_export.contact.columns()
    assert "companyname" not in contact_export.contact.columns()


def test_versions_and_etags_advance(store: MappingStore, workspace: tuple[Workspace, str], clock: Clock) -> None:
    ws, _ = workspace
    first = store.put_section(ws.id, "campaign", {"enabled": False}, DEFAULT_ETAG, actor="ana")
    clock.advance(5)
    second = store.put_section(ws.id, "campaign", {"enabled": True}, first.etag, actor="bob")
    assert (first.version, second.version) == (1, 2)
    assert first.etag != second.etag
    current = store.get_section(ws.id, "campaign")
    assert (current.version, current.etag, current.updated_by, current.updated_at) == (
        2,
        second.etag,
        "bob",
        clock.wall,
    )
    assert current.document.model_dump()["enabled"] is True


def test_if_match_rules(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, _ = workspace
    for missing in (None, "", "  "):
        with pytest.raises(PreconditionRequired) as required:
            store.put_section(ws.id, "users", {}, missing)
        assert required.value.status == 428
    for malformed in ('"abc"', "W/garbage", '"1.%%%"', '"12345678901.abc"'):
        with pytest.raises(BadRequest) as bad:
            store.put_section(ws.id, "users", {}, malformed)
        assert bad.value.code == "invalid_etag"
    # A well-formed ETag that was never issued for this section: 412, nothing written.
    with pytest.raises(PreconditionFailed):
        store.put_section(ws.id, "users", {}, '"3.VyJkYXRldGltZSc"')
    saved = store.put_section(ws.id, "users", {}, DEFAULT_ETAG)
    # The default ETag no longer matches once the section exists.
    with pytest.raises(PreconditionFailed) as stale:
        store.put_section(ws.id, "users", {}, DEFAULT_ETAG)
    assert "GET it again" in stale.value.message
    # Weak-form and `*` are accepted.
    weak = store.put_section(ws.id, "users", {}, "W/" + saved.etag)
    forced = store.put_section(ws.id, "users", {}, "*")
    assert (weak.version, forced.version) == (2, 3)


def test_unknown_section_is_not_found(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, _ = workspace
    for call in (
        lambda: store.get_section(ws.id, "owners"),
        lambda: store.put_section(ws.id, "owners", {}, DEFAULT_ETAG),
        lambda: store.history(ws.id, "owners"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert "'owners'" in caught.value.message
        assert caught.value.code == "unknown_section"


@pytest.mark.parametrize("existing", [False, True])
def test_two_concurrent_writers_one_wins(
    make_store: Callable[[], MappingStore], workspace: tuple[Workspace, str], existing: bool
) -> None:
    ws, _ = workspace
    stores = [make_store(), make_store()]
    etag = DEFAULT_ETAG
    if existing:
        etag = stores[0].put_section(ws.id, "sync", {}, DEFAULT_ETAG).etag
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def write(index: int) -> None:
        document = {"contact": {"mode": "name_company" if index == 0 else "linkedin_or_name_company"}}
        barrier.wait()
        try:
            outcomes[index] = stores[index].put_section(ws.id, "sync", document, etag, actor=f"writer{index}")
        except PreconditionFailed as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [o for o in outcomes if not isinstance(o, PreconditionFailed)]
    losers = [o for o in outcomes if isinstance(o, PreconditionFailed)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    current = stores[0].get_section(ws.id, "sync")
    assert current.etag == winners[0].etag
    assert current.version == (2 if existing else 1)
    history = stores[0].history(ws.id, "sync")
    assert len(history) == current.version
    assert history[0].changed_by == winners[0].updated_by


# -- history -------------------------------------------------------------------------------------


def test_history_records_old_new_who_and_version(
    store: MappingStore, workspace: tuple[Workspace, str], clock: Clock
) -> None:
    ws, _ = workspace
    etag = DEFAULT_ETAG
    documents = [{"enabled": False}, {"enabled": True, "columns": {"opens": "gd_o"}}, {"enabled": True}]
    times = []
    for index, document in enumerate(documents):
        clock.advance(60)
        times.append(clock.wall)
        etag = store.put_section(ws.id, "campaign", document, etag, actor=f"admin{index}").etag
    store.put_section(ws.id, "users", {}, DEFAULT_ETAG)  # other sections don't leak into this history

    entries = store.history(ws.id, "campaign")
    assert [e.version for e in entries] == [3, 2, 1]
    assert [e.changed_by for e in entries] == ["admin2", "admin1", "admin0"]
    assert [e.changed_at for e in entries] == times[::-1]
    assert entries[2].old == default_section("campaign").model_dump(mode="json")
    assert entries[2].new["enabled"] is False
    assert entries[1].old == entries[2].new
    assert entries[1].new["columns"] == {"opens": "gd_o"}
    assert entries[0].old == entries[1].new and entries[0].new["columns"] == {}
    assert [e.version for e in store.history(ws.id, "campaign", limit=2)] == [3, 2]
    assert store.history(ws.id, "export") == []
    assert [e.section for e in store.history(ws.id, "users")] == ["users"]


# -- Table Storage limits ------------------------------------------------------------------------


def _export_with_options(chars: int) -> dict[str, Any]:
    """An export mapping whose JSON is about `chars` characters (long option labels)."""
    option = "o" * 990
    count = max(1, chars // 1000)
    fields = []
    while count > 0:
        take = min(count, 500)
        fields.append(
            {
                "name": f"pick{len(fields)}",
                "column": f"gd_pick{len(fields)}",
                "options": [f"{i:05d}{option}" for i in range(take)],
            }
        )
        count -= take
    return {"contact": {"export_fields": fields}}


def test_large_documents_are_split_and_reassembled(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, _ = workspace
    first = _export_with_options(200_000)
    second = _export_with_options(300_000)
    one = store.put_section(ws.id, "export", first, DEFAULT_ETAG)
    two = store.put_section(ws.id, "export", second, one.etag)
    stored = store.get_section(ws.id, "export")
    assert stored.document == ExportMapping.model_validate(second)
    assert stored.version == two.version == 2

    raw = store._tables.table("sections").get_entity(ws.id, "c|export")
    parts = [value for name, value in raw.items() if name.startswith("doc_") and name != "doc_parts"]
    assert raw["doc_parts"] == len(parts) > 1
    assert all(len(part) <= 32_000 for part in parts)

    # Old (200k) + new (300k) don't fit one entity: the old one sits in a companion row.
    history = store.history(ws.id, "export")
    assert [e.version for e in history] == [2, 1]
    assert history[0].old == ExportMapping.model_validate(first).model_dump(mode="json")
    assert history[0].new == ExportMapping.model_validate(second).model_dump(mode="json")
    assert history[1].new == history[0].old
    assert store.mappings(ws.id).export == stored.document


def test_too_large_a_document_is_a_clear_400(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    ws, _ = workspace
    with pytest.raises(BadRequest) as caught:
        store.put_section(ws.id, "export", _export_with_options(MAX_DOCUMENT_CHARS + 20_000), DEFAULT_ETAG)
    assert caught.value.status == 400
    assert caught.value.code == "document_too_large"
    assert str(MAX_DOCUMENT_CHARS) in caught.value.message
    assert store.get_section(ws.id, "export").version == 0


def test_a_stored_document_that_no_longer_validates_is_reported(
    store: MappingStore, workspace: tuple[Workspace, str]
) -> None:
    ws, _ = workspace
    saved = store.put_section(ws.id, "users", {}, DEFAULT_ETAG)
    store._tables.table("sections").update_entity(
        {"PartitionKey": ws.id, "RowKey": "c|users", "doc_parts": 1, "doc_00": '{"users": 5}'}
    )
    with pytest.raises(AppError) as caught:
        store.get_section(ws.id, "users")
    assert caught.value.code == "stored_mapping_invalid"
    assert caught.value.details and caught.value.details[0]["field"] == "users"
    # An admin can still replace it (the old document is kept verbatim in history).
    with pytest.raises(PreconditionFailed):
        store.put_section(ws.id, "users", {}, saved.etag)
    fixed = store.put_section(ws.id, "users", {}, "*")
    assert fixed.version == 2
    assert store.history(ws.id, "users", limit=1)[0].old == {"users": 5}


# -- the mappings cache --------------------------------------------------------------------------


def test_mappings_cache_revalidates_by_etag(
    make_store: Callable[[], MappingStore], workspace: tuple[Workspace, str], clock: Clock
) -> None:
    ws, _ = workspace
    reader, writer = make_store(), make_store()
    before = reader.mappings(ws.id)
    assert before.sync == default_section("sync") and before.versions == dict.fromkeys(SECTIONS, 0)

    # Within the TTL the cached object is served as is, even after another process changed it.
    writer.put_section(ws.id, "sync", {"contact": {"mode": "name_company"}}, DEFAULT_ETAG)
    clock.advance(reader.settings.mapping_cache_seconds / 2)
    assert reader.mappings(ws.id) is before

    # Past the TTL the ETags differ, so it reloads.
    clock.advance(reader.settings.mapping_cache_seconds)
    after = reader.mappings(ws.id)
    assert after.sync.contact.mode == "name_company"
    assert after.versions["sync"] == 1

    # Past the TTL with nothing changed: same object (revalidated, not reloaded).
    clock.advance(reader.settings.mapping_cache_seconds + 1)
    assert reader.mappings(ws.id) is after

    # A change through the same store is seen at once.
    current = reader.get_section(ws.id, "sync").etag
    reader.put_section(ws.id, "sync", {"contact": {"mode": "linkedin_or_name_company"}}, current)
    assert reader.mappings(ws.id).sync.contact.mode == "linkedin_or_name_company"


def test_workspace_changes_reach_cached_mappings(
    make_store: Callable[[], MappingStore], workspace: tuple[Workspace, str], clock: Clock
) -> None:
    ws, _ = workspace
    reader, writer = make_store(), make_store()
    assert reader.mappings(ws.id).workspace.key_header == "X-API-Key"
    writer.update_workspace(ws.id, {"key_header": "X-Genesy"}, writer.workspace_etag(ws.id))
    writer.rotate_key(ws.id, grace_seconds=0)
    clock.advance(reader.settings.mapping_cache_seconds + 1)
    cached = reader.mappings(ws.id).workspace
    assert cached.key_header == "X-Genesy"
    assert len(cached.keys) == 2


# -- isolation -----------------------------------------------------------------------------------


def test_workspaces_are_isolated(store: MappingStore, workspace: tuple[Workspace, str]) -> None:
    a, _ = workspace
    b, _ = store.create_workspace(LEAD)
    a_sync = store.put_section(a.id, "sync", {"contact": {"mode": "name_company"}}, DEFAULT_ETAG, actor="a-admin")

    # B is untouched by A's write.
    assert store.get_section(b.id, "sync").version == 0
    assert store.mappings(b.id).sync == default_section("sync", "lead")
    assert store.history(b.id, "sync") == []
    # A's ETag means nothing for B's section: a write with it is refused.
    store.put_section(b.id, "sync", {}, DEFAULT_ETAG)
    with pytest.raises(PreconditionFailed):
        store.put_section(b.id, "sync", {"contact": {"mode": "name_company"}}, a_sync.etag)
    assert store.get_section(b.id, "sync").version == 1
    assert store.get_section(a.id, "sync").document == a_sync.document
    assert [e.changed_by for e in store.history(a.id, "sync")] == ["a-admin"]
    assert store.mappings(a.id).workspace.id == a.id
    assert store.mappings(b.id).workspace.id == b.id
