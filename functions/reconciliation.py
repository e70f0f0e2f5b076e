"""Timer: every workspace's reconciliation run (`shared.services.reconcile_run`): merges and deletions in
Dynamics, ledger verification, waiting work, retries — within its request budget, under a lease."""

from __future__ import annotations

import azure.functions as func

from shared.services.operations import reconcile
from shared.services.root import ServicesProvider


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def reconciliation(timer: func.TimerRequest) -> None:
        reconcile(services())

    return bp
