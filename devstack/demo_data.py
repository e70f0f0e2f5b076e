"""Realistic Genesy records for the demo, its test and the benchmarks (deterministic for a given seed).

The demo dataset always holds the awkward cases a real export brings — companies and contacts that
already exist in the sandbox's seed (matched by domain, e-mail, LinkedIn, or accent-insensitive name
and company), an ambiguous company (two accounts share acme.com), a contact with no e-mail, the same
person twice in one batch — and is filled up with generated people and companies with accents and
apostrophes. The bulk generators build large, unique datasets for the export benchmark.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DemoDataset",
    "ExpectedMatch",
    "ascii_fold",
    "build_dataset",
    "bulk_companies",
    "bulk_contacts",
]

Record = dict[str, Any]

FIRST_NAMES = (
    "Lucía",
    "Álvaro",
    "Inés",
    "François",
    "Zoë",
    "Björn",
    "Siobhán",
    "Niamh",
    "Jürgen",
    "Íñigo",
    "Renée",
    "Mikel",
    "Ana",
    "Pål",
    "Ciarán",
    "Maëlle",
    "Søren",
    "Núria",
    "Agnès",
    "Éamon",
    "Marta",
    "Joël",
    "Ólafur",
    "Begoña",
    "Hélène",
    "Dónal",
    "Jörg",
    "Aitor",
    "Céline",
    "Tomás",
)
LAST_NAMES = (
    "Fernández",
    "O'Connor",
    "D'Angelo",
    "Müller",
    "Lefèvre",
    "Ibáñez",
    "Ó Súilleabháin",
    "Martínez",
    "Dubois",
    "Schäfer",
    "García-López",
    "McCarthy",
    "Nørgaard",
    "Peña",
    "L'Hôte",
    "Öztürk",
    "Zubiría",
    "Brennan",
    "Hernández",
    "Kovačević",
    "Ní Bhriain",
    "Roßmann",
    "Sánchez",
    "Thévenin",
    "Ødegård",
    "Gómez",
    "D'Arcy",
)
TITLES = (
    "Head of Sales",
    "Chief Revenue Officer",
    "VP Marketing",
    "Directora Comercial",
    "Responsable IT",
    "Sales Operations Manager",
    "CEO",
    "CTO",
    "Account Executive",
    "Directeur des Opérations",
    "Growth Lead",
    "Procurement Manager",
)
NEW_COMPANIES = (
    ("Iberdata Soluciones S.L.", "iberdata.es", 85),
    ("Société Générale du Logiciel", "https://www.sgl-logiciel.fr/", 240),
    ("Nordlys Analytics AS", "nordlys.no", 32),
    ("Brügge Maschinenbau GmbH", "http://bruegge-mb.de", 610),
    ("L'Atelier Numérique", "latelier-numerique.fr", 18),
    ("Dún Laoghaire Digital", "www.dldigital.ie", 45),
    ("Ñandú Ventures", "nandu.vc", 12),
    ("Zürich Data AG", "zuerichdata.ch", 150),
    ("Café Olé Franquicias", "cafeole.es", 73),
    ("Kjøbenhavn Logistik ApS", "kbh-logistik.dk", 390),
    ("Tierra & Mar Exportaciones", "tierraymar.com.mx", 57),
    ("Crème de la Crème SAS", "creme.fr", 26),
)


def ascii_fold(text: str) -> str:
    """`Ó Súilleabháin` → `O Suilleabhain`, `Nørgaard` → `Norgaard` (for e-mail local parts and slugs)."""
    text = text.replace("ø", "o").replace("Ø", "O").replace("ß", "ss").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", ascii_fold(text).lower())


def _bare_domain(domain: str) -> str:
    return re.sub(r"^(https?://)?(www\.)?", "", domain).strip("/")


@dataclass(frozen=True)
class ExpectedMatch:
    """A record that already exists in the sandbox's seed: which seed rows may be its match, and why."""

    external_id: str
    seed_keys: tuple[str, ...]
    by: str  # domain | name | email | linkedin | name+company | domain (ambiguous)


@dataclass
class DemoDataset:
    """A Genesy session's records, with what the demo expects to happen to them."""

    companies: list[Record]
    contacts: list[Record]
    company_of: dict[str, str]  # contact externalId → company externalId
    existing_companies: list[ExpectedMatch] = field(default_factory=list)
    existing_contacts: list[ExpectedMatch] = field(default_factory=list)
    ambiguous_company: str = ""
    duplicate_pair: tuple[str, str] = ("", "")
    no_email: list[str] = field(default_factory=list)
    owner_id_contacts: list[str] = field(default_factory=list)  # get `ownerId` = a /users id at export
    owner_email_contacts: list[str] = field(default_factory=list)  # carry `ownerEmail` (user mapping)
    engaged_contacts: list[str] = field(default_factory=list)  # updated with `campaigns` set

    def contact(self, external_id: str) -> Record:
        return next(c for c in self.contacts if c["externalId"] == external_id)

    def company(self, external_id: str) -> Record:
        return next(c for c in self.companies if c["externalId"] == external_id)


