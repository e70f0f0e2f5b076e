"""Matching Genesy records to existing Dynamics records (input / sync mapping). Pure: no I/O.

Two steps around one batched read:
1. `plan_candidate_queries` turns the records and the OR-of-AND rules into a few broad `$filter`s
   (one anchor condition per rule, values chunked to keep URLs short) that fetch every possible match;
2. `match_records` decides precisely on the fetched rows, normalising both sides the same way.

LinkedIn URLs are first looked up by their usual exact forms (index-friendly `In()`). A URL stored
with a country subdomain or a query string is not among them: `plan_fallback_queries` asks, for the
records nothing matched, for rows whose column contains `/in/<slug>` — a second read, only then —
and `match_records` keeps only the rows whose normalised slug is exactly the record's.
`match_with_fallback` runs both reads through a query runner the caller passes in.

Several matches for one record: the most recently modified active record wins, the others are noted.
Records in one call that identify the same person or company are grouped, so a batch never creates
two records for one identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from shared.domain.mappings import CompanyMatching, ContactMatching, MatchCondition, MatchRule, Normaliser
from shared.domain.normalise import encode_linkedin_slug, normalise, normalise_name, strip_accents
from shared.domain.odata import encoded_length, in_filter, in_values_json, odata_literal

__all__ = [
    "CandidateQuery",
    "Match",
    "MatchTarget",
    "QueryRunner",
    "group_identities",
    "match_records",
    "match_with_fallback",
    "plan_candidate_queries",
    "plan_fallback_queries",
    "plan_id_queries",
    "record_keys",
]

# Each $filter's percent-encoded length stays under this, well within Dataverse's URL limit (32,768).
MAX_FILTER_CHARS = 24000
_ANCHOR_PREFERENCE = {
    Normaliser.EMAIL: 0,
    Normaliser.LINKEDIN: 1,
    Normaliser.PHONE: 2,
    Normaliser.DOMAIN: 3,
    Normaliser.EXACT: 4,
    Normaliser.NAME: 5,
}
_LOOKUP_SUFFIXES = ("account", "contact", "lead")


@dataclass(frozen=True)
class MatchTarget:
    """The Dynamics table being matched against and how its rows look."""

    entity_set: str
    primary_id: str
    rules: tuple[MatchRule, ...]
    any_domain_extension: bool = False
    company_field: str = "company"  # Genesy fields compared as company names (suffixes ignored)
    company_entity: bool = False  # matching companies: every NAME condition is a company name
    extra_select: tuple[str, ...] = ()

    @cached_property
    def specs(self) -> dict[int, tuple[str, bool]]:
        """Per condition (by identity): its normaliser's name and whether it compares company names —
        worked out once, as matching normalises thousands of values per call."""
        return {
            id(condition): (condition.normaliser.value, _is_company_name(self, condition))
            for rule in self.rules
            for condition in rule.all_of
        }

    @classmethod
    def for_contacts(
        cls, matching: ContactMatching, contact_entity: str = "contact", extra_select: Iterable[str] = ()
    ) -> MatchTarget:
        entity_set, primary_id = ("leads", "leadid") if contact_entity == "lead" else ("contacts", "contactid")
        return cls(entity_set, primary_id, tuple(matching.effective_rules()), extra_select=tuple(extra_select))

    @classmethod
    def for_companies(cls, matching: CompanyMatching, extra_select: Iterable[str] = ()) -> MatchTarget:
        return cls(
            "accounts",
            "accountid",
            tuple(matching.effective_rules()),
            any_domain_extension=matching.any_domain_extension,
            company_entity=True,
            extra_select=tuple(extra_select),
        )


@dataclass(frozen=True)
class CandidateQuery:
    entity_set: str
    filter: str
    select: tuple[str, ...]
    purpose: str  # "candidates" or "current"
    expand: str | None = None  # lookups read with the row, e.g. `parentcustomerid_account($select=name)`


@dataclass
class Match:
    external_id: str
    crm_id: str
    rule_index: int
    row: dict[str, Any]
    ambiguous_ids: list[str] = field(default_factory=list)


def _lookup_parts(column: str) -> tuple[str, str] | None:
    if "/" not in column:
        return None
    nav, attribute = column.split("/", 1)
    return nav, attribute


def _lookup_value_column(nav: str) -> str:
    """`parentcustomerid_account` → `_parentcustomerid_value`; `parentaccountid` → `_parentaccountid_value`."""
    base = nav
    for suffix in _LOOKUP_SUFFIXES:
        if nav.endswith("_" + suffix):
            base = nav[: -len(suffix) - 1]
            break
    return f"_{base}_value"


def _is_company_name(target: MatchTarget, condition: MatchCondition) -> bool:
    return condition.normaliser is Normaliser.NAME and (
        target.company_entity or condition.field == target.company_field or "/" in condition.column
    )


def _norm(target: MatchTarget, condition: MatchCondition, value: Any) -> str:
    kind, company = target.specs[id(condition)]
    if isinstance(value, str):
        return _cached_normalise(kind, value, target.any_domain_extension, company)
    return normalise(kind, value, any_domain_extension=target.any_domain_extension, company=company)


@lru_cache(maxsize=131072)
def _cached_normalise(kind: str, value: str, any_domain_extension: bool, company: bool) -> str:
    # One call normalises the same values several times (planning, grouping, matching).
    return normalise(kind, value, any_domain_extension=any_domain_extension, company=company)


def _anchor(rule: MatchRule) -> MatchCondition:
    plain = [c for c in rule.all_of if "/" not in c.column]
    pool = plain or list(rule.all_of)
    # Among names, the last name is the most selective.
    return min(pool, key=lambda c: (_ANCHOR_PREFERENCE[c.normaliser], c.field != "lastName"))


def _rule_values(target: MatchTarget, rule: MatchRule, record: Mapping[str, Any]) -> tuple[str, ...] | None:
    values = tuple(_norm(target, c, record.get(c.field)) for c in rule.all_of)
    return values if all(values) else None


def record_keys(target: MatchTarget, record: Mapping[str, Any]) -> list[tuple[int, tuple[str, ...]]]:
    """The identity keys of a record: one per rule it has every field for."""
    keys = []
    for index, rule in enumerate(target.rules):
        values = _rule_values(target, rule, record)
        if values is not None:
            keys.append((index, values))
    return keys


def _server_terms(target: MatchTarget, condition: MatchCondition, raw: Any) -> tuple[str, list[str]]:
    """How to find candidates server-side: ("in", values) or ("contains"/"startswith", fragments)."""
    text = str(raw).strip()
    kind = condition.normaliser
    normalised = _norm(target, condition, raw)
    if kind is Normaliser.LINKEDIN:
        return "in", _linkedin_variants(normalised, text) if normalised else []
    if kind is Normaliser.DOMAIN:
        return "contains", [normalised + "." if target.any_domain_extension else normalised]
    if kind is Normaliser.NAME and _is_company_name(target, condition):
        # The first word as written, without accents, and normalised: Dynamics compares case-insensitively
        # but not accent- or punctuation-insensitively, so ask for each form.
        raw_first = text.split()[0].rstrip(",.") if text.split() else text
        core = normalise_name(text, company=True)
        forms = {raw_first, strip_accents(raw_first), core.split(" ")[0] if core else ""}
        return "startswith", sorted(f for f in forms if len(f) >= 2) or [text]
    if kind is Normaliser.NAME:
        variants = {text, strip_accents(text)}
        return "in", sorted(variants)
    if kind is Normaliser.EMAIL:
        return "in", [normalised]
    return "in", sorted({text, normalised})


# How profile URLs are usually stored: ours (the first), as a browser copies it (with the slash), and the
# older or hand-typed forms. Any other form (a country subdomain, a query string...) is left to the
# slug fallback, so that this list, sent for every record, stays short.
_LINKEDIN_FORMS = (
    "https://www.linkedin.com/{}",
    "https://www.linkedin.com/{}/",
    "https://linkedin.com/{}",
    "https://linkedin.com/{}/",
    "http://www.linkedin.com/{}",
    "http://www.linkedin.com/{}/",
    "www.linkedin.com/{}",
    "linkedin.com/{}",
)


def _slug_forms(slug: str) -> list[str]:
    """The slug as decoded text and, when they differ, percent-encoded as a browser copies it (and as we
    write it)."""
    encoded = encode_linkedin_slug(slug)
    return [slug] if encoded == slug else [slug, encoded]


def _linkedin_variants(normalised: str, raw: str) -> list[str]:
    """The usual stored forms of a profile URL (`_LINKEDIN_FORMS`, with the slug decoded and percent-
    encoded) and the URL exactly as Genesy sent it, for an exact, index-friendly `In()`.

    Dynamics compares case-insensitively, so case needs no variants. A URL stored with a country
    subdomain or a query string is not among them: `plan_fallback_queries` finds it.
    """
    kind, slug = normalised.split("/", 1)
    forms = {raw}
    for slug_form in _slug_forms(slug):
        forms.update(form.format(f"{kind}/{slug_form}") for form in _LINKEDIN_FORMS)
    return sorted(forms)


def _chunks(terms: Sequence[str], renderer: tuple[Callable[[list[str]], str], Callable[[str], int]]) -> Iterable[str]:
    """Render `terms` in as few filters as fit MAX_FILTER_CHARS each (sizes summed, not re-rendered)."""
    render, piece_length = renderer
    frame = 200  # the function call around the terms, e.g. `Microsoft.Dynamics.CRM.In(PropertyName=…`
    chunk: list[str] = []
    size = frame
    for term in terms:
        piece = piece_length(term)
        if frame + piece > MAX_FILTER_CHARS:
            continue  # no real identity is this long (the normalisers refuse them first); never a URL too long
        if chunk and size + piece > MAX_FILTER_CHARS:
            yield render(chunk)
            chunk, size = [], frame
        chunk.append(term)
        size += piece
    if chunk:
        yield render(chunk)


def _renderer(column: str, mode: str) -> tuple[Callable[[list[str]], str], Callable[[str], int]]:
    """How to render a chunk of terms as one `$filter` (an In() call or an `or` chain of string
    functions), and the most one term adds to the filter's percent-encoded length."""
    if mode == "in":
        return (lambda chunk: in_filter(column, in_values_json(chunk))), (
            lambda t: encoded_length(in_values_json([t])[0]) + 1
        )
    return (
        lambda chunk: " or ".join(f"{mode}({column},{odata_literal(t)})" for t in chunk),
        lambda t: encoded_length(f" or {mode}({column},{odata_literal(t)})"),
    )


