"""Service Bus trigger for `genesy-writes` (sessions: one workspace's writes in order)."""

from __future__ import annotations

import json

import azure.functions as func

from shared.platform.logs import logger
from shared.services.root import ServicesProvider
from shared.services.writes import process_write_message

log = logger("worker")


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.service_bus_queue_trigger(
        arg_name="msg",
        queue_name="%WRITES_QUEUE_NAME%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
    )
    def writes_worker(msg: func.ServiceBusMessage) -> None:
        settings = services().settings
        body = json.loads(msg.get_body())
        process_write_message(
            services(),
            body,
            delivery_count=int(msg.delivery_count or 1),
            max_delivery_count=settings.max_delivery_count,
        )

    return bp
