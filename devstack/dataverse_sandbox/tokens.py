"""Signed bearer tokens shared by the fake identity endpoint (issues) and the sandbox (verifies).

Compact JWT form (HS256) so they look like Entra tokens on the wire, with `aud`, `exp`, `appid` and
`oid` claims. The signing key never leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_CLIENT_ID", "TokenClaims", "TokenError", "TokenSigner"]

DEFAULT_CLIENT_ID = "7d6c2f1e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"
_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


class TokenError(Exception):
    """The token is missing, malformed, forged, expired or for another audience."""


@dataclass(frozen=True)
class TokenClaims:
    audience: str
    app_id: str
    object_id: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _norm_audience(aud: str) -> str:
    return aud.rstrip("/").lower()


class TokenSigner:
    """Mints and checks HS256 tokens with one random key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def mint(self, audience: str, client_id: str | None = None, ttl_s: int = 3600,
             now: float | None = None) -> tuple[str, int]:
        """Return (token, expires_on epoch seconds) for `audience`, as managed identity would."""
        issued = int(now if now is not None else time.time())
        app_id = client_id or DEFAULT_CLIENT_ID
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{_TENANT}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_s,
            "appid": app_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mi:{app_id}")),
            "tid": _TENANT,
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}", issued + ttl_s

    def verify(self, token: str, audience: str, now: float | None = None) -> TokenClaims:
        """Check signature, expiry and audience (trailing slash and case ignored); return the claims."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token")
        header, payload, signature = parts
        expected = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            raise TokenError("invalid signature")
        try:
            claims = json.loads(_unb64(payload))
        except ValueError as exc:
            raise TokenError("malformed token") from exc
        if int(claims.get("exp", 0)) <= (now if now is not None else time.time()):
            raise TokenError("token expired")
        if _norm_audience(str(claims.get("aud", ""))) != _norm_audience(audience):
            raise TokenError("invalid audience")
        return TokenClaims(
            audience=str(claims["aud"]),
            app_id=str(claims.get("appid", "")),
            object_id=str(claims.get("oid", "")),
            expires_at=int(claims["exp"]),
        )
