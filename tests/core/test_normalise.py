import pytest

from shared.normalise import (
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
