"""Fixtures for the Dataverse client tests: the sandbox (registered by tests/conftest.py), managed
identity through its fake endpoint (the real azure-identity code path), and a client per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from shared.dataverse.client import DataverseClient


@pytest.fixture
def managed_identity(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """IDENTITY_ENDPOINT/IDENTITY_HEADER/DATAVERSE_CA_BUNDLE of the sandbox in the environment."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    yield


@pytest.fixture
def credential(managed_identity: None) -> ManagedIdentityCredential:
    return ManagedIdentityCredential()


def make_client(sandbox: Any, credential: ManagedIdentityCredential, **kwargs: Any) -> DataverseClient:
    options: dict[str, Any] = {"ca_bundle": sandbox.ca_cert_path, "timeout": 10.0, "default_budget": 30.0}
    options.update(kwargs)
    return DataverseClient(sandbox.url, credential, **options)


@pytest.fixture
def client(sandbox: Any, credential: ManagedIdentityCredential) -> Iterator[DataverseClient]:
    with make_client(sandbox, credential) as instance:
        yield instance
