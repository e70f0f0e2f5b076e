"""`POST /associations`: contact → company links, queued after the writes already queued.

Truthful per pair: an id that is neither in Dynamics nor one we issued and are still writing is an error
naming it; `created` counts the pairs that will actually link something new (not repeats in the call,
not contacts already under that company, not a company a later pair replaces). What the export's
matching and the worker saw a moment ago (`shared.storage.recent`) answers for most ids; the rest are
read in one `$batch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.dataverse.budget import Budget
from shared.dataverse.errors import DataverseError
from shared.domain.entities import COMPANY, is_guid, issued_kind
from shared.domain.matching import plan_id_queries
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.platform.correlation import current_correlation_id
from shared.platform.logs import logger
from shared.services.export import enqueue, pending_ids
from shared.services.matcher import run_queries
from shared.services.root import WorkspaceContext

__all__ = ["accept_associations"]

log = logger("associations")


@dataclass
class _State:
    """What is known about the call's ids: resolved through aliases, pending, parents, companies that exist."""

    contacts: dict[str, str]
    companies: dict[str, str]
    pending: set[str]
    parents: dict[str, str | None] = field(default_factory=dict)  # contact → parent ("" none, None unknown)
    known_companies: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)  # contacts whose parent Dynamics just told us

    def contact(self, requested: str) -> str | None:
        return self.contacts.get(requested.strip().lower()) if is_guid(requested) else None

    def company(self, requested: str) -> str | None:
        return self.companies.get(requested.strip().lower()) if is_guid(requested) else None

    def problem(self, contact: str | None, company: str | None) -> str | None:
        if contact is None or (contact not in self.pending and contact not in self.parents):
            return "Contact not found"
        if company is None or company not in self.known_companies:
            return "Company not found"
        return None


def _current_parents(
    ctx: WorkspaceContext, contacts: Sequence[str], companies: Sequence[str]
) -> tuple[dict[str, str], set[str]] | None:
    """(contact id → its parent account id or "", the company ids that exist): one `$batch` of two reads."""
    entity, parent = ctx.contact, str(ctx.contact.parent_value)
    queries = [
        *plan_id_queries(entity.entity_set, entity.primary_id, contacts, [parent]),
        *plan_id_queries(COMPANY.entity_set, COMPANY.primary_id, companies, []),
    ]
    if not queries:
        return {}, set()
    try:
        found = run_queries(ctx.client, queries, Budget(ctx.settings.match_timeout_seconds * 2))
    except DataverseError as exc:
        log.warning("could not check associations: %s", exc.code or type(exc).__name__)
        return None
    rows = [row for part in found for row in part]
    parents = {
        str(r[entity.primary_id]).lower(): str(r.get(parent) or "").lower() for r in rows if entity.primary_id in r
    }
    return parents, {str(r[COMPANY.primary_id]).lower() for r in rows if COMPANY.primary_id in r}


def _seen_recently(ctx: WorkspaceContext, state: _State, contacts: Iterable[str]) -> tuple[list[str], list[str]]:
    """Fill `state` from what this process saw a moment ago; the contacts and companies left to read."""
    recent, workspace = ctx.services.recent, ctx.workspace.id
    read_contacts: list[str] = []
    for contact in dict.fromkeys(contacts):
        seen, parent = recent.get(workspace, "contact", contact)
        if seen and parent is not None:
            state.parents[contact] = parent
        else:
            read_contacts.append(contact)
    read_companies: list[str] = []
    for company in dict.fromkeys(state.companies.values()):
        if issued_kind(workspace, company) == "company" or recent.get(workspace, "company", company)[0]:
            state.known_companies.add(company)
        else:
            read_companies.append(company)
    return read_contacts, read_companies


def _state(ctx: WorkspaceContext, pairs: Sequence[Mapping[str, str]]) -> _State:
    valid = [(str(p["contactCRMId"]), str(p["companyCRMId"])) for p in pairs]
    valid = [(c.strip().lower(), k.strip().lower()) for c, k in valid if is_guid(c) and is_guid(k)]
    aliases = ctx.services.aliases
    contacts = aliases.resolve(ctx.workspace.id, "contact", [c for c, _ in valid])
    state = _State(contacts, aliases.resolve(ctx.workspace.id, "company", [k for _, k in valid]), set())
    state.pending = pending_ids(ctx, "contact", contacts.values())
    read_contacts, read_companies = _seen_recently(ctx, state, [c for c in contacts.values() if c not in state.pending])
    fresh = _current_parents(ctx, read_contacts, read_companies)
    if fresh is None:  # Dynamics could not say: accept, the worker reports what fails in the ledger
        state.parents.update(dict.fromkeys(read_contacts, None))
        state.known_companies.update(read_companies)
    else:
        state.parents.update(fresh[0])
        state.known_companies.update(fresh[1])
        state.read = set(read_contacts)
    return state


@dataclass
class _Verdict:
    items: list[WriteItem] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    already: int = 0


def _judge(pairs: Sequence[Mapping[str, str]], state: _State) -> _Verdict:
    """Pure: each pair is an error, a repeat, a link that exists (written again only when not just read),
    or a link to write."""
    verdict, seen = _Verdict(), set()
    for pair in pairs:
        contact_id, company_id = str(pair["contactCRMId"]), str(pair["companyCRMId"])
        contact, company = state.contact(contact_id), state.company(company_id)
        problem = state.problem(contact, company)
        if problem or contact is None:
            verdict.errors.append({"contactCRMId": contact_id, "companyCRMId": company_id, "error": problem or ""})
            continue
        key = (contact_id.strip().lower(), company_id.strip().lower())
        if key in seen:
            continue
        seen.add(key)
        linked = contact not in state.pending and state.parents.get(contact) == company
        verdict.already += linked
        if not (linked and contact in state.read):
            verdict.items.append(WriteItem(crm_id=key[0], company_id=key[1], matched=True))
    return verdict


def _created(verdict: _Verdict, state: _State) -> int:
    """Links actually new: a contact named with several companies ends under the last one."""
    last = {item.crm_id: str(item.company_id) for item in verdict.items}
    return sum(
        1 for contact, company in last.items() if state.parents.get(state.contacts[contact]) != state.companies[company]
    )


def accept_associations(ctx: WorkspaceContext, pairs: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """`POST /associations` (see the module docstring)."""
    if not pairs:
        return {"success": True, "created": 0}
    state = _state(ctx, pairs)
    verdict = _judge(pairs, state)
    if verdict.items:
        message = WriteMessage(
            operation="associate",
            workspace_id=ctx.workspace.id,
            kind="association",
            items=verdict.items,
            correlation_id=current_correlation_id(),
        )
        enqueue(ctx, message)
    success = bool(verdict.items) or bool(verdict.already) or not verdict.errors
    body: dict[str, Any] = {"success": success, "created": _created(verdict, state)}
    if verdict.errors:
        body["errors"] = verdict.errors
    return body
