"""Table Storage access: the account's service client and table names carrying the configured prefix.

Connection string (Azurite, or an account key) or account URL with the app's Azure credential.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient

__all__ = ["TableStorage", "as_utc", "escape_key"]

# Characters Table Storage forbids in PartitionKey/RowKey, plus control characters.
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f%]")


class TableStorage:
    """The account's table service and the configured table prefix; tables are created on first use and
    remembered, so steady-state calls cost no extra round trips. One per composition root."""

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        endpoint: str | None = None,
        prefix: str = "",
        credential: Callable[[], Any] | None = None,
    ) -> None:
        if connection_string:
            self.service = TableServiceClient.from_connection_string(connection_string)
        else:
            if not endpoint or credential is None:
                raise ValueError("Table Storage needs a connection string, or an endpoint and a credential")
            self.service = TableServiceClient(endpoint=endpoint, credential=credential())
        self.prefix = prefix
        self._created: set[str] = set()
        self._lock = threading.Lock()

    def table(self, name: str) -> TableClient:
        """The prefixed table `name`, created if this storage object has not seen it yet."""
        full = f"{self.prefix}{name}"
        if full not in self._created:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_table(full)
            with self._lock:
                self._created.add(full)
        return self.service.get_table_client(full)

    def close(self) -> None:
        self.service.close()


def escape_key(value: str) -> str:
    """Make any string safe as a PartitionKey/RowKey (reversible percent-style escaping)."""
    return _FORBIDDEN_KEY_CHARS.sub(lambda m: f"%{ord(m.group()):02X}", value)


def as_utc(value: Any) -> datetime | None:
    """A Table Storage datetime (timezone-less `TablesEntityDatetime`) as an aware UTC datetime."""
    if not isinstance(value, datetime):
        return None
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )
