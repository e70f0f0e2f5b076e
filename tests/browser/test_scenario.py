"""The admin's afternoon in Chromium: a workspace, the four steps, a preview, an export by Genesy, a failure
in sync health, the fix and the retry — and what the Dataverse sandbox holds at the end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.dataverse_sandbox.seed import SEED_IDS
from tests.browser.conftest import Console

pytestmark = pytest.mark.integration


def _create_workspace(console: Console) -> tuple[str, str]:
    page = console.open("workspaces")
    page.get_by_label("Name").fill("Scenario workspace")
    page.get_by_label("Dynamics environment URL").fill(console.stack.sandbox.url)
    page.get_by_role("button", name="Create workspace").click()
    key = page.locator("#issued-key").input_value()
    assert key.startswith("gdk_")
    assert "shown once" in page.locator("#created").inner_text()
    page.get_by_role("link", name="Open the workspace Scenario workspace").click()
    page.wait_for_url("**/workspaces/*")
    return page.url.rstrip("/").rsplit("/", 1)[1], key


def _input_sync(console: Console, ws: str) -> None:
    page = console.open(f"workspaces/{ws}/sync")
    page.locator("#sync-contact-mode-custom").check()
    page.get_by_role("button", name="Add a contact rule (OR)").click()
    page.get_by_label("Genesy field (contact rule new, condition 1)").fill("email")
    page.get_by_label("Dynamics column (contact rule new, condition 1)").fill("emailaddress1")
    page.get_by_label("Compare as (contact rule new, condition 1)").select_option("email")
    assert "Saved: version 1" in console.saved(page.get_by_role("button", name="Save"))
    console.check_page("step1-input-sync")


def _export(console: Console, ws: str, last_name_column: str) -> str:
    page = console.open(f"workspaces/{ws}/export")
    page.get_by_label("Dynamics column (contact field map 2)").fill(last_name_column)
    if not page.get_by_label("Dynamics column (contact fixed field 1)").count():
        page.get_by_role("button", name="Add a row to fixed fields").first.click()
        page.get_by_label("Dynamics column (new contact fixed field)").fill("leadsourcecode")
        page.get_by_label("Value (new contact fixed field)").fill("Not a source")
        page.get_by_label("Write policy (new contact fixed field)").select_option("on_create")
        page.get_by_role("button", name="Save").click()
        # Refused: the problem is shown next to the value, the summary lists it, nothing is saved.
        problem = page.locator("input[aria-invalid=true] + .problem")
        problem.wait_for()
        assert "Not a source" in problem.inner_text()
        assert "Not saved" in page.locator(".form-problems").inner_text()
        page.get_by_label("Value (new contact fixed field)").fill("Web")
    return console.saved(page.get_by_role("button", name="Save"))


def _campaign(console: Console, ws: str) -> None:
    page = console.open(f"workspaces/{ws}/campaign")
    opens = page.get_by_label("Dynamics column for Opens")
    opens.fill("jobtitle")  # the export writes it already
    page.get_by_role("button", name="Save").click()
    page.locator("input[aria-invalid=true] + .problem").wait_for()
    assert "jobtitle" in page.locator(".form-problems").inner_text()
    opens.fill("gd_campaign_opens")
    page.get_by_label("Dynamics column for Click analysis").fill("")
    assert "Saved: version 1" in console.saved(page.get_by_role("button", name="Save"))
    console.check_page("step3-campaign")


def _users(console: Console, ws: str) -> None:
    page = console.open(f"workspaces/{ws}/users")
    page.get_by_label("Default owner").select_option(label="Alice Martin (alice.martin@contoso.onmicrosoft.com)")
    page.get_by_role("button", name="Add a user").click()
    page.get_by_label("New Genesy user").fill("bruno@sales.example")
    page.get_by_label("Dynamics user for new user").select_option(
        label="Bruno Díaz (bruno.diaz@contoso.onmicrosoft.com)"
    )
    assert "Saved: version 1" in console.saved(page.get_by_role("button", name="Save"))
    console.check_page("step4-users")


def _preview(console: Console, ws: str) -> None:
    page = console.open(f"workspaces/{ws}/preview")
    page.get_by_role("button", name="Preview").click()
    page.locator(".preview-result").wait_for()
    assert "Matched an existing record by rule 1" in page.locator(".decision").inner_text()
    assert page.get_by_role("table", name="Before and after, per column").is_visible()
    console.check_page("preview", show=".preview-result")


def _export_from_genesy(console: Console, key: str) -> None:
    contacts = [
        {"externalId": "maria", "email": "MARIA.GARCIA@acme.com", "lastName": "García", "title": "VP Sales"},
        {
            "externalId": "nina",
            "email": "nina.newman@example.com",
            "firstName": "Nina",
            "lastName": "Newman",
            "ownerEmail": "bruno@sales.example",
        },
    ]
    reply = httpx.post(f"{console.url}/api/contacts", json={"contacts": contacts}, headers={"X-API-Key": key})
    assert reply.status_code == 200, reply.text
    console.stack.drain()


def _owners_seen_on_the_users_page(console: Console, ws: str, key: str) -> None:
    """Owners Genesy names are listed on step 4: auto-matched by e-mail, or unmapped and highlighted."""
    contacts = [
        {"externalId": "o1", "lastName": "One", "ownerEmail": "chloe.oneil@contoso.onmicrosoft.com"},
        {"externalId": "o2", "lastName": "Two", "ownerEmail": "stranger@sales.example"},
    ]
    reply = httpx.post(f"{console.url}/api/contacts", json={"contacts": contacts}, headers={"X-API-Key": key})
    assert reply.status_code == 200, reply.text
    console.stack.drain()
    page = console.open(f"workspaces/{ws}/users")
    unmapped = page.locator("tr.unmapped")
    assert unmapped.count() == 1 and "Unmapped" in unmapped.inner_text()
    assert unmapped.locator("input").input_value() == "stranger@sales.example"
    assert "Auto-matched by e-mail to Chloé O'Neil" in page.locator("main").inner_text()
    console.check_page("step4-users", show="tr.unmapped")


def _by_email(console: Console) -> dict[str, dict[str, Any]]:
    return {str(r.get("emailaddress1")).lower(): r for r in console.stack.rows("contact")}


def test_an_admin_configures_previews_sees_a_failure_fixes_it_and_retries(console: Console) -> None:
    ws, key = _create_workspace(console)
    page = console.page
    page.get_by_role("button", name="Test the connection").click()
    result = page.locator("#conn-result .banner")
    result.wait_for()
    assert "Connected" in result.inner_text()
    console.check_page("workspace-connection", show="#conn-result")

    _input_sync(console, ws)
    # The admin's mistake: last names go to the city column. Dynamics requires a last name on create.
    saved = _export(console, ws, "address1_city")
    assert "Saved: version 1" in saved and "lastname" in saved  # saved, with the warning that nothing fills it
    console.check_page("step2-export")
    _campaign(console, ws)
    _users(console, ws)
    _preview(console, ws)

    console.stack.sandbox.config.enforce_application_required = True
    _export_from_genesy(console, key)

    page = console.open(f"workspaces/{ws}/health")
    attention = page.locator("#attention")
    assert "0x80040200" in attention.inner_text() and "Dynamics requires the column" in attention.inner_text()
    console.check_page("sync-health-failure", show="#attention")

    assert "Saved: version 2" in _export(console, ws, "lastname")
    page = console.open(f"workspaces/{ws}/health")
    assert "1 record(s) queued again" in console.saved(page.get_by_role("button", name="Retry contact nina"))
    console.stack.drain()
    page = console.open(f"workspaces/{ws}/health")
    assert "None: every record was written." in page.locator("main").inner_text()
    console.check_page("sync-health")

    _owners_seen_on_the_users_page(console, ws, key)

    rows = _by_email(console)
    nina, maria = rows["nina.newman@example.com"], rows["maria.garcia@acme.com"]
    assert (nina["firstname"], nina["lastname"], nina.get("address1_city")) == ("Nina", "Newman", None)
    assert nina["leadsourcecode"] == 8  # "Web", by its label
    assert str(nina.get("_ownerid_value") or nina["ownerid"]).endswith(SEED_IDS["user:bruno"]), nina[
        "ownerid"
    ]  # the user mapping set on the page
    assert maria["jobtitle"] == "VP Sales" and maria["lastname"] == "García"  # matched by the custom e-mail rule
    assert maria.get("address1_city") == "García"  # written (empty column) while the mistaken mapping was live
    assert len([r for r in console.stack.rows("contact") if r.get("emailaddress1") == "nina.newman@example.com"]) == 1
