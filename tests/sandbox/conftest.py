"""Helpers for the sandbox's own tests. The `sandbox` fixtures come from `devstack.pytest_sandbox`,
registered by tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.dataverse_sandbox import Sandbox


def make_client(sb: Sandbox, token: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    if token is not False:
        headers["Authorization"] = f"Bearer {token or sb.mint_token()}"
    return httpx.Client(base_url=sb.api_url, verify=sb.ssl_context(), headers=headers, **kwargs)


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An authenticated HTTPS client for the Web API of a freshly reset sandbox."""
    with make_client(sandbox, timeout=30) as client:
        yield client


def error_of(resp: httpx.Response) -> dict[str, str]:
    body = resp.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])
