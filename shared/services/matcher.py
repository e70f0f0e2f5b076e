"""The one matcher, used by the HTTP side (accept, sync) and by the writes worker (re-check).

Plan the candidate queries (pure), read them in one `$batch` (I/O), match (pure). A record whose
LinkedIn URL found nothing may be stored in a form only the slug fallback finds: `/sync` asks for it in a
second read, the worker in its one re-check `$batch`; accepting an export does not (Genesy is waiting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.dataverse.budget import Budget
from shared.dataverse.client import DataverseClient
from shared.domain.matching import (
    CandidateQuery,
    Match,
    MatchTarget,
    match_records,
    match_with_fallback,
    plan_candidate_queries,
    plan_fallback_queries,
)

__all__ = ["find_matches", "match_planned", "recheck_queries", "run_queries"]


def run_queries(
    client: DataverseClient, queries: Sequence[CandidateQuery], budget: Budget
) -> list[list[dict[str, Any]]]:
    """Planned queries in one `$batch` of GETs (one request for up to 1000 queries)."""
    if not queries:
        return []
    return client.query_many([(q.entity_set, q.filter, list(q.select), q.expand) for q in queries], budget=budget)


def find_matches(
    client: DataverseClient,
    target: MatchTarget,
    records: Sequence[Mapping[str, Any]],
    budget: Budget,
    *,
    fallback: bool = True,
) -> dict[str, Match]:
    """One batched read of candidates, then the pure matcher; with `fallback`, a second read only when a
    record with a LinkedIn URL matched nothing."""
    if fallback:
        return match_with_fallback(target, records, lambda queries: run_queries(client, queries, budget))
    queries = plan_candidate_queries(target, records)
    return match_records(target, records, queries, run_queries(client, queries, budget)) if queries else {}


def recheck_queries(target: MatchTarget, records: Sequence[Mapping[str, Any]]) -> list[CandidateQuery]:
    """The worker's re-check of records not matched at accept time, slug fallback included (they all
    missed the exact lookup then), to ride in the worker's one `$batch`."""
    if not records:
        return []
    return [*plan_candidate_queries(target, records), *plan_fallback_queries(target, records, {})]


def match_planned(
    target: MatchTarget,
    records: Sequence[Mapping[str, Any]],
    queries: Sequence[CandidateQuery],
    rows: Sequence[Sequence[Mapping[str, Any]]],
) -> dict[str, Match]:
    """Match records against the rows their planned queries returned (pure)."""
    return match_records(target, records, queries, rows) if records else {}
