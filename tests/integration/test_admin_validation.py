"""Mappings checked at save against live Dynamics metadata (the sandbox), and what editors read from it:
columns, users and a connection test — through the admin routes on the local stack."""

from __future__ import annotations

import uuid
from typing import Any

from devstack.dataverse_sandbox.seed import APP_USER_ID, SEED_IDS


def _admin(stack: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return stack.call(method, f"manage/workspaces/{stack.workspace_id}/{path}", body, headers=headers or {})


def _put(stack: Any, section: str, document: Any) -> Any:
    etag = _admin(stack, "GET", f"mappings/{section}").headers["ETag"]
    return _admin(stack, "PUT", f"mappings/{section}", document, headers={"If-Match": etag, "x-actor": "ana"})


def _by_path(problems: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["path"]: p for p in problems}


def test_a_save_with_errors_is_refused_listing_every_problem_and_saves_nothing(stack: Any) -> None:
    document = {
        "contact": {
            "fields": [
                {"source": "firstName", "column": "firstname"},
                {"source": "lastName", "column": "lastname"},
                {"source": "email", "column": "emailadress1"},
            ],
            "fixed": [{"column": "jobtitle", "value": "x" * 101}],
        },
        "company": {"fields": [{"source": "name", "column": "name"}, {"source": "x", "column": "gd_nope"}]},
    }
    response = _put(stack, "export", document)

    assert response.status_code == 422, response.json
    body = response.json
    assert body["error"] == "invalid_mapping" and "not saved" in body["message"]
    problems = _by_path(body["problems"])
    assert set(problems) == {"contact.fields[2].column", "contact.fixed[0].value", "company.fields[1].column"}
    assert all(p["section"] == "export" and p["severity"] == "error" and p["fix"] for p in problems.values())
    typo = problems["contact.fields[2].column"]
    assert "emailadress1" in typo["message"] and "'emailaddress1'" in typo["fix"]
    assert "/metadata/contact" in typo["fix"]
    too_long = problems["contact.fixed[0].value"]
    assert "101 characters" in too_long["message"] and "100" in too_long["fix"]
    assert "gd_nope" in problems["company.fields[1].column"]["message"]

    current = stack.services.store.get_section(stack.workspace_id, "export")
    assert current.version == 0  # nothing was saved
    assert _admin(stack, "GET", "mappings/export/history").json["entries"] == []


def test_types_choices_and_conflicts_are_errors(stack: Any) -> None:
    export = {
        "contact": {
            "fields": [{"source": "lastName", "column": "lastname"}, {"source": "x", "column": "fullname"}],
            "fixed": [{"column": "leadsourcecode", "value": "Billboard"}, {"column": "donotemail", "value": "maybe"}],
            "export_fields": [{"name": "country", "column": "gd_campaign_status", "options": ["Spain", "France"]}],
            "engagement": [{"column": "parentcustomerid", "value": "x"}],
        },
        "company": {"fields": [{"source": "name", "column": "name"}]},
    }
    problems = _by_path(_put(stack, "export", export).json["problems"])
    choice = problems["contact.fixed[0].value"]
    assert choice["severity"] == "error" and "Billboard" in choice["message"] and "Web" in choice["fix"]
    assert "true or false" in problems["contact.fixed[1].value"]["fix"]
    assert "calculated" in problems["contact.fields[1].column"]["message"]
    assert "lookup" in problems["contact.engagement[0].column"]["message"]
    conflict = problems["contact.export_fields[0].column"]
    assert conflict["severity"] == "error" and "campaign mapping" in conflict["message"]

    columns = {"sequence": "birthdate", "opens": "mobilephone", "clicks": "nope_column"}
    columns["engagement_status"] = "jobtitle"
    response = _put(stack, "campaign", {"enabled": True, "columns": columns})
    assert response.status_code == 422
    problems = _by_path(response.json["problems"])
    assert set(problems) == {"columns.sequence", "columns.clicks", "columns.engagement_status"}
    assert all(p["severity"] == "error" for p in problems.values())
    sequence = problems["columns.sequence"]
    assert "DateTime" in sequence["message"] and "text column" in sequence["fix"]
    # jobtitle is written by the (default) export mapping too
    assert "export mapping (contact.fields[3])" in problems["columns.engagement_status"]["message"]


def test_a_save_with_only_warnings_is_stored_and_returns_them(stack: Any) -> None:
    export = {
        "contact": {
            "fields": [{"source": "firstName", "column": "firstname"}],  # lastname (required) left unmapped
            "fixed": [{"column": "description", "value": "From Genesy"}],
        },
        "company": {"fields": [{"source": "name", "column": "name"}]},
    }
    response = _put(stack, "export", export)
    assert response.status_code == 200, response.json
    assert response.json["version"] == 1 and response.json["updated_by"] == "ana"
    assert response.headers["ETag"] == response.json["etag"]
    [warning] = response.json["warnings"]
    assert warning["severity"] == "warning" and warning["section"] == "export"
    assert warning["path"] == "contact.fields" and "lastname" in warning["message"] and warning["fix"]

    campaign = {"enabled": True, "columns": {"sequence": "address1_city", "engagement_status": "gd_campaign_status"}}
    response = _put(stack, "campaign", campaign)
    assert response.status_code == 200
    assert [(w["path"], w["severity"]) for w in response.json["warnings"]] == [("columns.sequence", "warning")]
    assert "80 characters" in response.json["warnings"][0]["message"]

    clean = _put(stack, "sync", {"contact": {"mode": "name_company"}})
    assert clean.status_code == 200 and clean.json["warnings"] == []


def test_users_and_sync_columns_are_checked(stack: Any) -> None:
    users = {
        "users": [
            {"genesy_user": "alice@genesy.example", "systemuser_id": SEED_IDS["user:alice"]},
            {"genesy_user": "dana@genesy.example", "systemuser_id": SEED_IDS["user:disabled"]},
        ],
        "default_owner_id": str(uuid.uuid4()),
    }
    response = _put(stack, "users", users)
    assert response.status_code == 422
    problems = _by_path(response.json["problems"])
    assert problems["default_owner_id"]["severity"] == "error" and "/users" in problems["default_owner_id"]["fix"]
    assert problems["users[1].systemuser_id"]["severity"] == "warning"
    assert "users[0].systemuser_id" not in problems

    sync = {
        "contact": {"mode": "name_company", "company_column": "parentcustomerid_account/nmae"},
        "contact_sync_back": {"title": "jobtitel"},
    }
    problems = _by_path(_put(stack, "sync", sync).json["problems"])
    assert set(problems) == {"contact.company_column", "contact_sync_back.title"}
    assert "account has no column 'nmae'" in problems["contact.company_column"]["message"]
    assert "'jobtitle'" in problems["contact_sync_back.title"]["fix"]


def test_dynamics_down_saves_with_a_not_checked_warning(stack: Any) -> None:
    stack.sandbox.config.error_rate_5xx = 1.0
    document = {"contact": {"fields": [{"source": "x", "column": "gd_not_checked"}]}}
    response = _put(stack, "export", document)
    stack.sandbox.config.error_rate_5xx = 0.0

    assert response.status_code == 200, response.json
    [warning] = response.json["warnings"]
    assert warning["severity"] == "warning" and "without checking" in warning["message"]
    assert "/validate" in warning["fix"]
    assert stack.services.store.get_section(stack.workspace_id, "export").version == 1

    # Once Dynamics answers, the check names what the unchecked save let through.
    report = _admin(stack, "POST", "validate").json
    assert report["valid"] is False
    [problem] = [p for p in report["problems"] if p["severity"] == "error"]
    assert (problem["section"], problem["path"]) == ("export", "contact.fields[0].column")
    assert set(problem) == {"section", "path", "severity", "message", "fix"}


def test_validate_checks_the_stored_mappings_in_the_same_format(stack: Any) -> None:
    assert _admin(stack, "POST", "validate").json == {
        "valid": True, "problems": [], "change_tracking": {"contact": True, "account": True}
    }
    stack.services.store.put_section(
        stack.workspace_id,
        "campaign",
        {"enabled": True, "columns": {"reply_analysis": "jobtitle"}},
        '"0.new"',
        "tests",
    )
    stack.services.store.put_section(
        stack.workspace_id,
        "export",
        {"contact": {"fields": [{"source": "lastName", "column": "lastname"}, {"source": "t", "column": "jobtitle"}]}},
        '"0.new"',
        "tests",
    )
    report = _admin(stack, "POST", "validate").json
    problems = _by_path(report["problems"])
    # Reported once, on the campaign side; a short column for an analysis is a warning there too.
    conflict = problems["columns.reply_analysis"]
    assert conflict["severity"] == "error" and "export mapping (contact.fields[1])" in conflict["message"]
    assert report["valid"] is False


def test_table_metadata_for_editors(stack: Any) -> None:
    response = _admin(stack, "GET", "metadata/contact")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["table"], body["entity_set_name"], body["primary_id"]) == ("contact", "contacts", "contactid")
    columns = {c["logical_name"]: c for c in body["columns"]}
    assert list(columns) == sorted(columns)
    lastname = columns["lastname"]
    assert lastname["display_name"] == "Last Name" and lastname["type"] == "String"
    assert lastname["max_length"] == 50 and lastname["required_level"] == "ApplicationRequired"
    assert lastname["required"] is True and lastname["writable_on_create"] and lastname["writable_on_update"]
    source = columns["leadsourcecode"]
    assert {"value": 8, "label": "Web"} in source["options"] and source["options"][0] == {
        "value": 1,
        "label": "Advertisement",
    }
    assert [o["label"] for o in columns["donotemail"]["options"]] == ["Yes", "No"]
    assert columns["fullname"]["writable_on_create"] is False

    lead = _admin(stack, "GET", "metadata/lead?refresh=true").json
    assert "companyname" in {c["logical_name"] for c in lead["columns"]}
    account = _admin(stack, "GET", "metadata/account").json
    assert {c["logical_name"]: c for c in account["columns"]}["industrycode"]["display_name"] == "Industry"

    unknown = _admin(stack, "GET", "metadata/opportunity")
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_table"
    assert _admin(stack, "GET", "metadata/contact?refresh=maybe").status_code == 400
    assert stack.call("GET", "manage/workspaces/nope/metadata/contact", headers={}).status_code == 404


