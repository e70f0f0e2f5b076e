"""Service Bus trigger for `campaign-updates` (sessions: one contact's campaign events in order)."""

from __future__ import annotations

import json

import azure.functions as func

from shared.services.campaign import process_campaign_message
from shared.services.root import ServicesProvider


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.service_bus_queue_trigger(
        arg_name="msg",
        queue_name="%CAMPAIGN_QUEUE_NAME%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
    )
    def campaign_worker(msg: func.ServiceBusMessage) -> None:
        try:
            body = json.loads(msg.get_body())
        except ValueError:
            body = {}
        process_campaign_message(services(), body, delivery_count=int(msg.delivery_count or 1))

    return bp