def _select_columns(target: MatchTarget) -> tuple[str, ...]:
    columns: dict[str, None] = {target.primary_id: None, "modifiedon": None, "statecode": None}
    for rule in target.rules:
        for condition in rule.all_of:
            parts = _lookup_parts(condition.column)
            columns[_lookup_value_column(parts[0]) if parts else condition.column] = None
    for column in target.extra_select:
        columns[column] = None
    return tuple(columns)


def _expand_clause(target: MatchTarget) -> str | None:
    """`$expand` for the lookup paths the rules compare, so the related name comes with each row."""
    attributes: dict[str, dict[str, None]] = {}
    for rule in target.rules:
        for condition in rule.all_of:
            parts = _lookup_parts(condition.column)
            if parts:
                attributes.setdefault(parts[0], {})[parts[1]] = None
    if not attributes:
        return None
    return ",".join(f"{nav}($select={','.join(attrs)})" for nav, attrs in sorted(attributes.items()))


def _narrowing(target: MatchTarget, rule: MatchRule, anchor: MatchCondition) -> MatchCondition | None:
    """A second exact condition to AND with an exact anchor (first name with last name), so common
    values such as a popular surname don't bring back thousands of candidates."""
    if _server_mode(target, anchor) != "in":
        return None
    others = [c for c in rule.all_of if c is not anchor and "/" not in c.column and _server_mode(target, c) == "in"]
    return min(others, key=lambda c: _ANCHOR_PREFERENCE[c.normaliser]) if others else None


