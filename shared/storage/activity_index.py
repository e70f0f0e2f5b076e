"""Activities logged through Genesy, per workspace (Table `activities`): by message key (a repeat returns the
first activity) and by activity id (`GET /activities/{id}`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from shared.storage.tables import TableStorage, escape_key
from shared.storage.transactions import submit_upserts

__all__ = ["ActivityIndex"]


class ActivityIndex:
    """message key → the activity logged for it, per workspace (Table `activities`)."""

    def __init__(self, tables: TableStorage):
        self._table: TableClient = tables.table("activities")

    @staticmethod
    def _keys(workspace_id: str, key: str) -> tuple[str, str]:
        row = key if len(key) <= 200 else "sha:" + hashlib.sha256(key.encode()).hexdigest()
        return escape_key(workspace_id), escape_key(row)

    def get(self, workspace_id: str, key: str) -> dict[str, Any] | None:
        try:
            entity = self._table.get_entity(*self._keys(workspace_id, key))
        except ResourceNotFoundError:
            return None
        return dict(json.loads(str(entity["response"])))

    def put(self, workspace_id: str, key: str, entity_set: str, response: Mapping[str, Any]) -> None:
        """Index the activity under its message key and under its id (one transaction)."""
        partition, row = self._keys(workspace_id, key)
        entity = {
            "PartitionKey": partition,
            "activity_id": response["id"],
            "entity_set": entity_set,
            "response": json.dumps(dict(response), ensure_ascii=False)[:30_000],
        }
        by_id = self._keys(workspace_id, f"activity-id|{str(response['id']).lower()}")[1]
        submit_upserts(self._table, [{**entity, "RowKey": row}, {**entity, "RowKey": by_id}])

    def by_id(self, workspace_id: str, activity_id: str) -> dict[str, Any] | None:
        return self.get(workspace_id, f"activity-id|{activity_id.strip().lower()}")
