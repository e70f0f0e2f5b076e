"""Who may use the admin console, and the console's defence against cross-site requests.

`CONSOLE_AUTH` says what stands in front of the app:

- `easyauth`: App Service Authentication (Microsoft Entra ID). It strips any `X-MS-CLIENT-PRINCIPAL` a
  client sends and injects its own (base64 JSON: `auth_typ`, `claims[{typ, val}]`, `name_typ`,
  `role_typ`); a request is let in only with that principal holding the admin app role
  (`CONSOLE_ADMIN_ROLE`). The header is read **only** in this mode: without Easy Auth in front, anyone
  could send it.
- `development`: `make serve` and `func start` on a developer's machine: every request from a loopback
  host is a development admin, labelled as such on every page. Any other host is refused, so a
  deployment that kept this value by mistake opens nothing.
- `disabled` (the default, also when unset): the console answers 401 and says how to turn it on.

Cross-site requests: a state-changing call must come from the console's own origin (`Sec-Fetch-Site:
same-origin`, or an `Origin` equal to the request's host when the browser sends no fetch metadata) AND
carry the console's token in `X-CSRF-Token` equal to the `gd_console_csrf` cookie (signed double submit:
the token is a nonce plus an HMAC of the nonce and the admin's id, keyed by a key derived from
`API_KEY_HASH_SECRET`, so a token planted by a sibling domain is refused).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from shared.platform.errors import AppError, Unauthorized
from shared.platform.settings import Settings

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "ConsolePrincipal",
    "Forbidden",
    "check_csrf",
    "check_same_origin",
    "console_principal",
    "csrf_cookie",
    "csrf_token",
    "valid_csrf_token",
]

CSRF_COOKIE = "gd_console_csrf"
CSRF_HEADER = "x-csrf-token"
PRINCIPAL_HEADER = "x-ms-client-principal"
DEVELOPMENT_ID = "development-admin"

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid", "sub")
_NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


class Forbidden(AppError):
    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class ConsolePrincipal:
    """The signed-in admin: a stable id (the Entra object id), a name to show and to record in history."""

    user_id: str
    name: str
    roles: frozenset[str]
    development: bool = False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _host(headers: Mapping[str, str]) -> str:
    return (_header(headers, "host") or "").strip().lower()


def _hostname(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


def _claims(document: Any) -> list[tuple[str, str]]:
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list):
        raise Unauthorized("console: the sign-in principal carries no claims")
    return [(str(c.get("typ", "")), str(c.get("val", ""))) for c in claims if isinstance(c, dict)]


def _decode_principal(raw: str) -> Any:
    try:
        return json.loads(base64.b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4), validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unauthorized("console: the sign-in principal is not valid base64 JSON") from None


def _first(claims: list[tuple[str, str]], types: tuple[str, ...]) -> str | None:
    for wanted in types:
        for typ, val in claims:
            if typ == wanted and val:
                return val
    return None


def _easy_auth_principal(settings: Settings, headers: Mapping[str, str]) -> ConsolePrincipal:
    raw = _header(headers, PRINCIPAL_HEADER)
    if not raw:
        raise Unauthorized("console: sign in with Microsoft Entra ID first (/.auth/login/aad)", code="sign_in")
    document = _decode_principal(raw)
    claims = _claims(document)
    role_type = str(document.get("role_typ") or "roles")
    roles = frozenset(val for typ, val in claims if typ in (role_type, *_ROLE_CLAIMS))
    user_id = _header(headers, "x-ms-client-principal-id") or _first(claims, _ID_CLAIMS)
    name_type = str(document.get("name_typ") or "name")
    name = _first(claims, (name_type, *_NAME_CLAIMS)) or _header(headers, "x-ms-client-principal-name")
    if not user_id:
        raise Unauthorized("console: the sign-in principal has no user id")
    if settings.console_admin_role not in roles:
        raise Forbidden(
            f"console: your account lacks the app role '{settings.console_admin_role}'; "
            "ask an owner of the app registration to assign it",
            code="missing_role",
        )
    return ConsolePrincipal(user_id=user_id, name=name or user_id, roles=roles)


def console_principal(settings: Settings, headers: Mapping[str, str]) -> ConsolePrincipal:
    """The admin making this request, or Unauthorized/Forbidden saying why not."""
    mode = settings.console_auth
    if mode == "easyauth":
        return _easy_auth_principal(settings, headers)
    if mode == "development":
        if _hostname(_host(headers)) not in _LOOPBACK:
            raise Forbidden(
                "console: CONSOLE_AUTH=development signs in only requests to a loopback host; "
                "use easyauth behind App Service Authentication",
                code="development_only_locally",
            )
        return ConsolePrincipal(DEVELOPMENT_ID, "Development admin", frozenset({settings.console_admin_role}), True)
    raise Unauthorized(
        "console: disabled. Set CONSOLE_AUTH=easyauth behind App Service Authentication (Entra ID), "
        "or CONSOLE_AUTH=development on your own machine",
        code="console_disabled",
    )


# ---------------------------------------------------------------------------------------------
# Cross-site request defence


def _csrf_key(settings: Settings) -> bytes:
    return hmac.new(settings.api_key_hash_secret.encode(), b"genesy-dynamics console csrf v1", hashlib.sha256).digest()


def _signature(settings: Settings, principal: ConsolePrincipal, nonce: str) -> str:
    message = f"{principal.user_id}|{nonce}".encode()
    return hmac.new(_csrf_key(settings), message, hashlib.sha256).hexdigest()[:43]


def csrf_token(settings: Settings, principal: ConsolePrincipal, nonce: str | None = None) -> str:
    """A fresh token for this admin (or the token of `nonce`)."""
    nonce = nonce or secrets.token_urlsafe(18)
    return f"{nonce}.{_signature(settings, principal, nonce)}"


def valid_csrf_token(settings: Settings, principal: ConsolePrincipal, token: str | None) -> bool:
    if not token or token.count(".") != 1 or len(token) > 200:
        return False
    nonce, signature = token.split(".")
    return bool(nonce) and hmac.compare_digest(signature, _signature(settings, principal, nonce))


def cookie_token(headers: Mapping[str, str]) -> str | None:
    raw = _header(headers, "cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(CSRF_COOKIE)
    return morsel.value if morsel is not None else None


def csrf_cookie(token: str, *, secure: bool) -> str:
    """The Set-Cookie value: readable only by the console's paths, never sent cross-site."""
    flags = "; Secure" if secure else ""
    return f"{CSRF_COOKIE}={token}; Path=/api/console; HttpOnly; SameSite=Strict{flags}"


def check_same_origin(headers: Mapping[str, str]) -> None:
    """Forbidden unless the browser says the request comes from the console's own origin."""
    site = (_header(headers, "sec-fetch-site") or "").strip().lower()
    if site:
        if site != "same-origin":
            raise Forbidden(f"console: cross-site request refused (Sec-Fetch-Site: {site[:20]})", code="cross_site")
        return
    origin = (_header(headers, "origin") or "").strip().lower()
    if not origin or origin == "null":
        raise Forbidden("console: a change needs the Origin of the console's page", code="cross_site")
    if urlsplit(origin).netloc != _host(headers):
        raise Forbidden("console: cross-site request refused (Origin is not this host)", code="cross_site")


def check_csrf(settings: Settings, principal: ConsolePrincipal, headers: Mapping[str, str]) -> None:
    """A state-changing call: same origin, and the header token equal to the cookie and signed for this admin."""
    check_same_origin(headers)
    sent, cookie = _header(headers, CSRF_HEADER), cookie_token(headers)
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Forbidden("console: the page's token is missing or stale; reload the page", code="csrf_token")
    if not valid_csrf_token(settings, principal, sent):
        raise Forbidden("console: the page's token is not yours; reload the page", code="csrf_token")
