"""Pure domain: entities, normalisers, matching, the mapping engine, campaign aggregation, messages and
models. Imports nothing of ours outside this package, and nothing heavy (no httpx, no azure.*)."""