def _server_mode(target: MatchTarget, condition: MatchCondition) -> str:
    """How `_server_terms` looks this condition up: "in", "contains" or "startswith"."""
    if condition.normaliser is Normaliser.DOMAIN:
        return "contains"
    if condition.normaliser is Normaliser.NAME and _is_company_name(target, condition):
        return "startswith"
    return "in"


def plan_candidate_queries(target: MatchTarget, records: Sequence[Mapping[str, Any]]) -> list[CandidateQuery]:
    """The `$filter`s that together return every row that could match any of `records`."""
    select = _select_columns(target)
    expand = _expand_clause(target)
    queries: list[CandidateQuery] = []
    for rule in target.rules:
        anchor = _anchor(rule)
        second = _narrowing(target, rule, anchor)
        mode = ""
        terms: dict[str, None] = {}
        pairs: dict[tuple[str, str], None] = {}
        for record in records:
            if _rule_values(target, rule, record) is None:
                continue
            mode, found = _server_terms(target, anchor, record.get(anchor.field))
            extra = _server_terms(target, second, record.get(second.field))[1] if second else []
            for term in found:
                terms[term] = None
                for other in extra:
                    pairs[(term, other)] = None
        if not terms:
            continue
        if second is None:
            render = _renderer(anchor.column, mode)
            filters = list(_chunks(sorted(terms), render))
        else:
            filters = list(_paired_chunks(anchor.column, second.column, list(pairs)))
        queries.extend(CandidateQuery(target.entity_set, f, select, "candidates", expand) for f in filters)
    return queries


