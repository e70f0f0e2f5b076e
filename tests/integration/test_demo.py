"""The demo's scripted session (`make demo`) on a smaller dataset, on the test stack, through real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.demo import SessionDriver, SessionResult, features_of, render_table, run_session
from devstack.demo_data import build_dataset
from devstack.stack import DEMO_GENESY_OWNER_EMAIL, configure_demo_workspace


@pytest.fixture
def demo_session(stack: Any) -> Iterator[tuple[SessionResult, list[str], Any]]:
    configure_demo_workspace(stack.services.store, stack.workspace_id, stack.sandbox, actor="tests")
    base, stop = stack.host.serve_in_thread(0)
    lines: list[str] = []
    try:
        with httpx.Client(base_url=f"{base}/api", headers=stack.headers, timeout=60.0) as api:
            driver = SessionDriver(
                api=api,
                drain=stack.drain,
                sandbox=stack.sandbox,
                services=stack.services,
                workspace_id=stack.workspace_id,
                features=features_of(stack.host, stack.settings),
                out=lines.append,
            )
            result = run_session(driver, build_dataset(8, 12, owner_email=DEMO_GENESY_OWNER_EMAIL))
    finally:
        stop()
    yield result, lines, stack


def test_the_demo_session_does_everything_it_expects(demo_session: tuple[SessionResult, list[str], Any]) -> None:
    result, lines, _ = demo_session
    assert result.ok, "\n".join(f"{c.name}: {c.detail}" for c in result.failures)
    names = {c.name for c in result.checks}
    assert "the same person twice in one batch gets one Dynamics id" in names
    assert "contact sync finds gct-jose by linkedin" in names
    assert "POST /tasks for a contact not written yet is accepted (no 404)" in names
    assert "two LinkedIn forms of one person are one Dynamics contact" in names
    assert "a 121-character title is cut to the column's 100 and the contact is written" in names
    assert any(line.startswith("3. Contacts") for line in lines)


def test_the_demo_report_shows_what_landed(demo_session: tuple[SessionResult, list[str], Any]) -> None:
    result, _, stack = demo_session
    report = "\n".join(result.report)
    for title in ("Companies in Dynamics", "Contacts in Dynamics", "Sync health (ledger)"):
        assert title in report
    assert "matched (domain (ambiguous))" in report
    assert "merged (same person in the batch)" in report
    assert "Chloé O'Neil" in report  # the default owner, by name
    assert "Contoso Ltd" in report  # a matched account keeps its Dynamics name (if_empty)
    counts = result.health["counts"]
    # 12 contacts: 3 matched, 2 copies of one person → 8 new Dynamics contacts next to the 6 seeded ones;
    # the second copy's ledger row shares the first one's outcome (9 "created" rows, 8 records). Then
    # Inés, exported right before her task and e-mail (1 created), and again under another LinkedIn
    # form (her second externalId finds her: an alias, "updated").
    assert counts["contact"]["created"] == 10
    assert len(stack.rows("contact")) == 6 + 8 + 1
    assert "failed" not in counts.get("contact", {})
    emails = [str(r.get("emailaddress1") or "").lower() for r in stack.rows("contact")]
    assert emails.count("lucia.fernandez@iberdata.es") == 1


def test_the_demo_covers_tasks_activities_and_campaigns_when_the_app_serves_them(
    demo_session: tuple[SessionResult, list[str], Any],
) -> None:
    result, _, stack = demo_session
    features = features_of(stack.host, stack.settings)
    if "tasks" in features:
        assert len(result.task_ids) == 3
        assert "Tasks" in "\n".join(result.report)
    if "activities" in features:
        assert len(result.activity_ids) == 3
    if "campaign" in features:
        assert "Campaign values (contact columns)" in "\n".join(result.report)
    assert features == {"tasks", "activities", "campaign", "webhooks"}


def test_render_table_fits_and_marks_long_values() -> None:
    text = render_table("T", ["a", "b"], [["x" * 60, None], ["line\nbreak", 3]])
    lines = text.splitlines()
    assert lines[1] == "T" and lines[2].startswith("a")
    assert "…" in lines[4] and len(lines[4].split("  ")[0]) == 48
    assert "line ⏎ break" in lines[5]


def test_build_dataset_is_deterministic_and_holds_the_awkward_cases() -> None:
    one, two = build_dataset(10, 20, seed=5), build_dataset(10, 20, seed=5)
    assert one.contacts == two.contacts and one.companies == two.companies
    assert len(one.contacts) == 20 and len(one.companies) == 10
    assert len({c["externalId"] for c in one.contacts}) == 20
    assert any("email" not in c for c in one.contacts)
    first, second = (one.contact(i) for i in one.duplicate_pair)
    assert first["email"].lower() == second["email"].lower()
    assert any("'" in c["lastName"] for c in one.contacts)
    with pytest.raises(ValueError):
        build_dataset(3, 5)
