"""Normalisation of identifying values, so the same person or company compares equal however written.

Pure functions; the same code serves `/…/sync`, de-duplication on create and the worker's re-check.
No normaliser raises, whatever the text: a value that cannot be an identity (garbage, lone UTF-16
surrogates, far longer than any real e-mail, name or URL) normalises to `""`, "no identity", so the
record matches on its other values or is created, and never fails the call it came in.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from publicsuffixlist import PublicSuffixList

__all__ = [
    "MAX_IDENTITY_CHARS",
    "canonical_linkedin_url",
    "domain_label",
    "encode_linkedin_slug",
    "has_surrogates",
    "linkedin_parts",
    "normalise",
    "normalise_domain",
    "normalise_email",
    "normalise_linkedin",
    "normalise_name",
    "normalise_phone",
    "strip_accents",
]



@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    """The public suffix list, parsed on first use (~30 ms) rather than at cold start."""
    return PublicSuffixList()

# The longest raw text each normaliser accepts as an identity. Longer values are no real e-mail (RFC
# 5321: 320), name (Dataverse: first/last name 50, account name 160; a few hundred is generous), URL
# or phone, and would only blow up the match query. Matching skips them; the write still happens.
MAX_IDENTITY_CHARS = {
    "email": 320,
    "linkedin": 2048,
    "domain": 2048,
    "name": 400,
    "phone": 100,
    "exact": 1000,
}
_MAX_LINKEDIN_SLUG = 200  # LinkedIn's custom URLs are at most 100 characters

_COMPANY_SUFFIXES = frozenset(
    "inc incorporated corp corporation co company ltd limited llc llp plc gmbh ag sa sas sarl sl slu srl spa "
    "bv nv oy ab as aps kg ug pty pte kk".split()
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LINKEDIN_PATH = re.compile(
    r"^/(?:mwlite/)?(in|pub|company|school|showcase|sales/lead|sales/people)/([^/?#]+)", re.IGNORECASE
)
_HOSTNAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)+$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SLUG_SAFE = "-_.~!$'()*,;=:@+&"  # sub-delims and unreserved characters stay as they are in a path segment


def has_surrogates(text: str) -> bool:
    """Whether `text` holds lone UTF-16 surrogates (e.g. from JSON `"\\ud800"`), which no encoder accepts."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased; `mailto:` dropped; `""` without an `@`. Plus-addressing is kept (it is a
    different mailbox)."""
    text = value.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    return text if "@" in text else ""  # "n/a", "-": not an address, so no identity


def normalise_name(value: str, *, company: bool = False) -> str:
    """Case, accents, punctuation and spacing ignored; for companies also legal suffixes (Inc, S.L., GmbH…)."""
    text = strip_accents(unicodedata.normalize("NFKC", value)).casefold()
    text = text.replace("&", " and ").replace("'", "").replace("\u2019", "")
    words = [w for w in _NON_WORD.split(text) if w and w != "_"]
    if company:
        # Joined single letters ("s l" from "S.L.") become one token before suffixes are dropped.
        merged: list[str] = []
        for word in words:
            if len(word) == 1 and merged and len(merged[-1]) <= 2 and merged[-1].isalpha() and len(words) > 1:
                merged[-1] += word
            else:
                merged.append(word)
        while len(merged) > 1 and merged[-1] in _COMPANY_SUFFIXES:
            merged.pop()
        words = merged
    return " ".join(words)


def _host_and_path(value: str) -> tuple[str, str]:
    """The lower-cased host and the path of a URL written with or without its scheme; `("", "")` for text
    no URL parser accepts (a `[` in the host, an unclosed IPv6 literal...)."""
    text = value.strip()
    if not _SCHEME.match(text):
        text = "//" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").strip(".").lower()
    except ValueError:
        return "", ""
    return host, parts.path


@lru_cache(maxsize=65536)
def normalise_domain(value: str) -> str:
    """Registrable domain: scheme, `www.`, subdomains, port, path and case dropped; `""` when no host name.

    `https://www.Acme.com/about` → `acme.com`; `shop.acme.co.uk` → `acme.co.uk`; an email gives its domain.
    """
    text = value.strip()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    host, _ = _host_and_path(text)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if not _HOSTNAME.match(host):
        return ""  # not a host name ("n/a", "acme[1].com", an IP literal): no identity
    registrable = _public_suffixes().privatesuffix(host)
    return registrable or host.removeprefix("www.")


def domain_label(value: str) -> str:
    """The registrable domain without its public suffix: `acme.com`, `acme.es`, `acme.co.uk` → `acme`."""
    domain = normalise_domain(value)
    suffix = _public_suffixes().publicsuffix(domain) if domain else None
    if suffix and domain.endswith("." + suffix):
        return domain[: -len(suffix) - 1]
    return domain


def linkedin_parts(value: str) -> tuple[str, str] | None:
    """`(kind, slug)` of a LinkedIn profile or page URL — `("in", "josé-garcía")`, `("company", "acme")` —
    whatever its scheme, host (`www.`, `es.`, `uk.`, `m.`, none), case, percent-encoding, trailing
    slash, query or fragment; None when `value` is not one."""
    if has_surrogates(value):
        return None
    host, path = _host_and_path(value)
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    match = _LINKEDIN_PATH.match(path)
    if not match:
        return None
    kind = match.group(1).lower()
    kind = "in" if kind in ("pub", "sales/lead", "sales/people") else kind
    slug = unicodedata.normalize("NFC", unquote(match.group(2))).strip().lower()
    if not slug or len(slug) > _MAX_LINKEDIN_SLUG or has_surrogates(slug) or not slug.isprintable():
        return None
    return kind, slug


def normalise_linkedin(value: str) -> str:
    """`kind/slug`, e.g. `in/johndoe` or `company/acme` (see `linkedin_parts`); `""` for any other text."""
    parts = linkedin_parts(value)
    return f"{parts[0]}/{parts[1]}" if parts else ""


def encode_linkedin_slug(slug: str) -> str:
    """The slug as it goes into a URL: percent-encoded where a path segment needs it (`josé` → `jos%C3%A9`)."""
    return quote(slug, safe=_SLUG_SAFE)


def canonical_linkedin_url(value: str) -> str | None:
    """The one form we write: `https://www.linkedin.com/in/<slug>` (lower-case slug, no query or slash)."""
    parts = linkedin_parts(value)
    return f"https://www.linkedin.com/{parts[0]}/{encode_linkedin_slug(parts[1])}" if parts else None


def normalise_phone(value: str) -> str:
    """Digits only, keeping a leading `+`; a `00` international prefix becomes `+`."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return ""
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def normalise(kind: str, value: object, *, any_domain_extension: bool = False, company: bool = False) -> str:
    """Normalise `value` by the named normaliser (see `Normaliser`); `""` when it is no identity: empty,
    longer than `MAX_IDENTITY_CHARS`, or holding lone surrogates."""
    if value is None or isinstance(value, bool):
        return ""
    text = str(value)
    if len(text) > MAX_IDENTITY_CHARS.get(kind, MAX_IDENTITY_CHARS["exact"]) or not text.strip():
        return ""
    if has_surrogates(text):
        return ""
    match kind:
        case "email":
            return normalise_email(text)
        case "linkedin":
            return normalise_linkedin(text)
        case "domain":
            return domain_label(text) if any_domain_extension else normalise_domain(text)
        case "name":
            return normalise_name(text, company=company)
        case "phone":
            return normalise_phone(text)
        case _:
            return " ".join(text.split()).casefold()
