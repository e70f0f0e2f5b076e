"""Literals and In() fragments: quoting is exact, encoding is left to httpx and survives the round trip."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.dataverse.chunking import chunk_values
from shared.domain.odata import eq_filter, in_filter, in_values_json, odata_literal

ADVERSARIAL = ["O'Brien", "a+b@x.com", "ñandú@ejemplo.es", "x & y / z ? # % ( ) , ;", "''", "a=b$c:d@e"]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-1.5, "-1.5"),
        (Decimal("10.50"), "10.50"),
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (datetime(2024, 5, 1, 12, 30, tzinfo=UTC), "2024-05-01T12:30:00Z"),
        (datetime(2024, 5, 1, 14, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T12:30:00.25Z"),
        (datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00Z"),
        (date(2024, 5, 1), "2024-05-01"),
    ],
)
def test_odata_literal(value: object, literal: str) -> None:
    assert odata_literal(value) == literal


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), b"bytes"])
def test_odata_literal_refuses_what_has_no_literal(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        odata_literal(value)


@pytest.mark.parametrize("value", ADVERSARIAL)
def test_filter_survives_url_encoding_exactly(value: str) -> None:
    condition = eq_filter("emailaddress1", value)
    url = httpx.URL("https://org.crm.dynamics.com/api/data/v9.2/contacts", params={"$filter": condition})
    query = urlsplit(str(url)).query
    assert parse_qs(query, keep_blank_values=True, strict_parsing=True) == {"$filter": [condition]}


def test_in_values_are_json_strings_that_round_trip() -> None:
    encoded = in_values_json([*ADVERSARIAL, 7, uuid.UUID(int=1)])
    assert [json.loads(v) for v in encoded] == [*ADVERSARIAL, "7", str(uuid.UUID(int=1))]
    fragment = in_filter("emailaddress1", encoded[:2])
    assert fragment == (
        "Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[\"O'Brien\",\"a+b@x.com\"])"
    )


def test_chunks_respect_url_limit_and_value_cap() -> None:
    values = [json.dumps(f"person{i:05d}+tag@exämple.com") for i in range(3000)]

    def url_length(chunk: Sequence[str]) -> int:
        params = {"$filter": in_filter("emailaddress1", chunk)}
        return len(str(httpx.URL("https://org.crm.dynamics.com/api/data/v9.2/contacts", params=params)))

    chunks = chunk_values(values, url_length, max_url_length=32_768, max_values=10_000)
    assert len(chunks) > 1
    assert [v for chunk in chunks for v in chunk] == values
    assert all(url_length(chunk) < 32_768 for chunk in chunks)

    capped = chunk_values(values, url_length, max_url_length=32_768, max_values=100)
    assert max(len(c) for c in capped) == 100
    assert [v for chunk in capped for v in chunk] == values


def test_chunking_refuses_a_value_that_can_never_fit() -> None:
    with pytest.raises(ValueError, match="single value"):
        chunk_values(["x" * 500], lambda chunk: 100 + sum(len(v) for v in chunk), max_url_length=400, max_values=5)


def test_query_values_are_percent_encoded_exactly_like_urllib() -> None:
    import random
    from urllib.parse import quote

    from shared.domain.odata import _SAFE, encode_query

    rng = random.Random(7)
    alphabet = [chr(i) for i in range(0x20, 0x250)] + ["漢", "😀", "\u2028"]
    for _ in range(500):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert encode_query({"$filter": value}) == f"$filter={quote(value, safe=_SAFE)}"
