"""The writes worker's decisions, pure: planned records → the writes to make and each record's ledger entry,
then the writes' results → each entry's outcome. No I/O here; `shared.services.writes` is the shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.dataverse.client import WriteSpec
from shared.dataverse.errors import AuthFailed, DataverseError, RecordNotFound, ValidationFailed
from shared.dataverse.models import RecordResult, WriteMode
from shared.domain.entities import EntityKind
from shared.domain.mapping_engine import RecordPlan
from shared.domain.write_messages import WriteItem, WriteMessage
from shared.storage.ledger import LedgerEntry, LedgerStatus

__all__ = [
    "AssociationDecision",
    "PlannedBatch",
    "PlannedRecord",
    "RecordDecision",
    "WriteReport",
    "decide_associations",
    "decide_records",
    "error_fields",
    "redelivery_helps",
    "remedy",
    "retry_payload",
    "set_error",
    "settle_associations",
    "settle_records",
]

AMBIGUOUS = "several Dynamics records match; wrote to the most recently modified active one"


@dataclass
class WriteReport:
    operation: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    retryable: int = 0

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


@dataclass
class PlannedRecord:
    """One record of a message after the read phase: where it goes and what will be written."""

    index: int
    item: WriteItem
    target: str  # the Dynamics id written to
    current: dict[str, Any] | None  # its current values (None: it will be created)
    plan: RecordPlan | None  # None when the record cannot be written (e.g. an update of a missing record)
    ambiguous_ids: list[str]
    error: tuple[str, str] | None = None  # (code, message) decided before writing


@dataclass
class PlannedBatch:
    records: list[PlannedRecord]
    new_aliases: dict[str, str]


# -- errors --------------------------------------------------------------------------------------------


def redelivery_helps(error: DataverseError) -> bool:
    """Transient failures (429, 5xx, timeouts, a token that could not be had or was refused) are worth
    another delivery; permanent ones (an unknown column or property, bad key syntax, validation, a missing
    privilege, a missing record) fail the same way every time."""
    if isinstance(error, AuthFailed):
        return error.status != 403
    return error.retryable


def remedy(error: DataverseError) -> str:
    """What it takes to fix a permanent failure, for the ledger."""
    text = error.message.lower()
    column = f" '{error.column}'" if error.column else ""
    if (error.code or "").lower() == "0x80060888" or "could not find a property" in text or "property named" in text:
        return (
            f"the mapping names a column{column} Dynamics does not have: fix the mapping (check it with "
            "POST /api/manage/workspaces/{id}/validate), then retry from the sync log"
        )
    if isinstance(error, AuthFailed):
        return "give the app's Dynamics user a security role with the privilege Dataverse names, then retry"
    if isinstance(error, RecordNotFound):
        return "the record does not exist in Dynamics (deleted, or never written: see its ledger row)"
    if isinstance(error, ValidationFailed):
        return f"Dynamics refused the value{column}: fix it in Genesy or change the mapping, then retry"
    return "fix the cause Dataverse names, then retry from the sync log"


def error_fields(error: DataverseError) -> tuple[str, str]:
    """(code, message) for the ledger: Dataverse's words, the column, and the fix when a retry cannot help."""
    message = error.message
    if isinstance(error, ValidationFailed) and error.column and error.column not in message:
        message = f"{error.column}: {message}"
    if not redelivery_helps(error):
        message = f"{message} — to fix: {remedy(error)}"
    return error.code or type(error).__name__, message


def set_error(entry: LedgerEntry, error: DataverseError | None) -> None:
    if error is not None:
        entry.code, entry.message = error_fields(error)


def retry_payload(message: WriteMessage, item: WriteItem) -> dict[str, Any]:
    """Enough to queue this one record again (admin retry, reconciliation)."""
    return {
        "operation": message.operation,
        "kind": message.kind,
        "item": item.model_dump(mode="json"),
        "export_values": message.export_values,
    }


def _outcome(result: RecordResult, final_attempt: bool) -> LedgerStatus:
    if result.ok:
        return "updated"
    return "retrying" if result.retryable and not final_attempt else "failed"


# -- creates and updates ---------------------------------------------------------------------------------


@dataclass
class RecordDecision:
    """What to write for a message of creates/updates, and the ledger entry of every record."""

    entries: list[LedgerEntry]
    writes: list[tuple[PlannedRecord, LedgerEntry, WriteSpec]]
    followers: list[tuple[LedgerEntry, LedgerEntry]]  # copies of a record written once, and their leader
    report: WriteReport

    def specs(self) -> list[WriteSpec]:
        return [spec for _, _, spec in self.writes]


def _entry(workspace_id: str, message: WriteMessage, record: PlannedRecord, delivery: int) -> LedgerEntry:
    item = record.item
    creating = message.operation == "create"
    aliases = [item.crm_id] if item.crm_id != record.target else []
    return LedgerEntry(
        workspace_id=workspace_id,
        kind=message.kind,
        operation="create" if creating else "update",
        key=str(item.external_id if creating else item.crm_id),
        status="failed",
        crm_id=record.target,
        external_id=item.external_id,
        aliases=sorted({*aliases, *record.ambiguous_ids}),
        attempts=delivery,
        correlation_id=message.correlation_id,
    )


def _nothing_to_write(entry: LedgerEntry, record: PlannedRecord) -> None:
    entry.status = "ambiguous" if record.ambiguous_ids else "skipped"
    entry.message = "nothing to write (every mapped value was empty or kept)"
    if record.ambiguous_ids:
        entry.message = f"{AMBIGUOUS}; {entry.message}"


