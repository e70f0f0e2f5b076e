"""Items Genesy sent that refer to a record we accepted but have not written yet (Table `pending`).

A task about a contact still on its way to Dynamics is accepted with its final id and queued behind
that contact in the workspace's session; until the worker writes it, reads of that task answer from
the row kept here. The worker removes the row once the task exists in Dynamics, or marks it failed
with the reason (the ledger has the same reason).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.domain.odata import odata_literal
from shared.storage.tables import TableStorage, escape_key

__all__ = ["PendingItems"]


class PendingItems:
    def __init__(self, tables: TableStorage):
        self._table = tables.table("pending")

    @staticmethod
    def _keys(workspace_id: str, kind: str, item_id: str) -> tuple[str, str]:
        return escape_key(workspace_id), escape_key(f"{kind}|{item_id.lower()}")

    def put(self, workspace_id: str, kind: str, item_id: str, view: Mapping[str, Any], status: str = "pending") -> None:
        partition, row = self._keys(workspace_id, kind, item_id)
        self._table.upsert_entity(
            {
                "PartitionKey": partition,
                "RowKey": row,
                "view": json.dumps(dict(view), ensure_ascii=False, default=str)[:30_000],
                "status": status,
            },
            mode=UpdateMode.REPLACE,
        )

    def get_many(self, workspace_id: str, kind: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """id → the view kept for it, for the ids that are pending (or failed before being written)."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        partition = odata_literal(escape_key(workspace_id))
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 40):
            chunk = wanted[start : start + 40]
            rows = " or ".join(f"RowKey eq {odata_literal(self._keys(workspace_id, kind, i)[1])}" for i in chunk)
            for entity in self._table.query_entities(f"PartitionKey eq {partition} and ({rows})"):
                out[str(entity["RowKey"]).split("|", 1)[1]] = dict(json.loads(str(entity["view"])))
        return out

    def remove(self, workspace_id: str, kind: str, item_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(*self._keys(workspace_id, kind, item_id))
