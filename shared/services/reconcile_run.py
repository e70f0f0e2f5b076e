"""One reconciliation run of a workspace, the timer's and `POST manage/workspaces/{id}/reconcile`'s:

1. take the workspace's lease in Table Storage (a run that finds it held does nothing and says so);
2. within a request budget — `RECONCILE_BUDGET_SHARE` of Dataverse's service-protection limit of 6,000
   requests per user per 300 s, shared by the workspaces that write to the same Dynamics environment when
   the timer runs them all — follow merges and deletions (`reconciliation`), verify a sample of the ledger,
   write campaign values left waiting, try webhook deliveries waiting for their contact again, queue again
   stale `retrying` records and transient failures (`verification`);
3. save the run's report (shown in sync health as `last_reconciliation`) and give the lease back.

Every step is idempotent, so a run cut short (budget, crash, lease expiry) is finished by the next one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.dataverse.errors import DataverseError
from shared.platform.logs import logger
from shared.platform.usage import usage_scope
from shared.services.reconciliation import RunBudget, reconcile_changes
from shared.services.requeue import requeue
from shared.services.root import Services
from shared.services.verification import retry_transient, verify_ledger, write_waiting_campaigns
from shared.services.webhooks import reprocess_waiting

__all__ = ["SERVICE_PROTECTION_REQUESTS", "reconcile_all", "run_reconciliation"]

log = logger("reconciliation")

SERVICE_PROTECTION_REQUESTS = 6_000  # per user per 300 s (Microsoft Learn: "Service protection API limits")
_WEBHOOK_REQUESTS = 2
_T = TypeVar("_T")


def request_budget(services: Services, sharing: int = 1) -> int:
    """The Dataverse requests one run may spend when `sharing` runs share one Dynamics environment."""
    share = services.settings.reconcile_budget_share * SERVICE_PROTECTION_REQUESTS
    return max(1, int(share // max(1, sharing)))


def reconcile_all(services: Services, *, stale_after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """The timer: every workspace, one after another; workspaces on one Dynamics environment split its share."""
    workspaces = services.store.list_workspaces()
    per_environment = Counter(w.environment_url.rstrip("/").lower() for w in workspaces)
    reports: dict[str, Any] = {}
    for w in workspaces:
        try:
            reports[w.id] = run_reconciliation(services, w.id, stale_after=stale_after,
                                               sharing=per_environment[w.environment_url.rstrip("/").lower()])
        except Exception as exc:  # one workspace's failure (storage, a bug) must not stop the others' runs
            log.exception("workspace %s: reconciliation run failed", w.id)
            reports[w.id] = {"workspace_id": w.id, "status": "failed", "requeued": 0, "failed": 0,
                             "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return reports


def run_reconciliation(
    services: Services,
    workspace_id: str,
    *,
    stale_after: timedelta = timedelta(hours=1),
    sharing: int = 1,
    by: str = "the timer",
) -> dict[str, Any]:
    """Reconcile one workspace (NotFound for an unknown one); the run's report (`by`: who started it)."""
    services.store.get_workspace(workspace_id)
    state = services.reconcile_state
    started = datetime.now(UTC)
    lease = state.acquire(workspace_id, services.settings.reconcile_lease_seconds, now=started)
    if lease is None:
        log.info("workspace %s: reconciliation already running; this run does nothing", workspace_id)
        return {"workspace_id": workspace_id, "status": "skipped", "requeued": 0, "failed": 0,
                "reason": "another reconciliation run of this workspace holds its lease"}
    try:
        report = _run(services, workspace_id, started, stale_after, request_budget(services, sharing))
        report["by"] = by[:200]
        state.save_report(workspace_id, report, started)
    finally:
        state.release(lease)
    return report


class _Steps:
    """Runs the steps of a run; a step Dynamics fails (down, throttled past the budget, a refused query) is
    noted in the report's `errors` and the other steps still run — the next run finishes it."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.errors: dict[str, str] = {}

    def run(self, name: str, step: Callable[[], _T], default: _T) -> _T:
        try:
            return step()
        except DataverseError as exc:
            log.warning("workspace %s: reconciliation step %s failed: %s", self.workspace_id, name, exc)
            self.errors[name] = f"{exc.code or type(exc).__name__}: {exc.message}"[:500]
            return default


_NO_VERIFICATION: dict[str, Any] = {"checked": 0, "missing": 0, "requeued": 0, "left_failed": 0, "unchecked": 0}


def _run(services: Services, workspace_id: str, started: datetime, stale_after: timedelta,
         limit: int) -> dict[str, Any]:
    state = services.reconcile_state
    previous = next(iter(state.reports(workspace_id, 1)), None)
    ctx = services.workspace(workspace_id)
    steps = _Steps(workspace_id)
    with usage_scope() as usage:
        budget = RunBudget(limit, usage)
        tables = reconcile_changes(ctx, budget)  # catches per table: one table's failure spoils no other
        verification = steps.run("verification", lambda: verify_ledger(ctx, budget, started, previous),
                                 {**_NO_VERIFICATION, "since": (previous or {}).get("verification", {}).get("since")})
        campaigns = steps.run("campaign_values", lambda: write_waiting_campaigns(ctx, budget),
                              {"waiting": 0, "written": 0})
        # A waiting webhook delivery costs a lookup of its contact and a campaign message: ≤ 2 requests each.
        webhooks = steps.run("webhook_deliveries",
                             lambda: reprocess_waiting(services, workspace_id, budget.left() // _WEBHOOK_REQUESTS),
                             {"tried": 0, "processed": 0})
        cutoff = started - stale_after
        stale = [e for e in services.ledger.entries(workspace_id, status="retrying") if e.at <= cutoff]
        requeued = requeue(services, workspace_id, stale, note="reconciliation (stale retry)")["requeued"]
        transient = retry_transient(ctx, started)
    health = services.ledger.summary(workspace_id)
    failed = sum(c.get("failed", 0) for c in health["counts"].values())
    report: dict[str, Any] = {
        "workspace_id": workspace_id,
        "status": "completed_with_errors" if steps.errors else "completed",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "requeued": requeued,
        "failed": failed,
        "changes": {"tables": tables},
        "verification": verification,
        "campaign_values": campaigns,
        "webhook_deliveries": webhooks,
        "transient_retries": transient,
        "dataverse_requests": usage.requests,
        "throttled": usage.throttled,
        "request_budget": limit,
        "skipped": budget.skipped,
    }
    if steps.errors:
        report["errors"] = steps.errors
    if requeued or failed or verification["missing"]:
        log.warning("workspace %s: %d stale records re-queued, %d missing in Dynamics, %d failed (see sync health)",
                    workspace_id, requeued, verification["missing"], failed)
    return report
