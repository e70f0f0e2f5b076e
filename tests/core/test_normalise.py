import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.normalise import (
    canonical_linkedin_url,
    domain_label,
    normalise,
    normalise_domain,
    normalise_email,
    normalise_linkedin,
    normalise_name,
    normalise_phone,
)


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.acme.com/about",
        "WWW.ACME.COM",
        "acme.com",
        "http://acme.com:8080/x?y=1",
        " acme.com/ ",
        "shop.acme.com",
    ],
)
def test_domain_variants_become_the_registrable_domain(raw: str) -> None:
    assert normalise_domain(raw) == "acme.com"


def test_domain_respects_multi_label_public_suffixes() -> None:
    assert normalise_domain("https://www.acme.co.uk/") == "acme.co.uk"
    assert normalise_domain("jane@Sales.Acme.COM") == "acme.com"
    assert normalise_domain("") == ""


def test_any_domain_extension_compares_the_label() -> None:
    assert domain_label("acme.com") == domain_label("https://acme.es") == domain_label("acme.co.uk") == "acme"
    assert domain_label("acme.com") != domain_label("acmex.com")
    assert normalise("domain", "acme.es", any_domain_extension=True) == normalise(
        "domain", "www.acme.de", any_domain_extension=True
    )


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/in/JohnDoe/",
        "linkedin.com/in/johndoe",
        "http://es.linkedin.com/in/johndoe?trk=public",
        "https://www.linkedin.com/in/johndoe#x",
        "www.linkedin.com/pub/johndoe",
    ],
)
def test_linkedin_url_variants(raw: str) -> None:
    assert normalise_linkedin(raw) == "in/johndoe"


def test_linkedin_company_and_encoded_slugs() -> None:
    assert normalise_linkedin("https://linkedin.com/company/acme/about/") == "company/acme"
    assert normalise_linkedin("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa") == "in/josé-garcía"
    assert normalise_linkedin("https://linkedin.com/in/johndoe2") != normalise_linkedin("linkedin.com/in/johndoe")


def test_names_ignore_case_accents_and_punctuation() -> None:
    assert normalise_name("José  Ñandú") == normalise_name("jose nandu")
    assert normalise_name("O'Brien") == normalise_name("OBrien") == "obrien"
    assert normalise_name("Acme, Inc.", company=True) == normalise_name("ACME", company=True) == "acme"
    assert normalise_name("Ñandú S.L.", company=True) == "nandu"
    assert normalise_name("Company", company=True) == "company"  # a name that is only a suffix stays


def test_email_and_phone() -> None:
    assert normalise_email("  John.Doe+x@Acme.COM ") == "john.doe+x@acme.com"
    assert normalise_email("mailto:a@b.com") == "a@b.com"
    assert normalise_phone("+1 (555) 012-3456") == "+15550123456"
    assert normalise_phone("0034 600 11 22 33") == "+34600112233"


def test_normalise_empty_values() -> None:
    assert normalise("email", None) == ""
    assert normalise("name", "   ") == ""
    assert normalise("exact", True) == ""
    assert normalise("exact", "  A   b ") == "a b"


# ---------------------------------------------------------------------------------------------
# LinkedIn: one canonical form written, every usual stored form recognised.


@pytest.mark.parametrize(
    "raw",
    [
        "https://es.linkedin.com/in/jose-garcia/?originalSubdomain=es",
        "http://www.linkedin.com/in/JOSE-GARCIA",
        "https://uk.linkedin.com/in/Jose-Garcia/?trk=x",
        "linkedin.com/in/jose-garcia",
        "https://m.linkedin.com/in/jose-garcia#about",
        "https://mobile.linkedin.com/in/jose-garcia/",
        "HTTPS://WWW.LINKEDIN.COM/IN/JOSE-GARCIA/",
        "  www.linkedin.com/in/jose-garcia/en  ",
        "https://www.linkedin.com/mwlite/in/jose-garcia",
        "//linkedin.com/in/jose-garcia",
    ],
)
def test_linkedin_forms_of_one_profile_normalise_and_canonicalise_alike(raw: str) -> None:
    assert normalise_linkedin(raw) == "in/jose-garcia"
    assert canonical_linkedin_url(raw) == "https://www.linkedin.com/in/jose-garcia"


def test_linkedin_canonical_form_of_companies_and_encoded_slugs() -> None:
    assert canonical_linkedin_url("https://uk.linkedin.com/company/Acme-Inc/about/") == (
        "https://www.linkedin.com/company/acme-inc"
    )
    encoded = canonical_linkedin_url("linkedin.com/in/Jos%C3%A9-Garc%C3%ADa")
    assert encoded == "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa"
    # Written encoded, read back decoded or encoded: the same person.
    assert (
        normalise_linkedin(encoded)
        == normalise_linkedin("https://www.linkedin.com/in/josé-garcía/")
        == ("in/josé-garcía")
    )
    # A decomposed accent (NFD) is the same slug as the composed one.
    assert normalise_linkedin("linkedin.com/in/jose\u0301") == normalise_linkedin("linkedin.com/in/josé")


