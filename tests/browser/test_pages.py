"""Every console page in Chromium: it renders, axe-core finds no violation, it fits 1280 px and 400 px."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Console

pytestmark = pytest.mark.integration

PAGES = ("", "/sync", "/export", "/campaign", "/users", "/preview", "/health")


def test_every_page_is_accessible_at_both_widths(console: Console) -> None:
    console.open("workspaces")
    assert console.page.get_by_role("heading", name="Workspaces", exact=True).is_visible()
    assert "Development admin" in console.page.locator("header").inner_text()
    console.check_page("workspaces")
    names = {"": "connection", "/health": "sync-health"}
    for suffix in PAGES:
        console.open(console.workspace_path + suffix)
        assert console.page.locator("nav a[aria-current=page]").count() == 1
        console.check_page(names.get(suffix, suffix.strip("/")))
    assert len(console.checked) == len(PAGES) + 1


def test_a_page_on_another_origin_cannot_make_a_change(console: Console) -> None:
    """A request forged by another site's page (here: http://localhost vs the console on http://127.0.0.1)
    reaches the app without the console's cookie and with `Sec-Fetch-Site: cross-site`: refused, no effect."""
    keys = len(console.stack.services.store.get_workspace(console.stack.workspace_id).keys)
    console.open("workspaces")  # the admin's own tab holds the console's cookie
    evil = console.page.context.new_page()
    evil.goto(console.url.replace("127.0.0.1", "localhost") + "/api/console/static/console.css")
    target = f"{console.url}/api/console/api/workspaces/{console.stack.workspace_id}/keys"
    with evil.expect_response(target) as seen:
        status = evil.evaluate(
            """async (url) => {
                const reply = await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                                                headers: {"Content-Type": "text/plain"}, body: "{}"});
                return reply.type;
            }""",
            target,
        )
    assert status == "opaque" and seen.value.status == 403  # the browser sent it (a simple request)...
    assert len(console.stack.services.store.get_workspace(console.stack.workspace_id).keys) == keys  # ...refused


def test_target_table_reconciliation_and_replay_from_the_pages(console: Console) -> None:
    page = console.open(console.workspace_path)
    page.get_by_label("Leads").check()
    assert "Saved." in console.saved(page.get_by_role("button", name="Save"))
    assert console.stack.services.store.get_workspace(console.stack.workspace_id).contact_entity == "lead"
    assert page.get_by_label("Leads").is_checked()

    page = console.open(console.workspace_path + "/health")
    assert "Reconciliation ran" in console.saved(page.get_by_role("button", name="Run reconciliation now"))
    shown = page.locator("main").inner_text()
    assert "by Development admin" in shown
    assert "lead (change tracking): 0 changed, 0 merged, 0 deleted" in shown
    report = console.stack.services.reconcile_state.reports(console.stack.workspace_id, 1)[0]
    assert f"Dataverse requests: {report['dataverse_requests']} of a budget of 300" in shown
    queue = console.stack.settings.writes_queue
    text = console.saved(page.get_by_role("button", name=f"Replay dead letters of {queue}"))
    assert f"0 dead letter(s) replayed on {queue}" in text


def test_export_fields_engagement_fields_and_a_short_campaign_column_through_the_pages(console: Console) -> None:
    """The controls the scenario does not touch: an export field with options and a default, an engagement
    field, and a campaign value mapped to a column too short for it (saved, with the truncation warning)."""
    store, ws = console.stack.services.store, console.stack.workspace_id
    page = console.open(console.workspace_path + "/export")
    page.get_by_role("button", name="Add a row to export fields").first.click()
    page.get_by_label("Name Genesy sends (new contact export field)").fill("Market")
    page.get_by_label("Dynamics column (new contact export field)").fill("address1_country")
    page.get_by_label("Options (new contact export field)").fill("Spain, Ireland")
    page.get_by_label("Default (new contact export field)").fill("Spain")
    page.get_by_role("button", name="Add a row to engagement fields").first.click()
    page.get_by_label("Dynamics column (new contact engagement field)").fill("description")
    page.get_by_label("Value (new contact engagement field)").fill("Engaged through Genesy")
    assert "Saved" in console.saved(page.get_by_role("button", name="Save"))
    contact = store.get_section(ws, "export").document.model_dump(mode="json")["contact"]
    [market] = [f for f in contact["export_fields"] if f["name"] == "Market"]
    assert (market["column"], market["options"], market["default"]) == ("address1_country", ["Spain", "Ireland"],
                                                                        "Spain")
    assert {"column": "description", "value": "Engaged through Genesy"}.items() <= next(
        e for e in contact["engagement"] if e["column"] == "description"
    ).items()

    page = console.open(console.workspace_path + "/campaign")
    page.get_by_label("Dynamics column for Reply analysis").fill("gd_campaign_opens")
    page.get_by_label("Dynamics column for Opens").fill("")
    flash = console.saved(page.get_by_role("button", name="Save"))
    assert "Saved" in flash and "will be cut" in flash
    row = page.locator("tr", has=page.get_by_label("Dynamics column for Reply analysis"))
    assert "100" in row.inner_text() and "Warning" in row.inner_text() and "will be cut" in row.inner_text()
    assert store.get_section(ws, "campaign").document.model_dump(mode="json")["columns"]["reply_analysis"] == (
        "gd_campaign_opens"
    )


def test_a_custom_company_rule_with_two_conditions_through_the_page(console: Console) -> None:
    """The company identifier's custom rules (OR of ANDs), built with the keyboard-labelled controls, stored as
    the sync mapping's company rules; each builder's controls name their own kind."""
    store, ws = console.stack.services.store, console.stack.workspace_id
    page = console.open(console.workspace_path + "/sync")
    page.locator("#sync-company-mode-custom").check()
    page.get_by_role("button", name="Add a company rule (OR)").click()
    page.get_by_label("Genesy field (company rule new, condition 1)").fill("name")
    page.get_by_label("Dynamics column (company rule new, condition 1)").fill("name")
    page.get_by_label("Compare as (company rule new, condition 1)").select_option("name")
    page.get_by_role("button", name="Add a condition to company rule new (AND)").click()
    page.get_by_label("Genesy field (new company condition)").fill("website")
    page.get_by_label("Dynamics column (new company condition)").fill("websiteurl")
    page.get_by_label("Compare as (new company condition)").select_option("domain")
    assert "Saved" in console.saved(page.get_by_role("button", name="Save"))
    company = store.get_section(ws, "sync").document.model_dump(mode="json")["company"]
    assert company["mode"] == "custom"
    [rule] = company["rules"]
    assert [(c["field"], c["column"], c["normaliser"]) for c in rule["all_of"]] == [
        ("name", "name", "name"), ("website", "websiteurl", "domain")
    ]
    # Reloaded, the rule is numbered and its controls say whose rule it is.
    assert page.get_by_label("Dynamics column (company rule 1, condition 2)").input_value() == "websiteurl"
    assert page.get_by_role("button", name="Add a condition to company rule 1 (AND)").count() == 1