def test_users_for_editors(stack: Any) -> None:
    response = _admin(stack, "GET", "users")
    assert response.status_code == 200
    users = response.json["users"]
    by_id = {u["id"]: u for u in users}
    assert by_id[SEED_IDS["user:alice"]] == {
        "id": SEED_IDS["user:alice"],
        "name": by_id[SEED_IDS["user:alice"]]["name"],
        "email": "alice.martin@contoso.onmicrosoft.com",
    }
    assert SEED_IDS["user:disabled"] not in by_id and APP_USER_ID not in by_id
    assert [u["name"].casefold() for u in users] == sorted(u["name"].casefold() for u in users)


def test_connection_test(stack: Any) -> None:
    response = _admin(stack, "POST", "connection-test")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["ok"] is True and body["error"] is None
    assert body["whoami"]["user_id"].lower() == APP_USER_ID.lower()
    tables = {t["table"]: t for t in body["tables"]}
    assert set(tables) == {"contact", "account", "systemuser", "task", "email"}
    assert all(t["read"] == "ok" for t in tables.values())
    assert tables["contact"]["write"] == "not_checked" and "first export" in tables["contact"]["message"]
    assert tables["systemuser"]["write"] == "not_needed"

    stack.sandbox.config.error_rate_5xx = 1.0
    down = _admin(stack, "POST", "connection-test", {"ignored": True})
    stack.sandbox.config.error_rate_5xx = 0.0
    assert down.status_code == 200
    assert down.json["ok"] is False and down.json["whoami"] is None and "WhoAmI" in down.json["error"]
    assert {t["read"] for t in down.json["tables"]} == {"not_checked"}


def test_the_report_says_which_tables_reconciliation_cannot_follow_by_change_tracking(stack: Any) -> None:
    stack.sandbox.config.change_tracking_disabled = {"account"}
    try:
        stack.services.workspace(stack.workspace_id).client.entity_metadata("account", refresh=True)
        report = _admin(stack, "POST", "validate").json
    finally:
        stack.sandbox.config.change_tracking_disabled = set()
    assert report["change_tracking"] == {"contact": True, "account": False}
    assert report["valid"] is True
    [problem] = report["problems"]
    assert problem["severity"] == "warning" and problem["section"] == "sync"
    assert "change tracking is off for account" in problem["message"] and "Track changes" in problem["fix"]