@pytest.mark.parametrize(
    "raw",
    [
        "https://notlinkedin.com/in/jose-garcia",
        "https://linkedin.com.evil.example/in/jose-garcia",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/in/",
        "jose-garcia",
        "N/A",
        "-",
        "[a]",
        "http://[oops/in/x",
        "https://www.linkedin.com/in/" + "x" * 300,
    ],
)
def test_anything_else_in_a_linkedin_field_is_no_identity(raw: str) -> None:
    assert normalise("linkedin", raw) == ""
    assert canonical_linkedin_url(raw) is None


def test_a_longer_slug_is_another_person() -> None:
    assert normalise_linkedin("linkedin.com/in/jose-garcia-2") != normalise_linkedin("linkedin.com/in/jose-garcia")


# ---------------------------------------------------------------------------------------------
# Hostile input: no normaliser raises; what cannot be an identity is none.

HOSTILE = [
    "[a]",
    "acme[1].com",
    "http://[oops/in/x",
    "http://[::1]/in/x",
    "https://linkedin.com:99999/in/x",
    "\ud800",
    "a\udfff@x.com",
    "https://www.linkedin.com/in/jos\ud800",
    "linkedin.com/in/%ED%A0%80",
    "\x00",
    "@",
    "://",
    "%",
    "x" * 70000,
    "b" * 70000 + "@x.com",
    "ü" * 5000 + ".com",
]
KINDS = ["email", "linkedin", "domain", "name", "phone", "exact"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_values_never_raise(raw: str) -> None:
    for kind in KINDS:
        result = normalise(kind, raw)
        result.encode("utf-8")  # whatever comes out can go into a query
        normalise(kind, raw, any_domain_extension=True, company=True)
    for function in (normalise_email, normalise_linkedin, normalise_domain, normalise_name, normalise_phone):
        function(raw)
    canonical_linkedin_url(raw)
    domain_label(raw)


def test_brackets_in_hosts_are_no_identity() -> None:
    assert normalise("domain", "acme[1].com") == ""
    assert normalise("domain", "[a]") == ""
    assert normalise("linkedin", "http://[oops/in/x") == ""
    assert normalise_domain("http://[::1]/") == ""  # an address literal is not a company's domain


def test_values_with_lone_surrogates_are_no_identity() -> None:
    for kind in KINDS:
        assert normalise(kind, "jose\ud800garcia@x.com") == ""
    assert normalise("email", "jose\u00e9@x.com") == "jose\u00e9@x.com"  # real non-ASCII text is fine


def test_values_too_long_to_be_an_identity_are_none() -> None:
    assert normalise("email", "b" * 70000 + "@x.com") == ""
    assert normalise("email", "b" * 315 + "@x.com") == ""  # 321 characters: over 320
    assert normalise("email", "b" * 300 + "@x.com") == "b" * 300 + "@x.com"
    assert normalise("name", "Acme " * 14000, company=True) == ""
    assert normalise("name", "x" * 401) == ""
    assert normalise("name", "x" * 300) == "x" * 300
    assert normalise("phone", "1" * 101) == ""
    assert normalise("exact", "x" * 1001) == ""


def test_garbage_emails_phones_and_domains_are_no_identity() -> None:
    assert normalise("email", "n/a") == ""
    assert normalise("phone", "none") == "" and normalise("phone", "+") == ""
    assert normalise("domain", "n/a") == "" and normalise("domain", "-") == ""
    assert normalise("domain", "münchen.de") == "xn--mnchen-3ya.de"  # IDN hosts still work


# Any text: every code point, lone surrogates included, mixed with the pieces URLs and e-mails are made of.
_PIECES = st.sampled_from(
    ["[", "]", "@", "/", ":", "%", "%C3", "%ED%A0%80", "\ud800", "\udfff", ".", " ", "www.", "linkedin.com",
     "/in/", "/company/", "http://", "https://", "?", "#", "'", '"', "\\", "\x00", "é", "😀", "xn--", "[::1]",
     "..", "-", "mailto:", "+", "00"]
)  # fmt: skip
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.lists(st.one_of(_PIECES, st.text(st.characters(exclude_categories=()), max_size=4)), max_size=24).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(text=ANY_TEXT, kind=st.sampled_from(KINDS), flags=st.tuples(st.booleans(), st.booleans()))
def test_normalisers_never_raise_on_any_text(text: str, kind: str, flags: tuple[bool, bool]) -> None:
    result = normalise(kind, text, any_domain_extension=flags[0], company=flags[1])
    result.encode("utf-8")
    url = canonical_linkedin_url(text)
    if url is not None:
        assert url.isascii() and url.startswith("https://www.linkedin.com/")
        assert normalise_linkedin(url) == normalise_linkedin(text)  # the canonical form is the same identity
