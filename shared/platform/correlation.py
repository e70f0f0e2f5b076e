"""The caller's correlation id, carried to every Dataverse request as `x-ms-client-request-id`.

Set it once per unit of work (`with correlation_scope(message_id): ...`); the client copies the
context into its worker threads, so fanned-out requests carry it too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["correlation_scope", "current_correlation_id", "request_id_for"]

_correlation_id: ContextVar[str | None] = ContextVar("genesy_dynamics_correlation_id", default=None)
_NAMESPACE = uuid.UUID("6a4f3c1e-2b7d-5e08-9c31-0d5b8f2e7a94")


def current_correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def correlation_scope(correlation_id: str | None) -> Iterator[None]:
    """Make `correlation_id` current for the block (and for client threads started inside it)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


def request_id_for(correlation_id: str | None) -> str:
    """A GUID for `x-ms-client-request-id`: the caller's id when it is one, a stable uuid5 of it otherwise."""
    if not correlation_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(correlation_id))
    except ValueError:
        return str(uuid.uuid5(_NAMESPACE, correlation_id))