def decide_records(workspace_id: str, message: WriteMessage, batch: PlannedBatch, delivery: int) -> RecordDecision:
    """One write per Dynamics record (copies in the message share it); a ledger entry for every record."""
    decision = RecordDecision([], [], [], WriteReport(message.operation, message.kind))
    written: dict[str, LedgerEntry] = {}
    for record in batch.records:
        entry = _entry(workspace_id, message, record, delivery)
        decision.entries.append(entry)
        if record.plan is None:
            entry.code, entry.message = record.error or ("error", "not written")
            entry.retry = retry_payload(message, record.item)
            decision.report.count("failed")
        elif not record.plan.body:
            entry.warnings = record.plan.warnings
            _nothing_to_write(entry, record)
            decision.report.count(entry.status)
        elif record.target in written:
            entry.warnings = record.plan.warnings
            decision.followers.append((entry, written[record.target]))
        else:
            entry.warnings = record.plan.warnings
            mode: WriteMode = "upsert" if record.current is None else "update_only"
            decision.writes.append((record, entry, (record.target, record.plan.body, mode)))
            written[record.target] = entry
    return decision


def settle_records(
    decision: RecordDecision, message: WriteMessage, results: list[RecordResult], final_attempt: bool
) -> WriteReport:
    """Each written record's outcome from its result; copies take their leader's."""
    report = decision.report
    for (record, entry, (_, _, mode)), result in zip(decision.writes, results, strict=True):
        entry.status = _outcome(result, final_attempt)
        if result.ok:
            created = result.created if result.created is not None else mode == "upsert"
            entry.status = "created" if created else "updated"
            if record.ambiguous_ids:
                entry.status, entry.message = "ambiguous", AMBIGUOUS
        set_error(entry, result.error)
        if entry.status in ("failed", "retrying", "created"):  # created: reconciliation's verification re-queues
            entry.retry = retry_payload(message, record.item)  # one lost from Dynamics
        report.retryable += entry.status == "retrying"
        report.count(entry.status)
    for entry, leader in decision.followers:
        entry.status, entry.code, entry.retry = leader.status, leader.code, leader.retry
        entry.message = f"same Dynamics record as '{leader.key}' in this call" + (
            f"; {leader.message}" if leader.message else ""
        )
        report.count(entry.status)
    return report


# -- associations ---------------------------------------------------------------------------------------


@dataclass
class AssociationDecision:
    entries: list[LedgerEntry]
    links: dict[str, tuple[WriteItem, str, LedgerEntry]]  # contact → (pair, company, its entry): the last wins

    def specs(self, contact: EntityKind) -> list[WriteSpec]:
        return [
            (contact_id, {f"{contact.parent_bind}@odata.bind": f"/accounts({company_id})"}, "update_only")
            for contact_id, (_, company_id, _) in self.links.items()
        ]


def decide_associations(
    workspace_id: str,
    message: WriteMessage,
    delivery: int,
    resolved: tuple[dict[str, str], dict[str, str]],
    keep_parent: dict[tuple[str, str], str],
) -> AssociationDecision:
    """One parent per contact (the last pair for a contact wins); a contact whose current parent is one of
    the records the ambiguous match of that company passed over keeps it (`keep_parent`)."""
    contacts, companies = resolved
    decision = AssociationDecision([], {})
    for item in message.items:
        contact_id = contacts.get(item.crm_id, item.crm_id)
        company_id = companies.get(str(item.company_id), str(item.company_id))
        entry = LedgerEntry(
            workspace_id=workspace_id,
            kind="association",
            operation="associate",
            key=f"{item.crm_id}>{item.company_id}",
            status="skipped",
            crm_id=contact_id,
            attempts=delivery,
            correlation_id=message.correlation_id,
        )
        decision.entries.append(entry)
        if (contact_id, company_id) in keep_parent:
            entry.message = (
                "kept the contact's parent account: it is one of the records the ambiguous company match "
                f"passed over ({keep_parent[contact_id, company_id]})"
            )
            continue
        if contact_id in decision.links:
            decision.links[contact_id][2].message = "replaced by a later company for the same contact in this call"
        decision.links[contact_id] = (item, company_id, entry)
    return decision


def _association_not_found(error: DataverseError | None, contact_entity: str) -> tuple[str, str] | None:
    """Genesy's wording for a link that failed because one side does not exist in Dynamics."""
    if not isinstance(error, RecordNotFound):
        return None
    lowered = error.message.lower()
    missing = "Contact" if lowered.startswith(contact_entity) or not lowered.startswith("account") else "Company"
    return "not_found", f"{missing} not found ({error.message})"


def settle_associations(
    decision: AssociationDecision,
    message: WriteMessage,
    results: list[RecordResult],
    final_attempt: bool,
    contact_entity: str,
) -> WriteReport:
    report = WriteReport("associate", "association")
    for (item, _, entry), result in zip(decision.links.values(), results, strict=True):
        not_found = _association_not_found(result.error, contact_entity)
        entry.status = "failed" if not_found else _outcome(result, final_attempt)
        if not_found:
            entry.code, entry.message = not_found
        elif not result.ok:
            set_error(entry, result.error)
        if entry.status in ("failed", "retrying"):
            entry.retry = retry_payload(message, item)
        report.retryable += entry.status == "retrying"
    for entry in decision.entries:
        report.count(entry.status)
    return report
