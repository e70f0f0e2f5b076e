"""The console in a real browser: Debian's Chromium driven by Playwright for Python, against the local stack
served over HTTP (the session's functions host behind uvicorn), signed in as the development admin.

Without `/usr/bin/chromium` every test here is skipped with the reason, and `tests/conftest.py` prints a
loud line at the end of the run. Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".local" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 400, "height": 800}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: browser tests skipped (apt-get install chromium)")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The stack with the console on, signing in the development admin (loopback only)."""
    return {**settings_env, "CONSOLE_AUTH": "development"}


@pytest.fixture(scope="session")
def app_url(function_host: Any) -> Iterator[str]:
    base, stop = function_host.serve_in_thread(0)
    yield base
    stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Console:
    """One admin's browser tab on the console, with the checks every page gets."""

    stack: Any
    url: str
    page: Any
    checked: list[str] = field(default_factory=list)

    @property
    def workspace_path(self) -> str:
        return f"workspaces/{self.stack.workspace_id}"

    def open(self, path: str = "") -> Any:
        response = self.page.goto(f"{self.url}/api/console/{path}".rstrip("/"))
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        return self.page

    def saved(self, button: Any) -> str:
        """Click `button` (a change that reloads the page when it succeeds); the flash the page then shows."""
        with self.page.expect_navigation():
            button.click()
        flash = self.page.locator("#flash.banner")
        flash.wait_for()
        return str(flash.inner_text())

    def check_page(self, name: str, show: str | None = None) -> None:
        """axe-core finds no violation; screenshots at 1280 px and 400 px (of the top of the page, or of the
        element `show` selects); nothing wider than 400 px but tables, which scroll."""
        violations = axe_violations(self.page)
        assert not violations, f"{name}: " + json.dumps(violations, indent=1)[:3000]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")
        if show is not None:
            self.page.locator(show).first.scroll_into_view_if_needed()
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        self.page.set_viewport_size(NARROW)
        overflow = self.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= NARROW["width"] + 1, f"{name}: the page is {overflow}px wide at 400px"
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-narrow.png"))
        self.page.set_viewport_size(WIDE)
        self.checked.append(name)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result]


def new_console(stack: Any, url: str, browser: Any) -> tuple[Console, Any]:
    context = browser.new_context(viewport=WIDE)
    return Console(stack, url, context.new_page()), context


@pytest.fixture
def console(stack: Any, app_url: str, browser: Any) -> Iterator[Console]:
    tab, context = new_console(stack, app_url, browser)
    try:
        yield tab
    finally:
        context.close()
