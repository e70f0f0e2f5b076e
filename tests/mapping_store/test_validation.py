"""Every section's validation through `put_section`: valid documents round-trip, invalid ones are a
400 whose details name the exact field path."""

from __future__ import annotations

from typing import Any

import pytest

from mapping_store.store import DEFAULT_ETAG, MappingStore
from shared.domain.mappings import Workspace
from shared.platform.errors import BadRequest

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"

VALID: list[tuple[str, dict[str, Any]]] = [
    ("sync", {}),
    ("sync", {"contact": {"mode": "name_company"}, "company": {"mode": "domain", "any_domain_extension": True}}),
    (
        "sync",
        {
            "contact": {
                "mode": "custom",
                "rules": [
                    {"all_of": [{"field": "email", "column": "emailaddress1", "normaliser": "email"}]},
                    {
                        "all_of": [
                            {"field": "firstName", "column": "firstname", "normaliser": "name"},
                            {"field": "company", "column": "parentcustomerid_account/name", "normaliser": "name"},
                        ]
                    },
                ],
            },
            "contact_sync_back": {"jobTitle": "jobtitle", "ownerName": "owneridname"},
        },
    ),
    (
        "export",
        {
            "contact": {
                "fields": [{"source": "firstName", "column": "firstname", "policy": "if_empty"}],
                "fixed": [{"column": "leadsourcecode", "value": 3}],
                "export_fields": [{"name": "stage", "column": "gd_stage", "options": ["a", "b"], "default": "b"}],
                "engagement": [{"column": "gd_engaged", "value": True, "policy": "on_create"}],
            },
            "company": {"fields": [{"source": "name", "column": "name"}]},
        },
    ),
    ("campaign", {"enabled": True, "columns": {"opens": "gd_opens", "reply_analysis": "gd_replies"}}),
    ("campaign", {"enabled": False}),
    (
        "users",
        {
            "identities": [{"identity": "ana@acme.com", "systemuser_id": GUID}],
            "users": [{"genesy_user": "u-1", "systemuser_id": GUID.upper()}],
            "default_owner_id": GUID,
        },
    ),
]


