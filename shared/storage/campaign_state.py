"""Campaign state in Table Storage, and the "campaign activity seen" flag the export reads.

`campaigns` table: one entity per (workspace, contact) partition and campaign row; the state JSON is
split over `state_NN` properties (Table strings are capped at 64 KB). Writes use the entity's ETag
(optimistic concurrency) and retry on a lost race. `engaged` table: one row per contact id that took
part in a campaign (the id Genesy knows and the Dynamics id it resolves to).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.campaign import CampaignEvent, CampaignState
from shared.domain.odata import odata_literal
from shared.storage.tables import TableStorage, escape_key

__all__ = ["CampaignStore", "StateConflict"]

_PART_CHARS = 30_000
_MAX_PARTS = 30
_ATTEMPTS = 8
_QUERY_CHUNK = 40


class StateConflict(Exception):
    """Another writer kept winning the race for one campaign state; the message is redelivered."""


def _dump(state: CampaignState) -> str:
    return json.dumps(state.to_json(), ensure_ascii=True, separators=(",", ":"))


def _entity(partition: str, state: CampaignState) -> dict[str, Any]:
    text = _dump(state)
    parts = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"campaign state of {state.campaign!r} is larger than {_MAX_PARTS * _PART_CHARS} chars")
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": state.key,
        "campaign": state.campaign[:1000],
        "last_at": state.last_at or "",
        "state_parts": len(parts),
    }
    for index, part in enumerate(parts):
        entity[f"state_{index:02d}"] = part
    return entity


def _state(entity: Mapping[str, Any]) -> CampaignState:
    count = int(entity.get("state_parts") or 0)
    text = "".join(str(entity[f"state_{index:02d}"]) for index in range(count))
    return CampaignState.from_json(json.loads(text))


class CampaignStore:
    """Per-contact campaign states (`campaigns` table) and engaged contacts (`engaged` table)."""

    def __init__(self, tables: TableStorage):
        self._states: TableClient = tables.table("campaigns")
        self._engaged: TableClient = tables.table("engaged")

    @staticmethod
    def _partition(workspace_id: str, contact_id: str) -> str:
        return escape_key(f"{workspace_id}|{contact_id.lower()}")

    def states(self, workspace_id: str, contact_id: str) -> list[CampaignState]:
        """Every campaign state of one contact."""
        query = f"PartitionKey eq {odata_literal(self._partition(workspace_id, contact_id))}"
        return [_state(e) for e in self._states.query_entities(query)]

    def apply(self, workspace_id: str, contact_id: str, event: CampaignEvent) -> tuple[bool, list[CampaignState]]:
        """Apply `event` to the contact's state for its campaign (ETag-checked; retried on a lost race).

        Returns whether the state changed, and all campaign states of the contact afterwards."""
        partition = self._partition(workspace_id, contact_id)
        for _ in range(_ATTEMPTS):
            current = {
                str(e["RowKey"]): e for e in self._states.query_entities(f"PartitionKey eq {odata_literal(partition)}")
            }
            probe = CampaignState(campaign=event.campaign)
            existing = current.get(probe.key)
            state = _state(existing) if existing is not None else probe
            changed = state.apply(event)
            others = [_state(e) for key, e in current.items() if key != probe.key]
            if not changed and existing is not None:
                return False, [state, *others]
            entity = _entity(partition, state)
            try:
                if existing is None:
                    self._states.create_entity(entity)
                else:
                    self._states.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                continue
            except HttpResponseError as exc:
                if exc.status_code == 412:
                    continue
                raise
            return changed, [state, *others]
        raise StateConflict(f"campaign state for {event.campaign!r} kept changing under us; retry later")

    def mark_engaged(self, workspace_id: str, contact_ids: Iterable[str]) -> None:
        partition = escape_key(workspace_id)
        for contact_id in dict.fromkeys(i.lower() for i in contact_ids if i):
            self._engaged.upsert_entity(
                {"PartitionKey": partition, "RowKey": escape_key(contact_id)}, mode=UpdateMode.MERGE
            )

    def engaged(self, workspace_id: str, contact_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(i.lower() for i in contact_ids if i))
        partition = odata_literal(escape_key(workspace_id))
        by_key = {escape_key(i): i for i in wanted}
        found: set[str] = set()
        keys = list(by_key)
        for start in range(0, len(keys), _QUERY_CHUNK):
            rows = " or ".join(f"RowKey eq {odata_literal(k)}" for k in keys[start : start + _QUERY_CHUNK])
            for entity in self._engaged.query_entities(f"PartitionKey eq {partition} and ({rows})", select=["RowKey"]):
                found.add(by_key[str(entity["RowKey"])])
        return found
