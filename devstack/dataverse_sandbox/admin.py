"""The sandbox's own admin endpoint (`/_sandbox/...`, not part of the Web API), for a benchmark or a
person to read what the sandbox accounted while it runs in another process.

Every call needs `X-Sandbox-Admin-Key` (printed by `python -m devstack.dataverse_sandbox` as
`SANDBOX_ADMIN_KEY`, `Sandbox.admin_key` in process). Routes:
- `GET /_sandbox/stats`: counters, execution time charged (total, by route, by caller, in the current
  window), throttling (429s by code, requests sent inside a Retry-After), in-flight requests, the knobs.
- `POST /_sandbox/reset-counters`: counters, request log and throttle history cleared (limits kept).
- `POST /_sandbox/reset-limits`: every caller's service-protection windows emptied (a fresh budget).
- `GET /_sandbox/rows/<table>?select=a,b`: the table's rows (plain values, lookups as ids).
- `PATCH /_sandbox/config` with `{"knob": value, ...}`: change knobs of the running sandbox.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from devstack.dataverse_sandbox.api import ApiResponse, json_response
from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.limits import Metrics, ServiceProtection
from devstack.dataverse_sandbox.store import Store

__all__ = ["ADMIN_PREFIX", "SandboxAdmin", "stats_document"]

ADMIN_PREFIX = "/_sandbox/"
ADMIN_KEY_HEADER = "x-sandbox-admin-key"


def stats_document(metrics: Metrics, protection: ServiceProtection, config: SandboxConfig) -> dict[str, Any]:
    """Everything a benchmark reads after a run, as plain JSON."""
    with metrics.lock:
        counters = dict(metrics.counters)
        by_route = {k: round(v, 3) for k, v in metrics.execution_ms_by_route.items()}
        by_caller = {k: round(v, 3) for k, v in metrics.execution_ms_by_caller.items()}
        total = round(metrics.execution_ms_total, 3)
        codes = Counter(e.code for e in metrics.throttle_events)
        early = sum(1 for e in metrics.throttle_events if e.retried_early)
        in_flight = metrics.in_flight
    return {
        "counters": counters,
        "execution_ms": {
            "total": total,
            "by_route": by_route,
            "by_caller": by_caller,
            "window_used": {caller: round(protection.execution_used_ms(caller), 3) for caller in by_caller},
        },
        "throttled": {"total": counters.get("throttled", 0), "by_code": dict(codes), "retried_early": early},
        "in_flight": in_flight,
        "config": dataclasses.asdict(config),
    }


class SandboxAdmin:
    """Answers `/_sandbox/...` requests for the sandbox whose state it is given."""

    def __init__(self, key: str, store: Store, metrics: Metrics, protection: ServiceProtection,
                 config: SandboxConfig) -> None:
        self.key = key
        self.store = store
        self.metrics = metrics
        self.protection = protection
        self.config = config

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        if not hmac.compare_digest(headers.get(ADMIN_KEY_HEADER, "").encode(), self.key.encode()):
            return _error(401, "The X-Sandbox-Admin-Key header is missing or wrong.")
        route = path[len(ADMIN_PREFIX):]
        if route == "stats" and method == "GET":
            return json_response(200, stats_document(self.metrics, self.protection, self.config))
        if route == "reset-counters" and method == "POST":
            self.metrics.reset()
            return ApiResponse(204)
        if route == "reset-limits" and method == "POST":
            self.protection.reset()
            return ApiResponse(204)
        if route == "config" and method == "PATCH":
            return self._set_config(body)
        if route.startswith("rows/") and method == "GET":
            return self._rows(route[len("rows/"):], query)
        return _error(404, f"No sandbox admin route {method} {path}.")

    def _rows(self, table: str, query: str) -> ApiResponse:
        select = [c for c in dict(parse_qsl(query)).get("select", "").split(",") if c]
        try:
            rows = self.store.rows(table)
        except KeyError:
            return _error(404, f"No table {table!r}.")
        if select:
            rows = [{c: r.get(c) for c in select} for r in rows]
        return json_response(200, {"value": rows})

    def _set_config(self, body: bytes) -> ApiResponse:
        try:
            changes = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "The body must be a JSON object of knobs.")
        if not isinstance(changes, dict):
            return _error(400, "The body must be a JSON object of knobs.")
        fields = {f.name: f for f in dataclasses.fields(SandboxConfig)}
        for name, value in changes.items():
            if name not in fields:
                return _error(400, f"Unknown knob {name!r}.")
            current = getattr(self.config, name)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            fits = isinstance(value, bool) if isinstance(current, bool) else numeric or isinstance(value, type(current))
            if not fits:
                return _error(400, f"Knob {name!r} takes a {type(current).__name__}.")
        for name, value in changes.items():
            setattr(self.config, name, type(getattr(self.config, name))(value))
        return json_response(200, dataclasses.asdict(self.config))


def _error(status: int, message: str) -> ApiResponse:
    return json_response(status, {"error": {"code": "0x80040216", "message": message}})
