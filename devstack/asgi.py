"""What the local stack's two ASGI servers (the functions host, the Dataverse sandbox) share: the ASGI
types and the lifespan handshake, so each app only handles HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Message", "Receive", "Scope", "Send", "http_only"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def http_only(scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer the lifespan protocol; True when `scope` is an HTTP request the app should handle."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return False
    return bool(scope["type"] == "http")