def _person(rng: random.Random, used: set[str]) -> tuple[str, str]:
    while True:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        key = f"{first}|{last}"
        if key not in used and first != "Lucía":
            used.add(key)
            return first, last


def build_dataset(companies: int = 14, contacts: int = 40, seed: int = 2024, owner_email: str = "") -> DemoDataset:
    """The demo session's records: the awkward fixed cases plus generated ones up to the given counts.

    `owner_email` is the Genesy user that the user mapping maps to a Dynamics owner; a few contacts carry
    it. Minimum sizes: 8 companies, 12 contacts (the fixed cases).
    """
    if companies < 8 or contacts < 12:
        raise ValueError("the demo dataset needs at least 8 companies and 12 contacts")
    rng = random.Random(seed)
    company_rows = _demo_companies(rng, companies)
    by_name = {c["name"]: c for c in company_rows}
    contact_rows, company_of = _fixed_contacts(by_name["Iberdata Soluciones S.L."], by_name["L'Atelier Numérique"])
    used: set[str] = set()
    targets = [c for c in company_rows if c.get("domain")]
    for index in range(len(contact_rows), contacts):
        company = targets[index % len(targets)]
        record = _generated_contact(rng, used, index, company)
        contact_rows.append(record)
        company_of[record["externalId"]] = str(company["externalId"])
    generated = [c["externalId"] for c in contact_rows if str(c["externalId"]).startswith("gct-gen-")]
    owner_id_contacts = generated[0:3]
    owner_email_contacts = generated[3:6]
    if owner_email:
        _carry_owner_email(contact_rows, owner_email_contacts, owner_email)
    engaged = ["gct-sean", "gct-lucia-1", "gct-zoe", *generated[:2]]
    return DemoDataset(
        companies=company_rows,
        contacts=contact_rows,
        company_of=company_of,
        existing_companies=[
            ExpectedMatch("gco-contoso", ("account:contoso",), "domain"),
            ExpectedMatch("gco-cafe", ("account:cafe",), "domain"),
            ExpectedMatch("gco-obrien", ("account:obrien",), "domain"),
            ExpectedMatch("gco-fabrikam", ("account:fabrikam",), "name"),
            ExpectedMatch("gco-acme", ("account:acme", "account:acme-europe"), "domain (ambiguous)"),
        ],
        existing_contacts=[
            ExpectedMatch("gct-sean", ("contact:sean",), "email"),
            ExpectedMatch("gct-jose", ("contact:jose",), "linkedin"),
            ExpectedMatch("gct-maria", ("contact:maria",), "name+company"),
        ],
        ambiguous_company="gco-acme",
        duplicate_pair=("gct-lucia-1", "gct-lucia-2"),
        no_email=["gct-jose", "gct-maria", "gct-zoe"],
        owner_id_contacts=owner_id_contacts,
        owner_email_contacts=owner_email_contacts if owner_email else [],
        engaged_contacts=engaged,
    )


def _demo_companies(rng: random.Random, companies: int) -> list[Record]:
    """The companies that already exist in the seed, then new ones (known, then generated) up to `companies`."""
    company_rows: list[Record] = [
        {"externalId": "gco-contoso", "name": "Contoso", "domain": "https://www.contoso.com/", "industry": "Software"},
        {"externalId": "gco-cafe", "name": "Café Münster GmbH", "domain": "cafe-muenster.de", "numberOfEmployees": 55},
        {"externalId": "gco-obrien", "name": "O'Brien & Sons", "domain": "http://obrien.ie"},
        {
            "externalId": "gco-fabrikam",
            "name": "Fabrikam, Inc.",
            "linkedinUrl": "https://www.linkedin.com/company/fabrikam",
        },
        {"externalId": "gco-acme", "name": "ACME", "domain": "acme.com"},
    ]
    new_companies = list(NEW_COMPANIES)
    rng.shuffle(new_companies)
    # Iberdata and L'Atelier carry fixed cases (see `_fixed_contacts`); keep them in.
    new_companies.sort(key=lambda c: c[0] not in ("Iberdata Soluciones S.L.", "L'Atelier Numérique"))
    for index, (name, domain, employees) in enumerate(new_companies[: companies - len(company_rows)]):
        company_rows.append(
            {
                "externalId": f"gco-new-{index + 1:03d}",
                "name": name,
                "domain": domain,
                "numberOfEmployees": employees,
                "linkedinUrl": f"https://www.linkedin.com/company/{_slug(name)}",
            }
        )
    for index in range(len(company_rows), companies):
        name = f"{rng.choice(LAST_NAMES)} {rng.choice(('Consulting', 'Partners', 'Labs', 'Group'))} {index}"
        company_rows.append({"externalId": f"gco-gen-{index:03d}", "name": name, "domain": f"{_slug(name)}.example"})
    return company_rows


