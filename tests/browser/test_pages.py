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
