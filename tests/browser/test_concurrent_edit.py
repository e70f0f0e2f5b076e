"""Two admins on the same step: the second save answers "changed by someone else" with a reload, and the
history restores an earlier version — both through the page, in two browser contexts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Console, new_console

pytestmark = pytest.mark.integration


def test_a_concurrent_change_is_refused_with_reload_and_history_restores(
    console: Console, app_url: str, browser: Any
) -> None:
    other, context = new_console(console.stack, app_url, browser)
    try:
        sync = console.workspace_path + "/sync"
        mine, theirs = console.open(sync), other.open(sync)

        theirs.get_by_label("Any extension: acme.com also matches acme.es").check()
        assert "Saved: version 1" in other.saved(theirs.get_by_role("button", name="Save"))

        mine.locator("#sync-company-mode-domain").check()
        mine.get_by_role("button", name="Save").click()
        conflict = mine.locator(".conflict")
        conflict.wait_for()
        assert "changed by someone else" in conflict.inner_text()
        console.check_page("concurrent-edit", show=".conflict")
        stored = console.stack.services.store.get_section(console.stack.workspace_id, "sync")
        assert stored.version == 1 and stored.document.company.mode == "domain_or_name"

        conflict.get_by_role("button", name="Reload").click()
        mine.wait_for_load_state()
        assert mine.get_by_label("Any extension: acme.com also matches acme.es").is_checked()
        mine.locator("#sync-company-mode-domain").check()
        assert "Saved: version 2" in console.saved(mine.get_by_role("button", name="Save"))

        assert "Saved: version 3" in console.saved(mine.get_by_role("button", name="Restore version 1"))
        assert mine.locator("#sync-company-mode-domain-or-name").is_checked()
        history = mine.get_by_role("table", name="Saved versions of the sync mapping")
        assert history.locator("tbody tr").count() == 3
    finally:
        context.close()
