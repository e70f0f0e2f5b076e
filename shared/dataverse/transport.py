"""The pooled `httpx.Client` under a `DataverseClient`: explicit timeouts and limits, the sandbox/test CA
when given, and no cookie persistence (Dataverse's ARRAffinity cookie would pin every request to one
web server, which service-protection limits are counted per)."""

from __future__ import annotations

import ssl
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

__all__ = ["build_http_client"]


def _no_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def build_http_client(
    base_url: str,
    *,
    ca_bundle: str | None,
    max_concurrency: int,
    timeout: float,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    """An `httpx.Client` for one environment's Web API root."""
    verify: ssl.SSLContext | bool = True
    if ca_bundle:
        verify = ssl.create_default_context(cafile=ca_bundle)
    return httpx.Client(
        base_url=base_url,
        verify=verify,
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout), pool=timeout),
        limits=httpx.Limits(
            max_connections=max_concurrency * 2,
            max_keepalive_connections=max_concurrency * 2,
            keepalive_expiry=30.0,
        ),
        cookies=_no_cookies(),
        follow_redirects=False,
        transport=transport,
        headers={
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "User-Agent": "genesy-dynamics",
        },
    )