def _fixed_contacts(iberdata: Record, atelier: Record) -> tuple[list[Record], dict[str, str]]:
    """The awkward contacts every demo holds (seed matches, a duplicate pair, no e-mail) and their companies."""
    contact_rows: list[Record] = [
        {
            "externalId": "gct-sean",
            "firstName": "Seán",
            "lastName": "O'Brien",
            "email": "Sean.OBrien@OBrien.ie",
            "company": "O'Brien & Sons",
            "title": "Managing Director",
        },
        {
            "externalId": "gct-jose",
            "firstName": "José",
            "lastName": "Núñez",
            "linkedinUrl": "https://www.linkedin.com/in/josenunez",
            "company": "Café Münster GmbH",
            "title": "Barista-in-Chief",
        },
        {
            "externalId": "gct-maria",
            "firstName": "Maria",
            "lastName": "Garcia",
            "company": "Acme Corporation",
            "title": "Procurement Manager",
        },
        {
            "externalId": "gct-lucia-1",
            "firstName": "Lucía",
            "lastName": "Fernández",
            "email": "lucia.fernandez@iberdata.es",
            "company": iberdata["name"],
            "title": "Directora Comercial",
        },
        {
            "externalId": "gct-lucia-2",
            "firstName": "Lucia",
            "lastName": "Fernandez",
            "email": "Lucia.Fernandez@IberData.es",
            "company": iberdata["name"],
            "title": "Directora Comercial",
        },
        {
            "externalId": "gct-zoe",
            "firstName": "Zoë",
            "lastName": "L'Hôte",
            "company": atelier["name"],
            "title": "Fondatrice",
            "phone": "+33 1 23 45 67 89",
        },
    ]
    company_of = {
        "gct-sean": "gco-obrien",
        "gct-jose": "gco-cafe",
        "gct-maria": "gco-acme",
        "gct-lucia-1": iberdata["externalId"],
        "gct-lucia-2": iberdata["externalId"],
        "gct-zoe": atelier["externalId"],
    }
    return contact_rows, company_of


def _generated_contact(rng: random.Random, used: set[str], index: int, company: Record) -> Record:
    """A new person working at `company`, with an e-mail at its domain and sometimes LinkedIn and a phone."""
    first, last = _person(rng, used)
    domain = _bare_domain(str(company["domain"]))
    local = f"{_slug(first)}.{_slug(last)}"
    record: Record = {
        "externalId": f"gct-gen-{index:03d}",
        "firstName": first,
        "lastName": last,
        "email": f"{local}{index}@{domain}",
        "company": company["name"],
        "title": rng.choice(TITLES),
    }
    if rng.random() < 0.6:
        record["linkedinUrl"] = f"https://www.linkedin.com/in/{_slug(first)}-{_slug(last)}-{index}/"
    if rng.random() < 0.4:
        record["phone"] = f"+34 6{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    return record


def _carry_owner_email(contact_rows: list[Record], owner_email_contacts: list[str], owner_email: str) -> None:
    """Give the chosen contacts the exporting Genesy user (`ownerEmail`) the user mapping knows."""
    for record in contact_rows:
        if record["externalId"] in owner_email_contacts:
            record["ownerEmail"] = owner_email


# ---------------------------------------------------------------------------------------------------------
# Bulk data for the export benchmark


def bulk_companies(count: int, seed: int = 7, prefix: str = "bco") -> list[Record]:
    """`count` distinct companies (unique names and domains)."""
    rng = random.Random(seed)
    out: list[Record] = []
    for index in range(count):
        stem = f"{_slug(rng.choice(LAST_NAMES))}{index}"
        out.append(
            {
                "externalId": f"{prefix}-{index:06d}",
                "name": f"{rng.choice(LAST_NAMES)} {rng.choice(('Consulting', 'Labs', 'Group', 'Partners'))} {index}",
                "domain": f"https://www.{stem}.example/",
                "numberOfEmployees": rng.randint(5, 5000),
            }
        )
    return out


def bulk_contacts(count: int, companies: list[Record], seed: int = 11, prefix: str = "bct") -> list[Record]:
    """`count` distinct people (unique e-mails), spread over `companies`."""
    rng = random.Random(seed)
    out: list[Record] = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if index % 4:
            # Two surnames, as is common in Spanish-speaking markets: without them the small name pools
            # would make every name as common as "John Smith" in a large CRM.
            last = f"{last} {rng.choice(LAST_NAMES)}"
        company = companies[index % len(companies)] if companies else None
        domain = _bare_domain(str(company["domain"])) if company else "people.example"
        record: Record = {
            "externalId": f"{prefix}-{index:06d}",
            "firstName": first,
            "lastName": last,
            "email": f"{_slug(first)}.{_slug(last)}.{index}@{domain}",
            "title": rng.choice(TITLES),
        }
        if company:
            record["company"] = company["name"]
        if index % 3 == 0:
            record["linkedinUrl"] = f"https://www.linkedin.com/in/{_slug(first)}-{_slug(last)}-{index}"
        out.append(record)
    return out
