"""Normalisation of identifying values, so the same person or company compares equal however written.

Pure functions; the same code serves `/…/sync`, de-duplication on create and the worker's re-check.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from publicsuffixlist import PublicSuffixList

__all__ = [
    "domain_label",
    "normalise",
    "normalise_domain",
    "normalise_email",
    "normalise_linkedin",
    "normalise_name",
    "normalise_phone",
    "strip_accents",
]

_psl = PublicSuffixList()

_COMPANY_SUFFIXES = frozenset(
    "inc incorporated corp corporation co company ltd limited llc llp plc gmbh ag sa sas sarl sl slu srl spa "
    "bv nv oy ab as aps kg ug pty pte kk".split()
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_LINKEDIN_PATH = re.compile(r"^/(in|pub|company|school|showcase|sales/lead|sales/people)/([^/?#]+)", re.IGNORECASE)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased; `mailto:` dropped. Plus-addressing is kept (it is a different mailbox)."""
    text = value.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    return text


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
    text = value.strip()
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        text = "//" + text.lstrip("/")
    parts = urlsplit(text)
    host = (parts.hostname or "").strip(".").lower()
    return host, parts.path


@lru_cache(maxsize=65536)
def normalise_domain(value: str) -> str:
    """Registrable domain: scheme, `www.`, subdomains, port, path and case dropped.

    `https://www.Acme.com/about` → `acme.com`; `shop.acme.co.uk` → `acme.co.uk`; an email gives its domain.
    """
    text = value.strip()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    host, _ = _host_and_path(text)
    if not host:
        return ""
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    registrable = _psl.privatesuffix(host)
    return registrable or host.removeprefix("www.")


def domain_label(value: str) -> str:
    """The registrable domain without its public suffix: `acme.com`, `acme.es`, `acme.co.uk` → `acme`."""
    domain = normalise_domain(value)
    suffix = _psl.publicsuffix(domain) if domain else None
    if suffix and domain.endswith("." + suffix):
        return domain[: -len(suffix) - 1]
    return domain


def normalise_linkedin(value: str) -> str:
    """`kind/slug`, e.g. `in/johndoe` or `company/acme`, whatever the scheme, host, locale, query or slash.

    A value that is not a LinkedIn profile URL falls back to its trimmed, lower-cased text.
    """
    host, path = _host_and_path(value)
    if host.endswith("linkedin.com"):
        match = _LINKEDIN_PATH.match(path)
        if match:
            kind = match.group(1).lower()
            kind = "in" if kind in ("pub", "sales/lead", "sales/people") else kind
            slug = unquote(match.group(2)).strip().lower()
            return f"{kind}/{slug}"
    return value.strip().lower().rstrip("/")


def normalise_phone(value: str) -> str:
    """Digits only, keeping a leading `+`; a `00` international prefix becomes `+`."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def normalise(kind: str, value: object, *, any_domain_extension: bool = False, company: bool = False) -> str:
    """Normalise `value` by the named normaliser (see `Normaliser`); empty string when there is nothing."""
    if value is None or isinstance(value, bool):
        return ""
    text = str(value)
    if not text.strip():
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
