"""Dataverse (Dynamics 365) Web API client: typed errors, budgets, throttling-aware retries, `$batch`.

Import from the modules (`shared.dataverse.client`, `.errors`, `.budget`, …): this file stays light."""