@pytest.mark.parametrize(("section", "document"), VALID)
def test_valid_documents_round_trip(
    store: MappingStore, workspace: tuple[Workspace, str], section: str, document: dict[str, Any]
) -> None:
    ws, _ = workspace
    saved = store.put_section(ws.id, section, document, DEFAULT_ETAG, actor="tester")
    again = store.get_section(ws.id, section)
    assert again.version == saved.version == 1
    assert again.etag == saved.etag
    assert again.document == saved.document
    expected = type(saved.document).model_validate(document).model_dump(mode="json")
    assert again.document.model_dump(mode="json") == expected


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # sync
    ("sync", {"contact": {"mode": "fuzzy"}}, "contact.mode"),
    ("sync", {"company": {"mode": "email"}}, "company.mode"),
    ("sync", {"contact": {"mode": "custom", "rules": [{"all_of": []}]}}, "contact.rules[0].all_of"),
    ("sync", {"contact": {"mode": "custom"}}, "contact.rules"),
    ("sync", {"company": {"mode": "custom", "rules": []}}, "company.rules"),
    (
        "sync",
        {"company": {"mode": "domain", "rules": [{"all_of": [{"field": "domain", "column": "websiteurl"}]}]}},
        "company.rules",
    ),
    ("sync", {"contact": {"email_column": "EmailAddress1"}}, "contact.email_column"),
    (
        "sync",
        {"contact": {"mode": "custom", "rules": [{"all_of": [{"field": "email", "column": "email address"}]}]}},
        "contact.rules[0].all_of[0].column",
    ),
    ("sync", {"contact_sync_back": {"a": "jobtitle", "b": "jobtitle"}}, "contact_sync_back.b"),
    ("sync", {"company_sync_back": {"size": "Number-Of-Employees"}}, "company_sync_back.size"),
    ("sync", {"surprise": 1}, "surprise"),
    # export
    (
        "export",
        {
            "contact": {
                "fields": [{"source": "firstName", "column": "firstname"}, {"source": "x", "column": "firstname"}]
            }
        },
        "contact.fields[1].column",
    ),
    (
        "export",
        {
            "company": {
                "fields": [{"source": "name", "column": "name"}],
                "fixed": [{"column": "name", "value": "ACME"}],
            }
        },
        "company.fixed[0].column",
    ),
    ("export", {"contact": {"fields": [{"source": "firstName", "column": "first name"}]}}, "contact.fields[0].column"),
    ("export", {"contact": {"fields": [{"source": "firstName", "column": "1abc"}]}}, "contact.fields[0].column"),
    ("export", {"contact": {"fields": [{"source": "first-name", "column": "firstname"}]}}, "contact.fields[0].source"),
    (
        "export",
        {"contact": {"fields": [{"source": "firstName", "column": "firstname", "policy": "sometimes"}]}},
        "contact.fields[0].policy",
    ),
    ("export", {"contact": {"engagement": [{"column": "gd_engaged", "value": ""}]}}, "contact.engagement[0].value"),
    ("export", {"contact": {"engagement": [{"column": "gd_engaged", "value": None}]}}, "contact.engagement[0].value"),
    ("export", {"contact": {"engagement": [{"column": "gd_engaged"}]}}, "contact.engagement[0].value"),
    (
        "export",
        {
            "contact": {
                "export_fields": [{"name": "stage", "column": "gd_stage", "options": ["a", "b"], "default": "c"}]
            }
        },
        "contact.export_fields[0].default",
    ),
    (
        "export",
        {
            "contact": {
                "export_fields": [
                    {"name": "stage", "column": "gd_stage"},
                    {"name": "stage", "column": "gd_stage2"},
                ]
            }
        },
        "contact.export_fields[1].name",
    ),
    # campaign
    ("campaign", {"columns": {"bounces": "gd_bounces"}}, "columns.bounces"),
    ("campaign", {"columns": {"opens": "gd_x", "clicks": "gd_x"}}, "columns.clicks"),
    ("campaign", {"columns": {"opens": "GD Opens"}}, "columns.opens"),
    ("campaign", {"enabled": "sometimes"}, "enabled"),
    # users
    ("users", {"users": [{"genesy_user": "u-1", "systemuser_id": "not-a-guid"}]}, "users[0].systemuser_id"),
    (
        "users",
        {"identities": [{"identity": "a@b.c", "systemuser_id": GUID[:-1] + "g"}]},
        "identities[0].systemuser_id",
    ),
    ("users", {"default_owner_id": "{" + GUID + "}"}, "default_owner_id"),
    (
        "users",
        {
            "identities": [
                {"identity": "ana@acme.com", "systemuser_id": GUID},
                {"identity": "ANA@acme.com", "systemuser_id": GUID},
            ]
        },
        "identities[1]",
    ),
    ("users", {"users": [{"genesy_user": "  ", "systemuser_id": GUID}]}, "users[0].genesy_user"),
]


@pytest.mark.parametrize(("section", "document", "field"), INVALID)
def test_invalid_documents_name_the_field(
    store: MappingStore, workspace: tuple[Workspace, str], section: str, document: dict[str, Any], field: str
) -> None:
    ws, _ = workspace
    with pytest.raises(BadRequest) as caught:
        store.put_section(ws.id, section, document, DEFAULT_ETAG, actor="tester")
    error = caught.value
    assert error.status == 400
    assert error.code == "invalid_mapping"
    assert error.details is not None
    assert field in [d["field"] for d in error.details], error.details
    assert all(d["message"] and not d["message"].startswith("Value error") for d in error.details)
    assert field in error.message
    # Nothing was stored.
    assert store.get_section(ws.id, section).version == 0


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_a_document_must_be_an_object(store: MappingStore, workspace: tuple[Workspace, str], document: Any) -> None:
    ws, _ = workspace
    with pytest.raises(BadRequest) as caught:
        store.put_section(ws.id, "sync", document, DEFAULT_ETAG)
    assert caught.value.details == [{"field": "body", "message": "must be a JSON object"}]
