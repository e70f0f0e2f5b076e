"""Service Bus trigger for `genesy-writes` (sessions: one workspace's writes in order)."""

from __future__ import annotations

import json

import azure.functions as func

from shared.platform.logs import logger
from shared.platform.settings import get_settings
from shared.services.writes import process_write_message

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logger("worker")


@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%WRITES_QUEUE_NAME%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def writes_worker(msg: func.ServiceBusMessage) -> None:
    settings = get_settings()
    body = json.loads(msg.get_body())
    process_write_message(
        settings,
        body,
        delivery_count=int(msg.delivery_count or 1),
        max_delivery_count=settings.max_delivery_count,
    )
