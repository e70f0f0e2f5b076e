"""The one Azure credential: every Azure connection (Dataverse tokens, Table Storage, Service Bus) uses it.

Managed identity when the platform advertises one (`IDENTITY_ENDPOINT` on App Service/Functions and in
the local sandbox, `MSI_ENDPOINT` on older hosts), with `AZURE_CLIENT_ID` for a user-assigned
identity; otherwise `DefaultAzureCredential` (a developer's `az login`). Built once by the composition
root, so its token cache is shared.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["azure_credential"]


def azure_credential(client_id: str | None) -> TokenCredential:
    # Imported here: azure.identity costs ~80 ms at import, paid on first use instead of at cold start.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"):
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)
