"""Service Bus trigger for `genesy-writes` (sessions: one workspace's writes in order, in batches)."""

from __future__ import annotations

from typing import List  # noqa: UP035 (see writes_worker)

import azure.functions as func

from shared.services.root import ServicesProvider
from shared.services.writes import Delivery, process_write_batch


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.service_bus_queue_trigger(
        arg_name="msgs",
        queue_name="%WRITES_QUEUE_NAME%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
        cardinality=func.Cardinality.MANY,
    )
    # typing.List, not list[...]: the Functions worker's converter check accepts only the former for a batch.
    def writes_worker(msgs: List[func.ServiceBusMessage]) -> None:  # noqa: UP006
        app = services()
        process_write_batch(
            app,
            [
                Delivery(m.get_body(), int(m.delivery_count or 1), str(m.session_id or ""), str(m.message_id or ""))
                for m in msgs
            ],
            max_delivery_count=app.settings.max_delivery_count,
            parallel=app.settings.write_parallel_messages,
        )

    return bp
