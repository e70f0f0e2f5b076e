"""The cost model: how much server execution time (model milliseconds) one operation takes.

A request costs network latency (`config.latency_ms`, not execution) plus execution time, which is what
Dataverse's combined-execution-time limit counts. Writes cost `exec_write_ms` each whether sent alone or
as a `$batch` part (a batch runs its parts one after another: it costs the sum of its parts); a bulk
message (`CreateMultiple`, `UpdateMultiple`, `UpsertMultiple`) costs `exec_bulk_request_ms` plus
`exec_bulk_record_ms` per target, less per record than the same writes in a `$batch`; a read costs
`exec_query_ms` plus `exec_row_ms` per row returned. See the README's "Cost model" for the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devstack.dataverse_sandbox.config import SandboxConfig

__all__ = ["NO_WORK", "Work", "execution_ms"]

WorkKind = Literal["none", "read", "write", "bulk"]


@dataclass(frozen=True)
class Work:
    """What one operation did, as far as its cost goes: a read of `rows` rows, a write, or a bulk
    message over `targets` records; `none` for a request refused before it ran (auth, limits, faults)."""

    kind: WorkKind
    rows: int = 0
    targets: int = 0


NO_WORK = Work("none")


def execution_ms(config: SandboxConfig, work: Work) -> float:
    """Model milliseconds of server execution `work` costs under `config`'s cost knobs."""
    if work.kind == "read":
        return config.exec_query_ms + config.exec_row_ms * work.rows
    if work.kind == "write":
        return config.exec_write_ms
    if work.kind == "bulk":
        return config.exec_bulk_request_ms + config.exec_bulk_record_ms * work.targets
    return 0.0
