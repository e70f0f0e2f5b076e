"""What the admin console needs beyond the admin API's use cases, and each page's data in one place.

The console calls the same use cases as the admin API (`validation.save_section`, `metadata`,
`preview`, `operations`); this module only composes them for a page, plus three small things the admin
API lacks: restoring a section to an earlier version (a save of that version's document, so it is
checked and versioned like any other), the last reconciliation run (whoever started it) with who started
it, and sync outcomes counted per day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mapping_store.store import HistoryEntry, VersionedSection
from shared.domain.mappings import Workspace
from shared.platform.errors import AppError, NotFound
from shared.services import metadata, operations, preview, validation
from shared.services.metadata import ColumnInfo, UserInfo
from shared.services.root import Services
from shared.services.validation import MappingProblem, SavedSection

__all__ = [
    "MappingPage",
    "SyncHealthPage",
    "dead_letters",
    "fix_for",
    "last_reconciliation",
    "mapping_page",
    "restore_section",
    "run_reconciliation",
    "sync_health_page",
]

HISTORY_SHOWN = 10

# Dataverse error codes an export meets most, and what the admin does about each.
_FIXES = {
    "0x80040200": "Dynamics requires the column named in the reason: map a Genesy field or a fixed value to it "
    "(Export step), then retry.",
    "0x80044331": "The value is longer than the column holds: map a longer column, or let the value be cut, "
    "then retry.",
    "0x8004431a": "The value is not one of the column's choices: use one of its labels (Export step), then retry.",
    "0x80060888": "The column does not exist in this environment: remove or change it in the Export step, then retry.",
    "0x80048d19": "The value has the wrong type for the column: map a column of the right type, then retry.",
    "0x80040217": "The record no longer exists in Dynamics (deleted or merged): export it again from Genesy.",
    "0x80040237": "A duplicate of a unique value: check the record's key columns in Dynamics, then retry.",
}


def fix_for(code: str | None) -> str:
    """What to do about a record Dataverse refused with `code`."""
    return _FIXES.get((code or "").lower(), "Correct the mapping or the record in Genesy, then retry.")


# ---------------------------------------------------------------------------------------------
# Mapping pages


@dataclass
class MappingPage:
    """One mapping step: the section as stored (with its ETag), its history, the stored mappings' problems
    with this section, and the live metadata the editors offer (None when Dynamics did not answer)."""

    workspace: Workspace
    section: VersionedSection
    history: list[HistoryEntry]
    problems: list[MappingProblem]
    columns: dict[str, list[ColumnInfo]] | None
    users: list[UserInfo] | None
    identities: list[dict[str, Any]] = field(default_factory=list)
    unavailable: str | None = None


def _columns(services: Services, workspace: Workspace) -> dict[str, list[ColumnInfo]]:
    contact = metadata.table_metadata(services, workspace.id, workspace.contact_entity).columns
    return {"contact": contact, "company": metadata.table_metadata(services, workspace.id, "account").columns}


def mapping_page(services: Services, workspace_id: str, section: str) -> MappingPage:
    store = services.store
    workspace = store.get_workspace(workspace_id)
    page = MappingPage(
        workspace=workspace,
        section=store.get_section(workspace_id, section),
        history=store.history(workspace_id, section, HISTORY_SHOWN),
        problems=[],
        columns=None,
        users=None,
    )
    try:
        page.columns = _columns(services, workspace)
        page.problems = [
            p for p in validation.validate_mappings(services, workspace_id).problems if p.section == section
        ]
        if section == "users":
            page.users = metadata.workspace_users(services, workspace_id).users
            page.identities = [i.model_dump(mode="json") for i in preview.identities(services, workspace_id).identities]
    except AppError as exc:  # Dynamics down: the page still edits, without live metadata
        page.unavailable = exc.message
    return page


def restore_section(
    services: Services, workspace_id: str, section: str, version: int, if_match: str | None, actor: str
) -> SavedSection:
    """Save the document section `section` had at `version` as its newest version (checked like any save)."""
    for entry in services.store.history(workspace_id, section, 500):
        if entry.version == version:
            return validation.save_section(services, workspace_id, section, entry.new, if_match, actor)
    raise NotFound(f"version: the {section} mapping has no version {version}", code="unknown_version")


# ---------------------------------------------------------------------------------------------
# Sync health


@dataclass
class SyncHealthPage:
    health: dict[str, Any]
    days: list[str]
    by_day: dict[str, list[int]]
    dead_letters: list[dict[str, Any]]
    last_run: dict[str, Any] | None


def _by_day(services: Services, workspace_id: str, days: int) -> tuple[list[str], dict[str, list[int]]]:
    """Outcomes of the last `days` days (the newest 1,000 records' latest outcomes), counted per status and day."""
    today = datetime.now(UTC).date()
    labels = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
    page = services.ledger.log(workspace_id, since=since, limit=1000)
    counts = Counter((e.status, e.at.date().isoformat()) for e in page.entries)
    statuses = sorted({status for status, _ in counts})
    return labels, {s: [counts.get((s, day), 0) for day in labels] for s in statuses}


def dead_letters(services: Services) -> list[dict[str, Any]]:
    """Each queue with its dead-letter count where the queue can tell (the in-process queue can; for Service
    Bus the count is in the portal and replay moves whatever is there)."""
    letters = getattr(services.sender, "dead_letters", None)
    queues = (services.settings.writes_queue, services.settings.campaign_queue)
    return [{"queue": q, "count": len(letters.get(q, [])) if isinstance(letters, dict) else None} for q in queues]


def sync_health_page(services: Services, workspace_id: str, days: int = 7) -> SyncHealthPage:
    health = operations.sync_health(services, workspace_id)
    for row in health["attention"]:
        row["fix"] = fix_for(row.get("code"))
    labels, by_day = _by_day(services, workspace_id, days)
    return SyncHealthPage(health, labels, by_day, dead_letters(services), last_reconciliation(services, workspace_id))


def run_reconciliation(services: Services, workspace_id: str, actor: str) -> dict[str, Any]:
    """Reconcile one workspace now (the admin API's use case); its report names the admin who started it."""
    report = operations.reconcile_workspace(services, workspace_id, by=actor)
    return {"at": report.get("started") or datetime.now(UTC).isoformat(), "by": actor, "report": report}


def last_reconciliation(services: Services, workspace_id: str) -> dict[str, Any] | None:
    """The workspace's last reconciliation run, whoever started it (timer, admin API, console):
    `{at, by, report}`, or None before the first."""
    report = next(iter(services.reconcile_state.reports(workspace_id, 1)), None)
    if report is None:
        return None
    return {"at": str(report.get("started") or ""), "by": str(report.get("by") or "the timer"), "report": report}
