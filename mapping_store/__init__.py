"""The mapping store (workspaces, the four sections, history) and workspace API keys, on Table Storage.

Import from `mapping_store.store` and `mapping_store.keys`: this file stays light."""
