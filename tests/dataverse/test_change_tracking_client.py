"""`DataverseClient.track_changes` against the sandbox: initial sync, delta with changes, merges and deletions."""

from __future__ import annotations

from typing import Any

import pytest

from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseError
from shared.platform.usage import usage_scope

pytestmark = pytest.mark.integration

SELECT = ["contactid", "merged", "_masterid_value"]
NS = "Microsoft.Dynamics.CRM."


def test_initial_sync_returns_every_row_and_a_link(sandbox: Any, client: DataverseClient) -> None:
    rid = sandbox.store.insert("contact", {"lastname": "Tracked"})
    first = client.track_changes("contacts", SELECT)
    assert rid in {r["contactid"] for r in first.rows}
    assert len(first.rows) == sandbox.store.count("contact")
    assert first.deleted == []
    assert first.delta_link and "$deltatoken=" in first.delta_link

    empty = client.track_changes("contacts", SELECT, first.delta_link)
    assert empty.rows == [] and empty.deleted == []
    assert empty.delta_link


def test_delta_reports_changes_merges_and_deletions(sandbox: Any, client: DataverseClient) -> None:
    survivor = sandbox.store.insert("contact", {"lastname": "Survivor"})
    sub = sandbox.store.insert("contact", {"lastname": "Dup"})
    gone = sandbox.store.insert("contact", {"lastname": "Gone"})
    link = client.track_changes("contacts", SELECT).delta_link
    assert link

    auth = {"Authorization": f"Bearer {sandbox.mint_token()}"}
    client.http.post("Merge", headers=auth, json={
        "Target": {"@odata.type": NS + "contact", "contactid": survivor},
        "Subordinate": {"@odata.type": NS + "contact", "contactid": sub},
        "PerformParentingChecks": False,
    }).raise_for_status()
    client.delete("contacts", gone)

    with usage_scope() as usage:
        changes = client.track_changes("contacts", SELECT, link)
    assert usage.requests == 1
    by_id = {r["contactid"]: r for r in changes.rows}
    assert set(by_id) == {survivor, sub}
    assert by_id[sub]["merged"] is True and by_id[sub]["_masterid_value"] == survivor
    assert by_id[survivor]["merged"] is False
    assert changes.deleted == [gone]
    assert changes.delta_link and changes.delta_link != link

    later = client.track_changes("contacts", SELECT, changes.delta_link)
    assert later.rows == [] and later.deleted == []


def test_refused_link_and_foreign_host_raise(sandbox: Any, client: DataverseClient) -> None:
    link = client.track_changes("accounts", ["accountid"]).delta_link
    assert link
    sandbox.reset()  # the change log starts over: the token expired
    with pytest.raises(DataverseError) as info:
        client.track_changes("accounts", ["accountid"], link)
    assert info.value.status == 400
    with pytest.raises(DataverseError, match="another host"):
        client.track_changes("accounts", ["accountid"], "https://elsewhere.example/api/data/v9.2/accounts?$deltatoken=1")
