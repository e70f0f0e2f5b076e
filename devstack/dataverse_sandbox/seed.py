"""The seed state every sandbox starts from (and `reset()` returns to).

Deliberately awkward data: accents, an apostrophe name, a `+` address, two accounts sharing one
domain (ambiguous company matches), different `modifiedon` values, disabled users and the
non-interactive application user the managed identity signs in as.
"""

from __future__ import annotations

import uuid

from devstack.dataverse_sandbox.store import Store
from devstack.dataverse_sandbox.tokens import DEFAULT_CLIENT_ID

__all__ = [
    "APP_USER_ID",
    "BUSINESS_UNIT_ID",
    "ORGANIZATION_ID",
    "SEED_IDS",
    "load_seed",
]


def _id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"genesy-dynamics-sandbox:{name}"))


APP_USER_ID = _id("user:app")
BUSINESS_UNIT_ID = _id("businessunit")
ORGANIZATION_ID = _id("organization")

SEED_IDS: dict[str, str] = {
    name: _id(name)
    for name in (
        "user:app", "user:alice", "user:bruno", "user:chloe", "user:disabled", "user:disabled2",
        "team:sales",
        "account:acme", "account:acme-europe", "account:contoso", "account:fabrikam", "account:cafe",
        "account:obrien",
        "contact:sean", "contact:jose", "contact:alice-plus", "contact:maria", "contact:inactive",
        "contact:nandu",
        "lead:1", "lead:2",
    )
}


def load_seed(store: Store) -> None:
    """Insert the seed rows into an empty store."""
    ids = SEED_IDS
    users = [
        ("user:app", "# genesy-dynamics", "", "genesy-dynamics@app.local", False, 4, DEFAULT_CLIENT_ID),
        ("user:alice", "Alice", "Martin", "alice.martin@contoso.onmicrosoft.com", False, 0, None),
        ("user:bruno", "Bruno", "Díaz", "bruno.diaz@contoso.onmicrosoft.com", False, 0, None),
        ("user:chloe", "Chloé", "O'Neil", "chloe.oneil@contoso.onmicrosoft.com", False, 0, None),
        ("user:disabled", "Dana", "Gone", "dana.gone@contoso.onmicrosoft.com", True, 0, None),
        ("user:disabled2", "Evan", "Left", "evan.left@contoso.onmicrosoft.com", True, 0, None),
    ]
    for key, first, last, email, disabled, access, app_id in users:
        body: dict[str, object] = {
            "systemuserid": ids[key],
            "firstname": first or None,
            "lastname": last or None,
            "fullname": f"{first} {last}".strip(),
            "internalemailaddress": email,
            "domainname": email,
            "isdisabled": disabled,
            "accessmode": access,
            "azureactivedirectoryobjectid": _id(f"aad:{key}"),
        }
        if app_id:
            body["applicationid"] = app_id
        store.insert("systemuser", body)
    store.insert("team", {"teamid": ids["team:sales"], "name": "Sales", "teamtype": 0, "isdefault": False})

    def owner(key: str) -> str:
        return f"/systemusers({ids[key]})"

    accounts = [
        ("account:acme", "Acme Corporation", "acme.com", "https://www.acme.com", "2024-03-01T09:00:00Z", "user:alice"),
        ("account:acme-europe", "Acme Europe", "acme.com", "https://acme.com/eu", "2024-05-01T09:00:00Z", "user:bruno"),
        ("account:contoso", "Contoso Ltd", "contoso.com", "https://contoso.com", "2024-01-15T12:00:00Z", "user:alice"),
        ("account:fabrikam", "Fabrikam, Inc.", "fabrikam.com", "http://fabrikam.com/", "2023-11-20T08:30:00Z",
         "user:chloe"),
        ("account:cafe", "Café Münster GmbH", "cafe-muenster.de", "https://cafe-muenster.de", "2024-02-02T10:00:00Z",
         "user:bruno"),
        ("account:obrien", "O'Brien & Sons", "obrien.ie", "https://www.obrien.ie", "2024-04-04T16:45:00Z",
         "user:chloe"),
    ]
    for key, name, domain, web, modified, own in accounts:
        store.insert("account", {
            "accountid": ids[key], "name": name, "gd_domain": domain, "websiteurl": web,
            "ownerid@odata.bind": owner(own), "industrycode": 7, "numberofemployees": 50,
            "createdon": "2023-06-01T00:00:00Z", "modifiedon": modified,
        })

    contacts = [
        ("contact:sean", "Seán", "O'Brien", "sean.obrien@obrien.ie", "account:obrien", 0,
         "https://www.linkedin.com/in/sean-obrien", "2024-04-05T10:00:00Z"),
        ("contact:jose", "José", "Núñez", "jose.nunez@cafe-muenster.de", "account:cafe", 0,
         "https://linkedin.com/in/josenunez/", "2024-02-03T10:00:00Z"),
        ("contact:alice-plus", "Alice", "Plus", "a+b@x.com", "account:contoso", 0, None, "2024-01-16T10:00:00Z"),
        ("contact:maria", "María", "García", "maria.garcia@acme.com", "account:acme", 0,
         "https://www.linkedin.com/in/mariagarcia", "2024-03-02T10:00:00Z"),
        ("contact:inactive", "Old", "Timer", "old.timer@acme.com", "account:acme-europe", 1, None,
         "2023-12-01T10:00:00Z"),
        ("contact:nandu", "Ñandú", "Pérez", "ñandú@ejemplo.es", None, 0, None, "2024-06-01T10:00:00Z"),
    ]
    for key, first, last, email, account, state, linkedin, modified in contacts:
        body = {
            "contactid": ids[key], "firstname": first, "lastname": last, "emailaddress1": email,
            "gd_linkedinurl": linkedin, "ownerid@odata.bind": owner("user:alice"),
            "statecode": state, "createdon": "2023-06-01T00:00:00Z", "modifiedon": modified,
        }
        if account:
            body["parentcustomerid_account@odata.bind"] = f"/accounts({ids[account]})"
        store.insert("contact", body)

    store.insert("lead", {"leadid": ids["lead:1"], "subject": "Interested in demo", "firstname": "Lena",
                          "lastname": "Lead", "companyname": "Northwind Traders",
                          "emailaddress1": "lena@northwind.example", "leadsourcecode": 8,
                          "modifiedon": "2024-05-05T10:00:00Z"})
    store.insert("lead", {"leadid": ids["lead:2"], "subject": "Pricing", "firstname": "Lars",
                          "lastname": "Ødegaard", "companyname": "Fjord AS",
                          "emailaddress1": "lars@fjord.example", "modifiedon": "2024-05-06T10:00:00Z"})
