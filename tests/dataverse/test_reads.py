"""Queries against the sandbox: exact and safe literals, In() chunking, paging, $batch of GETs, get."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import RecordNotFound, ValidationFailed
from shared.domain.odata import eq_filter, odata_literal

pytestmark = pytest.mark.integration

ADVERSARIAL = [
    "O'Brien",
    "a+b@x.com",
    "ñandú@ejemplo.es",
    "amp & slash / question ? hash # pct % (paren) comma ,",
    "50%25 off+more=yes;x:y@z$",
    "''quoted''",
]


def _seed(sandbox: Any, values: list[str]) -> dict[str, str]:
    """One contact per value in `description` (a column no seed row uses), plus a decoy each."""
    ids = {}
    for value in values:
        ids[value] = sandbox.store.insert("contact", {"lastname": "Adversary", "description": value})
        sandbox.store.insert("contact", {"lastname": "Decoy", "description": value + "x"})
    return ids


def test_eq_filter_matches_adversarial_values_exactly(sandbox: Any, client: DataverseClient) -> None:
    ids = _seed(sandbox, ADVERSARIAL)
    for value, record_id in ids.items():
        rows = client.query("contacts", filter=eq_filter("description", value), select=["contactid", "description"])
        assert [(r["contactid"], r["description"]) for r in rows] == [(record_id, value)], value


def test_in_filter_matches_adversarial_values_exactly(sandbox: Any, client: DataverseClient) -> None:
    ids = _seed(sandbox, ADVERSARIAL)
    rows = client.query_in("contacts", "description", ADVERSARIAL, select=["description"])
    assert sorted((r["contactid"], r["description"]) for r in rows) == sorted(
        (record_id, value) for value, record_id in ids.items()
    )


def test_in_filter_with_extra_filter_and_no_values(sandbox: Any, client: DataverseClient) -> None:
    ids = _seed(sandbox, ["keep", "drop"])
    client_rows = client.query_in(
        "contacts", "description", ["keep", "drop"], select=["description"],
        extra_filter=f"contactid ne {ids['drop']}",
    )
    assert [r["contactid"] for r in client_rows] == [ids["keep"]]
    assert client.query_in("contacts", "description", [], select=["description"]) == []


def test_in_filter_chunks_long_lists_under_the_url_limit(sandbox: Any, client: DataverseClient) -> None:
    wanted = [f"person-{i:04d}+tag.{'x' * 40}@exämple.com" for i in range(1500)]
    for value in wanted[::50]:
        sandbox.store.insert("contact", {"lastname": "Chunk", "emailaddress1": value[:100]})
    values = [v[:100] for v in wanted]
    before = len(sandbox.request_log)
    rows = client.query_in("contacts", "emailaddress1", values, select=["emailaddress1"])
    assert sorted(r["emailaddress1"] for r in rows) == sorted(v[:100] for v in wanted[::50])
    gets = [r for r in list(sandbox.request_log)[before:] if r["method"] == "GET" and r["path"].endswith("contacts")]
    assert len(gets) >= 2
    for record in gets:
        assert len(sandbox.url) + len(record["path"]) + 1 + len(record["query"]) < 32_768


def test_in_filter_merges_duplicates_by_primary_key(sandbox: Any, client: DataverseClient) -> None:
    record_id = sandbox.store.insert("contact", {"lastname": "Case", "emailaddress1": "mixed@case.example"})
    values = ["mixed@case.example"] + [f"filler{i}@x.example" for i in range(10)] + ["MIXED@CASE.EXAMPLE"]
    client.in_chunk_size = 5
    rows = client.query_in("contacts", "emailaddress1", values, select=["emailaddress1"])
    assert [r["contactid"] for r in rows] == [record_id]


def test_query_follows_next_links(sandbox: Any, client: DataverseClient) -> None:
    ids = {sandbox.store.insert("contact", {"lastname": "Pager", "jobtitle": f"p{i}"}) for i in range(25)}
    before = len(sandbox.request_log)
    rows = client.query("contacts", filter="lastname eq 'Pager'", select=["contactid"], page_size=10)
    assert {r["contactid"] for r in rows} == ids
    pages = [r for r in list(sandbox.request_log)[before:] if r["method"] == "GET"]
    assert len(pages) == 3


def test_query_top_orderby_and_formatted_values(client: DataverseClient) -> None:
    rows = client.query(
        "accounts", select=["name", "industrycode", "modifiedon"], orderby="modifiedon desc", top=2,
        formatted_values=True,
    )
    assert len(rows) == 2
    assert rows[0]["modifiedon"] >= rows[1]["modifiedon"]
    assert "industrycode@OData.Community.Display.V1.FormattedValue" in rows[0]


def test_query_many_runs_independent_filters_in_one_batch(sandbox: Any, client: DataverseClient) -> None:
    ids = _seed(sandbox, ["alpha", "beta"])
    before = len(sandbox.request_log)
    results = client.query_many([
        ("contacts", eq_filter("description", "alpha"), ["description"]),
        ("contacts", f"description eq {odata_literal('beta')} and lastname eq 'Adversary'", ["description"]),
        ("contacts", eq_filter("description", "nobody"), ["description"]),
        ("accounts", eq_filter("name", "O'Brien & Sons"), ["name"]),
    ])
    assert [[r["contactid"] for r in rows] for rows in results[:3]] == [[ids["alpha"]], [ids["beta"]], []]
    assert [r["name"] for r in results[3]] == ["O'Brien & Sons"]
    posts = [r for r in list(sandbox.request_log)[before:] if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["path"].endswith("$batch")


def test_query_many_raises_a_failing_part_typed(client: DataverseClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        client.query_many([
            ("contacts", "lastname eq 'x'", ["lastname"]),
            ("contacts", "nosuchcolumn eq 'x'", ["lastname"]),
        ])
    assert caught.value.status == 400


def test_get_and_not_found(sandbox: Any, client: DataverseClient) -> None:
    record_id = sandbox.store.insert("contact", {"lastname": "Getter", "firstname": "Gail"})
    row = client.get("contacts", record_id, select=["firstname", "lastname"])
    assert (row["firstname"], row["lastname"]) == ("Gail", "Getter")
    with pytest.raises(RecordNotFound) as caught:
        client.get("contacts", str(uuid.uuid4()))
    assert caught.value.code == "0x80040217"
    with pytest.raises(ValueError):
        client.get("contacts", "not-a-guid) or (1 eq 1")
