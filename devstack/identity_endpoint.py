"""A fake App Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), so the real
azure-identity `ManagedIdentityCredential` code path runs locally and in tests.

Protocol (api-version 2019-08-01): `GET <endpoint>?api-version=2019-08-01&resource=<res>[&client_id=…]`
with header `X-IDENTITY-HEADER: <secret>` → `{access_token, expires_on, resource, token_type}`. Tokens are
HMAC-signed by the `TokenSigner` the Dataverse sandbox verifies with.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.dataverse_sandbox.tokens import TokenSigner
from devstack.ports import free_port, wait_for_port

__all__ = ["IdentityEndpoint", "IssuedToken", "start_identity_endpoint"]

TOKEN_PATH = "/msi/token"


@dataclass(frozen=True)
class IssuedToken:
    resource: str
    client_id: str | None
    expires_on: int


@dataclass
class IdentityEndpoint:
    """A running endpoint; `issued` lists every token handed out (tests prove client-side caching)."""

    port: int
    secret: str
    signer: TokenSigner
    ttl_s: Callable[[], int]
    issued: list[IssuedToken] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}"

    @property
    def tokens_issued(self) -> int:
        with self.lock:
            return len(self.issued)

    def reset(self) -> None:
        with self.lock:
            self.issued.clear()
            self.rejected = 0

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _reply(self, query: dict[str, list[str]], header: str | None) -> tuple[int, dict[str, Any]]:
        if header is None:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing."}
        if not secrets.compare_digest(header, self.secret):
            return 403, {"statusCode": 403, "message": "X-IDENTITY-HEADER does not match."}
        if query.get("api-version", [""])[0] != "2019-08-01":
            return 400, {"statusCode": 400, "message": "api-version must be 2019-08-01."}
        resource = query.get("resource", [""])[0]
        if not resource:
            return 400, {"statusCode": 400, "message": "resource is required."}
        client_id = query.get("client_id", [None])[0]
        token, expires_on = self.signer.mint(resource, client_id, self.ttl_s())
        with self.lock:
            self.issued.append(IssuedToken(resource, client_id, expires_on))
        return 200, {"access_token": token, "expires_on": str(expires_on), "resource": resource,
                     "token_type": "Bearer", "client_id": client_id or ""}


def start_identity_endpoint(signer: TokenSigner, ttl_s: Callable[[], int] = lambda: 3600,
                            secret: str | None = None) -> IdentityEndpoint:
    """Serve the endpoint on a free loopback port in a daemon thread; returns once it accepts connections."""
    endpoint = IdentityEndpoint(port=free_port(), secret=secret or secrets.token_urlsafe(24), signer=signer,
                                ttl_s=ttl_s)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            split = urlsplit(self.path)
            if split.path != TOKEN_PATH:
                status, payload = 404, {"statusCode": 404, "message": "Not found."}
            else:
                status, payload = endpoint._reply(parse_qs(split.query), self.headers.get("X-IDENTITY-HEADER"))
            if status != 200:
                with endpoint.lock:
                    endpoint.rejected += 1
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", endpoint.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="identity-endpoint", daemon=True)
    thread.start()
    endpoint._server = server
    endpoint._thread = thread
    wait_for_port(endpoint.port)
    return endpoint
