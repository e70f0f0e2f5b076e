"""Mapping models (the four sections), their Table Storage persistence, and workspace API keys."""

from mapping_store.keys import KEY_PREFIX, ApiKeys, IssuedKey, hash_key, key_id_of
from mapping_store.store import (
    DEFAULT_ETAG,
    MAX_DOCUMENT_CHARS,
    SECTIONS,
    HistoryEntry,
    MappingStore,
    VersionedSection,
    WorkspaceMappings,
    authenticate,
    mapping_error_details,
)
from shared.domain.mappings import (
    SECTION_MODELS,
    ApiKeyRecord,
    CampaignMapping,
    ExportMapping,
    SyncMapping,
    UserMapping,
    Workspace,
    WorkspaceCreate,
    default_section,
)

__all__ = [
    "DEFAULT_ETAG",
    "KEY_PREFIX",
    "MAX_DOCUMENT_CHARS",
    "SECTIONS",
    "SECTION_MODELS",
    "ApiKeyRecord",
    "ApiKeys",
    "CampaignMapping",
    "ExportMapping",
    "HistoryEntry",
    "IssuedKey",
    "MappingStore",
    "SyncMapping",
    "UserMapping",
    "VersionedSection",
    "Workspace",
    "WorkspaceCreate",
    "WorkspaceMappings",
    "authenticate",
    "default_section",
    "hash_key",
    "key_id_of",
    "mapping_error_details",
]