def _paired_chunks(first: str, second: str, pairs: Sequence[tuple[str, str]]) -> Iterable[str]:
    """`In(first, …) and In(second, …)` over chunks of value pairs, each within MAX_FILTER_CHARS."""
    (render_a, size_a), (render_b, size_b) = _renderer(first, "in"), _renderer(second, "in")
    chunk_a: dict[str, None] = {}
    chunk_b: dict[str, None] = {}
    size = 400
    for a, b in pairs:
        piece_a = 0 if a in chunk_a else size_a(a)
        piece_b = 0 if b in chunk_b else size_b(b)
        if 400 + piece_a + piece_b > MAX_FILTER_CHARS:
            continue  # as in `_chunks`: a pair that cannot fit any filter is no identity
        grow = piece_a + piece_b
        if chunk_a and size + grow > MAX_FILTER_CHARS:
            yield f"{render_a(list(chunk_a))} and {render_b(list(chunk_b))}"
            chunk_a, chunk_b, size = {}, {}, 400
            grow = size_a(a) + size_b(b)
        chunk_a[a] = None
        chunk_b[b] = None
        size += grow
    if chunk_a:
        yield f"{render_a(list(chunk_a))} and {render_b(list(chunk_b))}"


def _fallback_fragments(normalised: str) -> list[str]:
    """`/in/<slug>` as `contains()` fragments (decoded and percent-encoded). A `[` opens a character class
    in Dataverse's LIKE, so a fragment stops before one; one too short to be selective is not asked."""
    kind, slug = normalised.split("/", 1)
    cut = {f"/{kind}/{slug_form}".split("[", 1)[0] for slug_form in _slug_forms(slug)}
    fragments = sorted(f for f in cut if len(f) >= len(kind) + 4)
    # A fragment containing another finds nothing more.
    return [f for f in fragments if not any(other != f and other in f for other in fragments)]


def plan_fallback_queries(
    target: MatchTarget, records: Sequence[Mapping[str, Any]], matches: Mapping[str, Match]
) -> list[CandidateQuery]:
    """The second read, for LinkedIn URLs stored in a form the exact lookup cannot name (a country or
    mobile subdomain, a query string, a fragment...): `contains(column,'/in/<slug>')` for each record
    with a LinkedIn URL that `matches` (the first read's result) has nothing for. Empty when there is
    no such record. `match_records` over both reads then keeps only exact slug matches, so
    `/in/jose-garcia-2` never stands for `/in/jose-garcia`."""
    select = _select_columns(target)
    expand = _expand_clause(target)
    queries: list[CandidateQuery] = []
    for rule in target.rules:
        linkedin = [c for c in rule.all_of if c.normaliser is Normaliser.LINKEDIN and "/" not in c.column]
        if not linkedin:
            continue
        condition = linkedin[0]
        fragments: dict[str, None] = {}
        for record in records:
            if str(record.get("externalId", "")) in matches or _rule_values(target, rule, record) is None:
                continue
            for fragment in _fallback_fragments(_norm(target, condition, record.get(condition.field))):
                fragments[fragment] = None
        filters = _chunks(sorted(fragments), _renderer(condition.column, "contains")) if fragments else []
        queries.extend(CandidateQuery(target.entity_set, f, select, "candidates", expand) for f in filters)
    return queries


