"""What this process saw of Dynamics records a moment ago: which exist, and each contact's parent account.

Genesy links contacts to companies right after exporting them. The export's matching read and the
worker's writes already saw those records, so `/associations` can tell an unknown id from a real one,
and a new link from one that exists, without reading them again. Entries live `TTL_SECONDS`; anything
not seen here (another instance, too old) is read from Dynamics in one `$batch`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["TTL_SECONDS", "RecentRecords"]

TTL_SECONDS = 120.0
_MAX_ENTRIES = 200_000
_UNKNOWN: str | None = None


class RecentRecords:
    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_entries: int = _MAX_ENTRIES) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def saw(self, workspace_id: str, kind: str, record_id: str, parent: str | None = _UNKNOWN) -> None:
        """Record that `record_id` exists; for a contact, `parent` is its parent account id ("" for none,
        None when this sighting did not tell)."""
        key = (workspace_id, kind, record_id.lower())
        with self._lock:
            if parent is None and key in self._entries:
                parent = self._entries[key][1]  # a sighting that did not tell keeps what an earlier one did
            self._entries[key] = (time.monotonic() + self._ttl, None if parent is None else parent.lower())
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def get(self, workspace_id: str, kind: str, record_id: str) -> tuple[bool, str | None]:
        """(seen recently, its parent: "" for none, None when unknown)."""
        key = (workspace_id, kind, record_id.lower())
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return False, None
            if found[0] < time.monotonic():
                del self._entries[key]
                return False, None
            return True, found[1]

    def forget(self, workspace_id: str, kind: str, record_id: str) -> None:
        with self._lock:
            self._entries.pop((workspace_id, kind, record_id.lower()), None)
