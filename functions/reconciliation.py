"""Timer: reconciliation — re-queue records whose message died while they were `retrying`, and log health."""

from __future__ import annotations

import azure.functions as func

from shared.platform.settings import get_settings
from shared.services.operations import reconcile

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconciliation(timer: func.TimerRequest) -> None:
    reconcile(get_settings())
