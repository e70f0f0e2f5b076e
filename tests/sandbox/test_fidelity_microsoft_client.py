"""Fidelity: Microsoft's PowerPlatform-Dataverse-Client 1.1.0, unchanged, against the sandbox over HTTPS
with a real azure-identity ManagedIdentityCredential. Any mismatch here is a sandbox bug."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.identity import ManagedIdentityCredential
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError

from devstack.dataverse_sandbox import SEED_IDS, Sandbox


@pytest.fixture
def client(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataverseClient]:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_cert_path)
    with DataverseClient(sandbox.url, ManagedIdentityCredential()) as dv:
        yield dv


def test_create_retrieve_query_update_delete(client: DataverseClient, sandbox: Sandbox) -> None:
    account_id = client.records.create("account", {
        "name": "Fidelity Ltd", "gd_domain": "fidelity.example", "industrycode": "Consulting",
        "numberofemployees": 12,
    })
    row = sandbox.store.get("account", account_id)
    assert row is not None and row["industrycode"] == 7  # the client turned the label into the option value

    record = client.records.retrieve("account", account_id, select=["name", "gd_domain"])
    assert record is not None and record["name"] == "Fidelity Ltd"
    assert client.records.retrieve("account", "00000000-0000-0000-0000-000000000001") is None

    found = client.records.list("account", filter="gd_domain eq 'acme.com'", select=["name"],
                                orderby=["modifiedon desc"], page_size=1)
    assert [r["name"] for r in found] == ["Acme Europe", "Acme Corporation"]
    assert sandbox.counters["GET accounts"] >= 2  # followed @odata.nextLink

    client.records.update("account", account_id, {"telephone1": "+1 555 0100"})
    assert sandbox.store.get("account", account_id)["telephone1"] == "+1 555 0100"  # type: ignore[index]

    contact_id = client.records.create("contact", {
        "firstname": "Fi", "lastname": "Delity",
        "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
    })
    assert sandbox.store.get("contact", contact_id)["_parentcustomerid_value"] == account_id  # type: ignore[index]

    client.records.delete("contact", contact_id)
    client.records.delete("account", account_id)
    assert sandbox.store.get("account", account_id) is None
    assert sandbox.tokens_issued == 1  # azure-identity cached the managed-identity token


def test_bulk_create_update_and_upsert(client: DataverseClient, sandbox: Sandbox) -> None:
    ids = client.records.create("contact", [{"firstname": "Bulk", "lastname": f"N{i}"} for i in range(3)])
    assert len(ids) == 3 and sandbox.counters["POST contacts/CreateMultiple"] == 1
    client.records.update("contact", ids, {"jobtitle": "Tester"})
    assert sandbox.counters["POST contacts/UpdateMultiple"] == 1
    assert {sandbox.store.get("contact", i)["jobtitle"] for i in ids} == {"Tester"}  # type: ignore[index]

    client.records.upsert("contact", [
        {"alternate_key": {"gd_genesyexternalid": "gen-1"}, "record": {"lastname": "One", "leadsourcecode": "Web"}},
        {"alternate_key": {"gd_genesyexternalid": "gen-2"}, "record": {"lastname": "Two"}},
    ])
    client.records.upsert("contact", [{"alternate_key": {"gd_genesyexternalid": "gen-1"},
                                       "record": {"firstname": "Again"}}])
    keyed = {r["gd_genesyexternalid"]: r for r in sandbox.store.rows("contact") if r["gd_genesyexternalid"]}
    assert set(keyed) == {"gen-1", "gen-2"}
    assert keyed["gen-1"]["fullname"] == "Again One" and keyed["gen-1"]["leadsourcecode"] == 8


def test_bulk_create_failure_surfaces_dataverse_error(client: DataverseClient, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("contact"))
    with pytest.raises(HttpError) as info:
        client.records.create("contact", [{"lastname": "ok"}, {"lastname": "x" * 51}])
    assert info.value.status_code == 400
    assert len(sandbox.store.rows("contact")) == before


def test_batch_with_changeset(client: DataverseClient, sandbox: Sandbox) -> None:
    batch = client.batch.new()
    batch.records.retrieve("account", SEED_IDS["account:acme"], select=["name"])
    with batch.changeset() as cs:
        ref = cs.records.create("account", {"name": "Batched Parent"})
        cs.records.create("contact", {"lastname": "Batched Child", "parentcustomerid_account@odata.bind": ref})
        cs.records.update("account", ref, {"telephone1": "42"})
    result = batch.execute()
    assert [r.status_code for r in result.responses] == [200, 204, 204, 204]
    assert result.responses[0].data is not None and result.responses[0].data["name"] == "Acme Corporation"
    parent_id = result.responses[1].entity_id
    assert parent_id is not None
    assert sandbox.store.get("account", parent_id)["telephone1"] == "42"  # type: ignore[index]
    children = [r for r in sandbox.store.rows("contact") if r["_parentcustomerid_value"] == parent_id]
    assert [c["lastname"] for c in children] == ["Batched Child"]


def test_batch_changeset_failure_rolls_back(client: DataverseClient, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("account"))
    batch = client.batch.new()
    with batch.changeset() as cs:
        cs.records.create("account", {"name": "Doomed"})
        cs.records.create("account", {"name": "n" * 161})
    result = batch.execute()
    assert [r.status_code for r in result.responses] == [400]
    assert result.responses[0].error_code == "0x80044331"
    assert len(sandbox.store.rows("account")) == before


def test_table_metadata(client: DataverseClient) -> None:
    info = client.tables.get("contact")
    assert info is not None
    assert info["entity_set_name"] == "contacts" and info["primary_id_attribute"] == "contactid"
