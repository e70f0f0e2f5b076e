"""The process-wide Azure credential used for Dataverse tokens.

Managed identity when the platform advertises one (`IDENTITY_ENDPOINT` on App Service/Functions and in
the sandbox, `MSI_ENDPOINT` on older hosts); otherwise `DefaultAzureCredential`, i.e. a developer's
`az login`. One instance per process so its token cache is shared by every client.
"""

from __future__ import annotations

import os
import threading

from azure.core.credentials import TokenCredential

from shared.platform.settings import Settings

__all__ = ["dataverse_credential", "reset_credential_cache"]

_lock = threading.Lock()
_credential: TokenCredential | None = None


def _managed_identity_available() -> bool:
    return bool(os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"))


def dataverse_credential(settings: Settings) -> TokenCredential:
    """The credential for Dataverse (created on first use, then reused)."""
    global _credential
    with _lock:
        if _credential is None:
            # Imported here: azure.identity costs ~80 ms at import, paid on first use instead of at cold start.
            from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

            if _managed_identity_available():
                _credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
            else:
                _credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        return _credential


def reset_credential_cache() -> None:
    """Forget the cached credential (tests that switch identity endpoints)."""
    global _credential
    with _lock:
        _credential = None
