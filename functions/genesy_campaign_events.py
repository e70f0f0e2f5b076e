"""Campaign events over HTTPS (`POST /campaign-events`): the `campaign-updates` contract for integrators
without a Service Bus client. Authenticated like Genesy's calls (the workspace key, anonymous auth level);
the events are queued on `campaign-updates` and applied by the campaign worker.

The workspace comes from the key: an event may leave `workspace_id` out; naming another workspace is a 400.
"""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.domain.campaign import CampaignEvent
from shared.platform.correlation import current_correlation_id
from shared.platform.errors import BadRequest
from shared.platform.http import genesy_call, json_response, parse_body
from shared.services.campaign import send_campaign_events
from shared.services.root import ServicesProvider

__all__ = ["MAX_EVENTS_PER_CALL", "CampaignEventIn", "CampaignEventsAccepted", "CampaignEventsRequest", "blueprint"]

MAX_EVENTS_PER_CALL = 500
_WorkspaceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CampaignEventIn(CampaignEvent):
    """One event as `campaign-updates` takes it (`CampaignEvent`, version 1), `workspace_id` optional."""

    workspace_id: _WorkspaceId | None = None  # type: ignore[assignment]


class CampaignEventsRequest(BaseModel):
    """`POST /campaign-events` body."""

    model_config = ConfigDict(extra="ignore")
    events: list[CampaignEventIn] = Field(max_length=MAX_EVENTS_PER_CALL)


class CampaignEventsAccepted(BaseModel):
    """`POST /campaign-events` reply (202): how many events were queued."""

    accepted: int = Field(ge=0)


def _for_workspace(events: list[CampaignEventIn], workspace_id: str) -> list[CampaignEvent]:
    """The events as queued, each in the key's workspace (and carrying this call's correlation id unless it
    has its own); BadRequest naming the first event of another workspace."""
    correlation_id = current_correlation_id()
    out = []
    for index, event in enumerate(events):
        if event.workspace_id not in (None, workspace_id):
            raise BadRequest(f"events[{index}].workspace_id: the API key belongs to workspace {workspace_id}")
        fields = {**event.model_dump(), "workspace_id": workspace_id}
        fields["correlation_id"] = fields.get("correlation_id") or correlation_id
        out.append(CampaignEvent.model_validate(fields))
    return out


def blueprint(services: ServicesProvider) -> func.Blueprint:
    """This module's functions, calling the use cases with the app's services."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="campaign-events", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @genesy_call
    def campaign_events(req: func.HttpRequest) -> func.HttpResponse:
        ctx = services().genesy(req.headers)
        body = parse_body(req, CampaignEventsRequest)
        events = _for_workspace(body.events, ctx.workspace.id)
        send_campaign_events(ctx.services, events)
        return json_response(CampaignEventsAccepted(accepted=len(events)).model_dump(), status=202)

    return bp
