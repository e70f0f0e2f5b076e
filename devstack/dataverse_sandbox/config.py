"""Run-time knobs of the sandbox: limits, faults and behaviour switches, mutable while it runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SandboxConfig"]


@dataclass
class SandboxConfig:
    """Settings a test may change at any time through `sb.config`; the server reads them per request.

    Defaults follow Dataverse's documented service-protection limits (6000 requests, 1200 s of combined
    execution time per 300 s sliding window per caller, 52 concurrent requests) and page size (5000); the
    cost model's per-operation times are assumptions (README "Cost model" gives the source or the reason
    for each). Durations are *model* time: `time_scale` turns them into wall-clock time (0.1 = ten times
    faster: windows, latency, execution sleeps and Retry-After all shrink alike).
    """

    # Service protection (per caller = per token subject), over one sliding window.
    request_limit: int = 6000
    request_window_s: float = 300.0
    execution_time_limit_s: float = 1200.0
    concurrency_limit: int = 52
    concurrency_retry_after_s: int = 1
    dop_hint: int = 4
    # Cost model: server execution time (model ms) charged per operation; a `$batch` costs the sum of its
    # parts, a bulk message a fixed part plus a (smaller) part per target, a read per query plus per row.
    exec_write_ms: float = 20.0
    exec_query_ms: float = 10.0
    exec_row_ms: float = 0.2
    exec_bulk_request_ms: float = 20.0
    exec_bulk_record_ms: float = 5.0
    # Off: execution time is accounted (limits, counters, headers) but not slept, so tests stay fast.
    # On (benchmarks, `make serve`): each response waits its execution time x time_scale.
    execution_sleep: bool = False
    time_scale: float = 1.0
    # Faults. `seed` fixes the RNG so a sequential run injects the same faults every time.
    seed: int = 0
    latency_ms: float = 0.0
    batch_part_latency_ms: float = 0.0
    error_rate_5xx: float = 0.0
    timeout_rate: float = 0.0
    timeout_hang_s: float = 30.0
    throttle_burst: int = 0
    throttle_retry_after_s: int = 2
    # Behaviour.
    max_page_size: int = 5000
    max_url_length: int = 32768
    max_batch_url_length: int = 65536
    max_batch_requests: int = 1000
    max_bulk_targets: int = 0  # 0 = no limit (Dataverse documents none; payload size bounds it)
    # Dataverse's Web API enforces SystemRequired columns only; True also refuses a create without an
    # ApplicationRequired column (contact/lead `lastname`, account `name`), as a form would.
    enforce_application_required: bool = False
    accent_insensitive: bool = True
    token_ttl_s: int = 3600

    def __post_init__(self) -> None:
        # Change tracking (`Prefer: odata.track-changes`) is on for every table except these logical names
        # (contact, lead and account have it on, as in a real environment); a request on one of them is 400.
        # A plain attribute, not a dataclass field: `devstack.serve` exposes every field as a scalar
        # SANDBOX_<KNOB> variable and writes them to stack.json, which a set cannot be.
        self.change_tracking_disabled: set[str] = set()

    def copy(self) -> SandboxConfig:
        clone = dataclasses.replace(self)
        clone.change_tracking_disabled = set(self.change_tracking_disabled)
        return clone

    def restore(self, other: SandboxConfig) -> None:
        """Set every knob back to `other`'s value, keeping this object (tests hold references to it)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(other, f.name))
        self.change_tracking_disabled = set(other.change_tracking_disabled)
