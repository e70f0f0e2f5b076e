"""The writes worker's one metrics line per message: what Application Insights alerts and charts on."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.services.writes import METRICS_PREFIX


def _metrics(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage()[len(METRICS_PREFIX) :])
        for r in caplog.records
        if r.getMessage().startswith(METRICS_PREFIX)
    ]


def test_each_message_reports_counts_requests_throttling_and_lag(stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    contacts = [{"externalId": f"m{i}", "email": f"m{i}@metrics.example", "lastName": f"M{i}"} for i in range(5)]
    contacts.append({"externalId": "m-dup", "email": "m0@metrics.example", "lastName": "M0"})
    assert stack.call("POST", "contacts", {"contacts": contacts}).status_code == 200
    stack.sandbox.config.throttle_burst = 1  # the next Dataverse request is answered 429 once
    stack.sandbox.config.throttle_retry_after_s = 0
    assert stack.drain().failed == 0
    [line] = _metrics(caplog)
    assert line["workspace_id"] == stack.workspace_id and (line["operation"], line["kind"]) == ("create", "contact")
    assert line["written"] == 6 and line["failed"] == 0 and line["retrying"] == 0
    assert line["throttled"] == 1
    assert line["dataverse_requests"] >= 3  # one read $batch, one write $batch, the throttled attempt again
    assert line["queue_lag_ms"] >= 0 and line["delivery"] == 1
    assert all("@" not in str(value) for value in line.values())  # no e-mail addresses in telemetry
