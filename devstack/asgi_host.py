"""The HTTP face of `devstack.local_host.FunctionHost`: a raw ASGI app served by uvicorn (development tool only).

Each request becomes a `func.HttpRequest` handled by `FunctionHost.handle` in a worker thread (the
functions are synchronous, so requests overlap); the `func.HttpResponse` goes back with its status,
headers, body and content type (mimetype + charset).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import azure.functions as func

from devstack.asgi import Receive, Scope, Send, http_only

if TYPE_CHECKING:
    from devstack.local_host import FunctionHost

__all__ = ["AsgiFunctionApp", "response_headers", "serve", "serve_in_thread"]

log = logging.getLogger("devstack.local_host")


_TEXTUAL = ("text/", "application/json", "application/problem+json", "application/xml", "application/javascript")


def response_headers(response: func.HttpResponse) -> list[tuple[bytes, bytes]]:
    """The response's headers as the host would send them, with Content-Type from mimetype/charset if unset."""
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in response.headers.items()]
    names = {k.lower() for k, _ in headers}
    if "content-type" not in names:
        mimetype, charset = str(response.mimetype), str(response.charset)
        textual = mimetype.startswith(_TEXTUAL) or mimetype.endswith("+json")
        headers.append(("Content-Type", f"{mimetype}; charset={charset}" if textual and charset else mimetype))
    headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
    headers.append(("Content-Length", str(len(response.get_body()))))
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class AsgiFunctionApp:
    """ASGI application: every HTTP request goes through `FunctionHost.handle`."""

    def __init__(self, host: FunctionHost):
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await http_only(scope, receive, send):
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else str(scope["path"])
        path = path.split("?", 1)[0]
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        server = scope.get("server")
        authority = headers.get("host") or (f"{server[0]}:{server[1]}" if server else "127.0.0.1")
        base_url = f"{scope.get('scheme', 'http')}://{authority}"
        call = functools.partial(
            self.host.handle, scope["method"], path, query, headers, b"".join(chunks), base_url=base_url
        )
        try:
            response = await anyio.to_thread.run_sync(call)
        except Exception:
            log.exception("local host: %s %s failed", scope["method"], path)
            response = func.HttpResponse(
                '{"error":"internal_error","message":"the local host failed"}',
                status_code=500,
                mimetype="application/json",
            )
        await send(
            {"type": "http.response.start", "status": int(response.status_code), "headers": response_headers(response)}
        )
        body = b"" if scope["method"] == "HEAD" else response.get_body()
        await send({"type": "http.response.body", "body": body})


def _server(host: FunctionHost, bind: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        AsgiFunctionApp(host), host=bind, port=port, lifespan="off", log_level="warning", access_log=False
    )
    return uvicorn.Server(config)


def serve(host: FunctionHost, *, bind: str = "127.0.0.1", port: int = 7071) -> None:
    """Serve until interrupted."""
    _server(host, bind, port).run()


def serve_in_thread(host: FunctionHost, *, bind: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start uvicorn in a daemon thread; return the base URL it listens on and a function that stops it."""
    server = _server(host, bind, port)
    thread = threading.Thread(target=server.run, name="local-host-http", daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the local host could not listen on {bind}:{port}")
        started.wait(0.01)
    sockets = [sock for srv in server.servers for sock in srv.sockets]
    bound_port = int(sockets[0].getsockname()[1]) if sockets else port

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://{bind}:{bound_port}", stop