QueryRunner = Callable[[Sequence[CandidateQuery]], Sequence[Sequence[Mapping[str, Any]]]]
"""Runs planned queries (e.g. in one `$batch`) and returns each one's rows, in order."""


def match_with_fallback(
    target: MatchTarget, records: Sequence[Mapping[str, Any]], run: QueryRunner
) -> dict[str, Match]:
    """`match_records` over the candidate read, plus the LinkedIn fallback read when (and only when) a
    record with a LinkedIn URL matched nothing in the first. `run` does the I/O."""
    queries = plan_candidate_queries(target, records)
    if not queries:
        return {}
    results = list(run(queries))
    matches = match_records(target, records, queries, results)
    fallback = plan_fallback_queries(target, records, matches)
    if not fallback:
        return matches
    return match_records(target, records, [*queries, *fallback], [*results, *run(fallback)])


def plan_id_queries(
    entity_set: str, primary_id: str, ids: Iterable[str], select: Iterable[str], purpose: str = "current"
) -> list[CandidateQuery]:
    """Queries reading the current values of records by id (In() on the primary key, chunked)."""
    columns = tuple(dict.fromkeys([primary_id, *select]))
    wanted = sorted({i.lower() for i in ids})
    render = _renderer(primary_id, "in")
    return [CandidateQuery(entity_set, f, columns, purpose) for f in _chunks(wanted, render)]


def _row_value(row: Mapping[str, Any], condition: MatchCondition) -> Any:
    parts = _lookup_parts(condition.column)
    if not parts:
        return row.get(condition.column)
    related = row.get(parts[0])
    return related.get(parts[1]) if isinstance(related, Mapping) else None


def _best(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    def rank(row: Mapping[str, Any]) -> tuple[int, str]:
        active = 1 if row.get("statecode") in (0, None) else 0
        return active, str(row.get("modifiedon") or "")

    return max(rows, key=rank)


def match_records(
    target: MatchTarget,
    records: Sequence[Mapping[str, Any]],
    queries: Sequence[CandidateQuery],
    results: Sequence[Sequence[Mapping[str, Any]]],
) -> dict[str, Match]:
    """externalId → the Dynamics row it matches, for the records that match anything."""
    rows: dict[str, dict[str, Any]] = {}
    for query, found in zip(queries, results, strict=True):
        if query.purpose == "candidates":
            for row in found:
                rows[str(row[target.primary_id]).lower()] = dict(row)
    # Index candidate rows per rule by their normalised rule values.
    indexes: list[dict[tuple[str, ...], list[dict[str, Any]]]] = []
    for rule in target.rules:
        index: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows.values():
            key = tuple(_norm(target, c, _row_value(row, c)) for c in rule.all_of)
            if all(key):
                index.setdefault(key, []).append(row)
        indexes.append(index)
    matches: dict[str, Match] = {}
    for record in records:
        external_id = str(record.get("externalId", ""))
        for rule_index, key in record_keys(target, record):
            found_rows = indexes[rule_index].get(key)
            if not found_rows:
                continue
            best = _best(found_rows)
            best_id = str(best[target.primary_id]).lower()
            others = sorted(str(r[target.primary_id]).lower() for r in found_rows if r is not best)
            matches[external_id] = Match(external_id, best_id, rule_index, dict(best), others)
            break
    return matches


def group_identities(target: MatchTarget, records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """externalId → the externalId of the first record in the call with the same identity (itself if none)."""
    owner_of_key: dict[tuple[int, tuple[str, ...]], str] = {}
    parent: dict[str, str] = {}

    def find(item: str) -> str:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for record in records:
        external_id = str(record.get("externalId", ""))
        parent.setdefault(external_id, external_id)
        for key in record_keys(target, record):
            other = owner_of_key.setdefault(key, external_id)
            if other != external_id:
                root_a, root_b = find(other), find(external_id)
                if root_a != root_b:
                    parent[root_b] = root_a
    order = {str(r.get("externalId", "")): i for i, r in reversed(list(enumerate(records)))}
    groups: dict[str, list[str]] = {}
    for external_id in parent:
        groups.setdefault(find(external_id), []).append(external_id)
    leader: dict[str, str] = {}
    for members in groups.values():
        first = min(members, key=lambda m: order.get(m, 0))
        for member in members:
            leader[member] = first
    return leader
