"""The console's pages, rendered on the server from the use cases' data.

Conventions the page script (`static/console.js`) relies on, so a field is added in one place — here:

- an editable mapping is a `<form data-url data-method data-etag>` holding the stored document in a
  `<script type="application/json" data-base>`; every control carries `data-path`, the path of its value
  in the document (`contact.mode`, `columns.sequence`); the script overwrites those paths in the stored
  document and sends the whole document back, so what a page does not show is kept;
- a list is a `data-list="<path>"` element whose `data-row` children become its items (paths inside a
  row are relative to it); a row whose `data-key` controls are all empty is left out; a
  `data-when="<path>=<value>"` list is sent empty unless that control has that value;
- `data-type` converts a value: `bool` (checkbox), `int`, `list` (comma-separated); an empty control
  is left out of the document (`data-empty="null"` sends null instead);
- buttons with `data-post` send `data-body` (plus the checked `data-collect` boxes) and reload.

Validation problems come back with the same paths, so the script puts each next to its control.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.console_ui.html import Html, el, join
from mapping_store.store import HistoryEntry
from shared.domain.genesy_models import CompanyIn, ContactIn
from shared.domain.mappings import CAMPAIGN_VALUES, Workspace, WritePolicy
from shared.platform.console_auth import ConsolePrincipal
from shared.services.console import MappingPage, SyncHealthPage
from shared.services.metadata import ColumnInfo, UserInfo
from shared.services.preview import PreviewRecordDiff
from shared.services.validation import MappingProblem

__all__ = [
    "Chrome",
    "campaign_page",
    "error_page",
    "export_page",
    "health_page",
    "preview_page",
    "sync_page",
    "users_page",
    "workspace_page",
    "workspaces_page",
]

ROOT = "/api/console"
API = f"{ROOT}/api"

STEPS: tuple[tuple[str, str], ...] = (
    ("", "Connection"),
    ("sync", "1 · Input / sync"),
    ("export", "2 · Export"),
    ("campaign", "3 · Campaign"),
    ("users", "4 · Users"),
    ("preview", "Preview"),
    ("health", "Sync health"),
)
POLICIES = {
    WritePolicy.OVERWRITE.value: "Overwrite",
    WritePolicy.IF_EMPTY.value: "Only if empty",
    WritePolicy.ON_CREATE.value: "Only on create",
}
NORMALISERS = {
    "exact": "Exact (trimmed, any case)",
    "email": "E-mail",
    "linkedin": "LinkedIn profile",
    "domain": "Domain",
    "name": "Name (accents, punctuation, suffixes ignored)",
    "phone": "Phone",
}
CONTACT_MODES = {
    "name_company": "First name + last name + company",
    "linkedin_or_name_company": "LinkedIn, OR first name + last name + company",
    "email_or_linkedin_or_name_company": "E-mail, OR LinkedIn, OR first name + last name + company",
    "custom": "Custom rules",
}
COMPANY_MODES = {"domain": "Domain", "domain_or_name": "Domain, OR name", "custom": "Custom rules"}
CAMPAIGN_LABELS = {
    "sequence": "Sequence details (campaign name and steps)",
    "engagement_status": "Engagement status (current step)",
    "opens": "Opens",
    "clicks": "Clicks",
    "open_analysis": "Open analysis",
    "click_analysis": "Click analysis",
    "reply_analysis": "Reply analysis",
}
GENESY_FIELDS = {
    "contact": sorted({*ContactIn.model_fields, "ownerEmail"} - {"campaigns"}),
    "company": sorted({*CompanyIn.model_fields, "ownerEmail"} - {"campaigns"}),
}


@dataclass(frozen=True)
class Chrome:
    """What every page shows around its content: who is signed in, the page's token, where we are."""

    principal: ConsolePrincipal
    csrf_token: str
    workspace: Workspace | None = None
    active: str | None = None


# ---------------------------------------------------------------------------------------------
# The frame


def _header(chrome: Chrome) -> Html:
    who = chrome.principal
    badge = (
        el("p", "Development admin — signed in locally without Entra ID (CONSOLE_AUTH=development)", class_="dev")
        if who.development
        else None
    )
    return el(
        "header",
        el("a", "Skip to content", href="#main", class_="skip"),
        el(
            "div",
            el("a", "genesy-dynamics console", href=f"{ROOT}/workspaces", class_="brand"),
            el("span", "Signed in as ", el("strong", who.name), class_="who"),
            class_="bar",
        ),
        badge,
    )


def _nav(chrome: Chrome) -> Html | None:
    ws = chrome.workspace
    if ws is None:
        return None
    items = [el("li", el("a", "All workspaces", href=f"{ROOT}/workspaces"))]
    for slug, label in STEPS:
        href = f"{ROOT}/workspaces/{ws.id}" + (f"/{slug}" if slug else "")
        current = "page" if slug == (chrome.active or "") else None
        items.append(el("li", el("a", label, href=href, aria_current=current)))
    return el("nav", el("ul", *items), aria_label=f"Workspace {ws.name}")


def layout(title: str, chrome: Chrome, *content: Any) -> str:
    heading = f"{title} — {chrome.workspace.name}" if chrome.workspace else title
    document = el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("meta", name="csrf-token", content=chrome.csrf_token),
            el("title", f"{heading} · genesy-dynamics"),
            el("link", rel="stylesheet", href=f"{ROOT}/static/console.css"),
            el("script", src=f"{ROOT}/static/console.js", defer=True),
        ),
        el(
            "body",
            _header(chrome),
            _nav(chrome),
            el("main", el("h1", heading), el("div", id="flash", role="status"), *content, id="main", tabindex="-1"),
        ),
        lang="en",
    )
    return "<!doctype html>\n" + document


def error_page(status: int, message: str) -> str:
    body = el(
        "body",
        el(
            "main",
            el("h1", "Access refused" if status in (401, 403) else "Not found"),
            el("p", message),
            el(
                "p",
                el(
                    "a", "Sign in with Microsoft Entra ID", href="/.auth/login/aad?post_login_redirect_uri=/api/console"
                ),
            )
            if status == 401
            else None,
            id="main",
        ),
    )
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("title", "genesy-dynamics console"),
        el("link", rel="stylesheet", href=f"{ROOT}/static/console.css"),
    )
    return "<!doctype html>\n" + el("html", head, body, lang="en")


# ---------------------------------------------------------------------------------------------
# Building blocks


def _id(*parts: Any) -> str:
    return "-".join(str(p).replace(".", "-").replace("_", "-") for p in parts)


def field(label: str, control: Html, control_id: str, hint: str | None = None) -> Html:
    hint_el = el("p", hint, class_="hint", id=f"{control_id}-hint") if hint else None
    return el("div", el("label", label, for_=control_id), control, hint_el, class_="field")


def text_input(path: str, value: Any, *, control_id: str | None = None, label: str | None = None, **attrs: Any) -> Html:
    return el(
        "input",
        type="text",
        value="" if value is None else value,
        data_path=path,
        id=control_id,
        aria_label=label,
        **attrs,
    )


def select(path: str, options: Mapping[str, str], current: Any, *, label: str | None = None, **attrs: Any) -> Html:
    opts = [el("option", text, value=value, selected=str(current) == value) for value, text in options.items()]
    return el("select", *opts, data_path=path, aria_label=label, **attrs)


def _columns_datalist(list_id: str, columns: Sequence[ColumnInfo]) -> Html:
    return el(
        "datalist",
        *(el("option", _column_label(c), value=c.logical_name) for c in columns),
        id=list_id,
    )


def _column_label(column: ColumnInfo) -> str:
    size = f" ({column.max_length})" if column.max_length else ""
    return f"{column.display_name or column.logical_name} · {column.type}{size}"


def _names_datalist(list_id: str, names: Iterable[str]) -> Html:
    return el("datalist", *(el("option", value=name) for name in names), id=list_id)


def _choice_datalists(kind: str, columns: Sequence[ColumnInfo]) -> Html:
    return join(
        el("datalist", *(el("option", value=o.label) for o in c.options), id=_id("opts", kind, c.logical_name))
        for c in columns
        if c.options
    )


def _remove_button(what: str) -> Html:
    return el("button", "Remove", type="button", class_="remove-row", aria_label=f"Remove {what}")


def _add_button(label: str, template_id: str, target_id: str) -> Html:
    return el("button", label, type="button", data_add_row=template_id, data_target=target_id, class_="secondary")


def _problems_for(problems: Sequence[MappingProblem], prefix: str) -> list[MappingProblem]:
    return [p for p in problems if p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))]


def _mark(problems: Sequence[MappingProblem], column: ColumnInfo | None, checked: bool) -> Html:
    """Compatible / warning / error, with the reason."""
    if not checked:
        return el("span", "Not checked", class_="mark unknown")
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    if errors or warnings:
        worst, label = (errors, "Error") if errors else (warnings, "Warning")
        reasons = el("ul", *(el("li", f"{p.message} {p.fix}") for p in worst), class_="reasons")
        return el("div", el("span", label, class_=f"mark {label.lower()}"), reasons)
    if column is None:
        return el("span", "—", class_="mark unknown")
    size = f", up to {column.max_length} characters" if column.max_length else ""
    return el("div", el("span", "Compatible", class_="mark ok"), el("span", f" {column.type}{size}", class_="reason"))


def _form(section: str, url: str, etag: str, base: Any, *content: Any, method: str = "PUT") -> Html:
    return el(
        "form",
        el("script", Html(json.dumps(base).replace("</", "<\\/")), type="application/json", data_base=True),
        el("div", class_="form-problems", role="alert", tabindex="-1"),
        *content,
        el("div", el("button", "Save", type="submit"), class_="actions"),
        data_url=url,
        data_method=method,
        data_etag=etag,
        data_section=section,
        novalidate=True,
    )


def _history(section: str, page: MappingPage) -> Html:
    ws = page.workspace.id
    if not page.history:
        return el("section", el("h2", "History"), el("p", "No saved versions yet."), aria_labelledby=None)
    rows = [
        el(
            "tr",
            el("td", str(entry.version)),
            el("td", entry.changed_at.strftime("%Y-%m-%d %H:%M UTC")),
            el("td", entry.changed_by),
            el("td", _restore_button(ws, section, entry, page.section.etag, page.section.version)),
        )
        for entry in page.history
    ]
    head = el("tr", *(el("th", h, scope="col") for h in ("Version", "Saved", "By", "Actions")))
    table = el(
        "div",
        el("table", el("caption", f"Saved versions of the {section} mapping"), el("thead", head), el("tbody", *rows)),
        class_="table-wrap",
    )
    return el("section", el("h2", "History"), table)


def _restore_button(ws: str, section: str, entry: HistoryEntry, etag: str, current: int) -> Html:
    if entry.version == current:
        return el("span", "Current version", class_="hint")
    return el(
        "button",
        f"Restore version {entry.version}",
        type="button",
        class_="secondary",
        data_post=f"{API}/workspaces/{ws}/mappings/{section}/restore",
        data_body=json.dumps({"version": entry.version}),
        data_etag=etag,
    )


def _unavailable(page: MappingPage) -> Html | None:
    if page.unavailable is None:
        return None
    return el(
        "p",
        f"Dynamics did not answer ({page.unavailable}): columns are not offered and nothing is checked until it does.",
        class_="banner warning",
        role="status",
    )


def _version_line(page: MappingPage) -> Html:
    s = page.section
    who = f" by {s.updated_by}" if s.updated_by else ""
    when = f" on {s.updated_at.strftime('%Y-%m-%d %H:%M UTC')}" if s.updated_at else ""
    return el(
        "p", f"Version {s.version}{who}{when}." if s.version else "Never saved: these are the defaults.", class_="hint"
    )


# ---------------------------------------------------------------------------------------------
# Workspaces


def workspaces_page(chrome: Chrome, workspaces: Sequence[Workspace]) -> str:
    rows = [
        el(
            "tr",
            el("td", el("a", w.name, href=f"{ROOT}/workspaces/{w.id}")),
            el("td", w.environment_url),
            el("td", w.contact_entity),
            el("td", w.created_at.strftime("%Y-%m-%d")),
        )
        for w in workspaces
    ]
    head = el("tr", *(el("th", h, scope="col") for h in ("Name", "Dynamics environment", "Writes to", "Created")))
    table = (
        el("div", el("table", el("caption", "Workspaces"), el("thead", head), el("tbody", *rows)), class_="table-wrap")
        if rows
        else el("p", "No workspace yet: create the first one below.")
    )
    create = el(
        "form",
        el("script", Html("{}"), type="application/json", data_base=True),
        el("div", class_="form-problems", role="alert", tabindex="-1"),
        field("Name", text_input("name", "", control_id="ws-name", required=True), "ws-name"),
        field(
            "Dynamics environment URL",
            text_input("environment_url", "", control_id="ws-url", placeholder="https://yourorg.crm4.dynamics.com"),
            "ws-url",
            "The address of the Dynamics 365 environment, https only.",
        ),
        field(
            "Writes contacts as",
            select("contact_entity", {"contact": "Contacts", "lead": "Leads"}, "contact", id="ws-entity"),
            "ws-entity",
        ),
        field(
            "API key header",
            text_input("key_header", "X-API-Key", control_id="ws-header"),
            "ws-header",
            "The header Genesy sends the key in.",
        ),
        el("div", el("button", "Create workspace", type="submit"), class_="actions"),
        data_url=f"{API}/workspaces",
        data_method="POST",
        data_render="key",
        data_result="created",
        novalidate=True,
    )
    return layout(
        "Workspaces",
        chrome,
        el("section", el("h2", "Your workspaces"), table),
        el("section", el("h2", "Create a workspace"), create, el("div", id="created", role="status")),
    )


def _copyable(label: str, value: str, control_id: str) -> Html:
    return el(
        "div",
        el("label", label, for_=control_id),
        el(
            "div",
            el("input", type="text", value=value, readonly=True, id=control_id),
            el("button", "Copy", type="button", class_="secondary", data_copy=control_id, aria_label=f"Copy {label}"),
            class_="copy",
        ),
        class_="field",
    )


def workspace_page(chrome: Chrome, workspace: Workspace, base_url: str, etag: str) -> str:
    ws = workspace
    env = ws.environment_url
    table = "lead" if ws.contact_entity == "lead" else "contact"
    keys = [
        el(
            "tr",
            el("td", k.key_id),
            el("td", k.created_at.strftime("%Y-%m-%d %H:%M")),
            el("td", k.expires_at.strftime("%Y-%m-%d %H:%M") if k.expires_at else "valid"),
        )
        for k in ws.keys
    ]
    head = el("tr", *(el("th", h, scope="col") for h in ("Key id", "Issued (UTC)", "Expires (UTC)")))
    genesy = el(
        "section",
        el("h2", "Genesy connection details"),
        el("p", "In Genesy, add a Custom CRM with these values."),
        _copyable("Base URL", base_url, "conn-base"),
        _copyable("API key header", ws.key_header, "conn-header"),
        _copyable(
            f"Open a {table} in Dynamics",
            f"{env}/main.aspx?pagetype=entityrecord&etn={table}&id={{crmId}}",
            "conn-contact-link",
        ),
        _copyable(
            "Open a company in Dynamics",
            f"{env}/main.aspx?pagetype=entityrecord&etn=account&id={{crmId}}",
            "conn-company-link",
        ),
        el(
            "div",
            el("table", el("caption", "API keys (only their hashes are kept)"), el("thead", head), el("tbody", *keys)),
            class_="table-wrap",
        ),
        el(
            "form",
            el("script", Html("{}"), type="application/json", data_base=True),
            el("div", class_="form-problems", role="alert", tabindex="-1"),
            field(
                "Old keys stay valid for",
                select(
                    "grace_seconds",
                    {"86400": "1 day", "3600": "1 hour", "0": "no time"},
                    "86400",
                    id="grace",
                    data_type="int",
                ),
                "grace",
            ),
            el("div", el("button", "Issue a new key", type="submit"), class_="actions"),
            data_url=f"{API}/workspaces/{ws.id}/keys",
            data_method="POST",
            data_render="key",
            data_result="new-key",
            novalidate=True,
        ),
        el("div", id="new-key", role="status"),
    )
    dynamics = el(
        "section",
        el("h2", "Dynamics environment"),
        _copyable("Environment URL", env, "conn-env"),
        el(
            "button",
            "Test the connection",
            type="button",
            data_post=f"{API}/workspaces/{ws.id}/connection-test",
            data_render="connection",
            data_result="conn-result",
        ),
        el("div", id="conn-result", role="status"),
    )
    target = _form(
        "workspace",
        f"{API}/workspaces/{ws.id}",
        etag,
        {},
        el(
            "fieldset",
            el("legend", "Genesy contacts are written as"),
            *_radios("contact_entity", {"contact": "Contacts", "lead": "Leads"}, ws.contact_entity, "target"),
        ),
        method="PATCH",
    )
    return layout("Connection", chrome, genesy, dynamics, el("section", el("h2", "Target table"), target))


def _checkbox(element_id: str, path: str, label: str, checked: bool) -> Html:
    """A labelled yes/no control bound to `path` of the section's document."""
    box = el("input", type="checkbox", id=element_id, data_path=path, data_type="bool", checked=checked)
    return el("div", box, el("label", label, for_=element_id), class_="radio")


def _radios(path: str, options: Mapping[str, str], current: str, prefix: str) -> list[Html]:
    return [
        el(
            "div",
            el(
                "input",
                type="radio",
                name=_id(prefix, path),
                id=_id(prefix, path, value),
                value=value,
                data_path=path,
                checked=value == current,
            ),
            el("label", label, for_=_id(prefix, path, value)),
            class_="radio",
        )
        for value, label in options.items()
    ]


# ---------------------------------------------------------------------------------------------
# Step 1: input / sync


def _condition_row(kind: str, condition: Mapping[str, Any] | None, label: str) -> Html:
    c = condition or {}
    return el(
        "div",
        text_input("field", c.get("field"), label=f"Genesy field ({label})", list=f"genesy-{kind}", data_key=True),
        text_input("column", c.get("column"), label=f"Dynamics column ({label})", list=f"cols-{kind}"),
        select("normaliser", NORMALISERS, c.get("normaliser", "exact"), label=f"Compare as ({label})"),
        _remove_button(f"condition {label}"),
        data_row=True,
        class_="condition",
    )


def _rule(kind: str, rule: Mapping[str, Any] | None, number: int | str) -> Html:
    conditions = (rule or {}).get("all_of") or [None]
    list_id = _id(kind, "rule", number, "conditions")
    return el(
        "fieldset",
        el("legend", f"{kind.capitalize()} rule {number}: all of these match (AND)"),
        # What the three boxes of each condition are, for the eye (each control has its own accessible name).
        el(
            "div",
            el("span", "Genesy field"),
            el("span", "Dynamics column"),
            el("span", "Compare as"),
            class_="condition condition-head",
            aria_hidden="true",
        ),
        el(
            "div",
            *(_condition_row(kind, c, f"{kind} rule {number}, condition {i + 1}") for i, c in enumerate(conditions)),
            data_list="all_of",
            id=list_id,
        ),
        el(
            "div",
            _add_button(f"Add a condition to {kind} rule {number} (AND)", f"tpl-{kind}-condition", list_id),
            _remove_button(f"{kind} rule {number}"),
            class_="row-actions",
        ),
        data_row=True,
        class_="rule",
    )


def _rules_builder(kind: str, matching: Mapping[str, Any]) -> Html:
    rules = matching.get("rules") or []
    list_id = f"{kind}-rules"
    templates = join(
        [
            el("template", _rule(kind, None, "new"), id=f"tpl-{kind}-rule"),
            el("template", _condition_row(kind, None, f"new {kind} condition"), id=f"tpl-{kind}-condition"),
        ]
    )
    return el(
        "div",
        el("h3", "Custom rules: any rule matches (OR)"),
        el(
            "p",
            "Used when “Custom rules” is chosen. Each rule needs all its conditions; the first rule that "
            "finds a record wins.",
            class_="hint",
        ),
        el(
            "div",
            *(_rule(kind, r, i + 1) for i, r in enumerate(rules)),
            data_list=f"{kind}.rules",
            data_when=f"{kind}.mode=custom",
            id=list_id,
        ),
        _add_button(f"Add a {kind} rule (OR)", f"tpl-{kind}-rule", list_id),
        templates,
        class_="rules",
    )


def _column_settings(kind: str, matching: Mapping[str, Any], names: Sequence[str]) -> Html:
    controls = [
        field(
            name.replace("_", " ").capitalize(),
            text_input(f"{kind}.{name}", matching.get(name), control_id=_id(kind, name), list=f"cols-{kind}"),
            _id(kind, name),
        )
        for name in names
    ]
    return el("details", el("summary", "Columns the built-in rules compare"), *controls)


def sync_page(chrome: Chrome, page: MappingPage) -> str:
    doc = page.section.document.model_dump(mode="json")
    ws = page.workspace
    contact, company = doc["contact"], doc["company"]
    lists = _metadata_lists(page)
    contact_block = el(
        "fieldset",
        el("legend", f"Contact identifier ({'leads' if ws.contact_entity == 'lead' else 'contacts'})"),
        *_radios("contact.mode", CONTACT_MODES, contact["mode"], "sync"),
        _rules_builder("contact", contact),
        _column_settings(
            "contact",
            contact,
            ("email_column", "linkedin_column", "first_name_column", "last_name_column", "company_column"),
        ),
    )
    any_ext = _checkbox(
        "company-any-ext",
        "company.any_domain_extension",
        "Any extension: acme.com also matches acme.es",
        bool(company.get("any_domain_extension")),
    )
    company_block = el(
        "fieldset",
        el("legend", "Company identifier (accounts)"),
        *_radios("company.mode", COMPANY_MODES, company["mode"], "sync"),
        any_ext,
        _rules_builder("company", company),
        _column_settings("company", company, ("domain_column", "name_column")),
    )
    form = _form(
        "sync",
        f"{API}/workspaces/{ws.id}/mappings/sync",
        page.section.etag,
        doc,
        _problem_list(page.problems),
        el("h2", "How an existing record is recognised"),
        contact_block,
        company_block,
    )
    target = el(
        "p",
        f"Records are written as {ws.contact_entity}s: change it on the ",
        el("a", "Connection", href=f"{ROOT}/workspaces/{ws.id}"),
        " page.",
        class_="hint",
    )
    return layout(
        "Input / sync mapping",
        chrome,
        _unavailable(page),
        _version_line(page),
        target,
        lists,
        form,
        _history("sync", page),
    )


def _problem_list(problems: Sequence[MappingProblem]) -> Html | None:
    if not problems:
        return None
    items = [el("li", el("strong", p.severity.capitalize()), f" {p.path}: {p.message} {p.fix}") for p in problems]
    return el("div", el("p", "The saved mapping has these problems:"), el("ul", *items), class_="banner warning")


def _metadata_lists(page: MappingPage) -> Html:
    parts = [_names_datalist(f"genesy-{kind}", names) for kind, names in GENESY_FIELDS.items()]
    for kind, columns in (page.columns or {}).items():
        parts.append(_columns_datalist(f"cols-{kind}", columns))
        parts.append(_choice_datalists(kind, columns))
    return join(parts)


# ---------------------------------------------------------------------------------------------
# Step 2: export


@dataclass(frozen=True)
class _Table:
    """One editable table of the export step: its list path, headers, and how a row is drawn."""

    group: str
    title: str
    headers: tuple[str, ...]
    row: Callable[[str, Mapping[str, Any] | None, str], list[Html]]
    hint: str


def _policy(item: Mapping[str, Any] | None, label: str) -> Html:
    return select("policy", POLICIES, (item or {}).get("policy", "overwrite"), label=f"Write policy ({label})")


def _column(kind: str, item: Mapping[str, Any] | None, label: str, *, key: bool = False) -> Html:
    return text_input(
        "column",
        (item or {}).get("column"),
        label=f"Dynamics column ({label})",
        list=f"cols-{kind}",
        data_options_for=f"opts-{kind}",
        data_key=key,
    )


def _field_row(kind: str, item: Mapping[str, Any] | None, label: str) -> list[Html]:
    return [
        text_input(
            "source", (item or {}).get("source"), label=f"Genesy field ({label})", list=f"genesy-{kind}", data_key=True
        ),
        _column(kind, item, label),
        _policy(item, label),
    ]


def _value_list(kind: str, item: Mapping[str, Any] | None) -> str | None:
    column = (item or {}).get("column")
    return _id("opts", kind, column) if column else None


def _column_value_row(kind: str, item: Mapping[str, Any] | None, label: str, *, value_is_key: bool) -> list[Html]:
    """A column and the value written to it (fixed fields, engagement fields), offered from its choices."""
    value = text_input(
        "value",
        (item or {}).get("value"),
        label=f"Value ({label})",
        list=_value_list(kind, item),
        data_key=value_is_key,
        data_options_target=True,
    )
    return [_column(kind, item, label, key=True), value, _policy(item, label)]


def _fixed_row(kind: str, item: Mapping[str, Any] | None, label: str) -> list[Html]:
    return _column_value_row(kind, item, label, value_is_key=True)


def _export_field_row(kind: str, item: Mapping[str, Any] | None, label: str) -> list[Html]:
    i = item or {}
    required = el(
        "input",
        type="checkbox",
        data_path="required",
        data_type="bool",
        checked=bool(i.get("required")),
        aria_label=f"Required ({label})",
    )
    return [
        text_input("name", i.get("name"), label=f"Name Genesy sends ({label})", data_key=True),
        _column(kind, item, label),
        text_input(
            "options", ", ".join(str(o) for o in i.get("options", [])), label=f"Options ({label})", data_type="list"
        ),
        text_input(
            "default",
            i.get("default"),
            label=f"Default ({label})",
            list=_value_list(kind, item),
            data_options_target=True,
        ),
        required,
        _policy(item, label),
    ]


def _engagement_row(kind: str, item: Mapping[str, Any] | None, label: str) -> list[Html]:
    return _column_value_row(kind, item, label, value_is_key=False)


_EXPORT_TABLES = (
    _Table(
        "fields",
        "Field map",
        ("Genesy field", "Dynamics column", "Write policy", "Check", "Actions"),
        _field_row,
        "Each Genesy field goes to one column; the check says whether the column can hold it.",
    ),
    _Table(
        "fixed",
        "Fixed fields",
        ("Dynamics column", "Value", "Write policy", "Check", "Actions"),
        _fixed_row,
        "A constant on every record; choice columns offer their labels.",
    ),
    _Table(
        "export_fields",
        "Export fields",
        (
            "Name",
            "Dynamics column",
            "Options (comma-separated)",
            "Default",
            "Required",
            "Write policy",
            "Check",
            "Actions",
        ),
        _export_field_row,
        "A value the Genesy user picks at export time, sent as exportValues[name].",
    ),
    _Table(
        "engagement",
        "Engagement fields",
        ("Dynamics column", "Value", "Write policy", "Check", "Actions"),
        _engagement_row,
        "Written only when the record took part in a campaign.",
    ),
)


def _export_table(kind: str, spec: _Table, items: Sequence[Mapping[str, Any]], page: MappingPage) -> Html:
    columns = {c.logical_name: c for c in (page.columns or {}).get(kind, [])}
    checked = page.columns is not None
    body_id = _id(kind, spec.group)
    noun = spec.title.lower().rstrip("s")

    def row(item: Mapping[str, Any] | None, index: int | None) -> Html:
        label = f"{kind} {noun} {index + 1}" if index is not None else f"new {kind} {noun}"
        problems = _problems_for(page.problems, f"{kind}.{spec.group}[{index}]") if index is not None else []
        mark = _mark(problems, columns.get(str((item or {}).get("column"))), checked) if item else el("span", "—")
        cells = [el("td", cell) for cell in spec.row(kind, item, label)]
        return el("tr", *cells, el("td", mark, class_="check"), el("td", _remove_button(label)), data_row=True)

    head = el("tr", *(el("th", h, scope="col") for h in spec.headers))
    rows = [row(item, i) for i, item in enumerate(items)] or []
    table = el(
        "table",
        el("caption", f"{spec.title} — {kind_label(kind, page.workspace)}"),
        el("thead", head),
        el("tbody", *rows, data_list=f"{kind}.{spec.group}", id=body_id),
    )
    template = el("template", el("table", el("tbody", row(None, None))), id=f"tpl-{body_id}")
    return el(
        "section",
        el("h3", spec.title),
        el("p", spec.hint, class_="hint"),
        el("div", table, class_="table-wrap"),
        _add_button(f"Add a row to {spec.title.lower()}", f"tpl-{body_id}", body_id),
        template,
        class_="export-table",
    )


def kind_label(kind: str, workspace: Workspace) -> str:
    if kind == "company":
        return "companies (accounts)"
    return "leads" if workspace.contact_entity == "lead" else "contacts"


def export_page(chrome: Chrome, page: MappingPage) -> str:
    doc = page.section.document.model_dump(mode="json")
    ws = page.workspace
    blocks = [
        el(
            "fieldset",
            el("legend", f"Export of {kind_label(kind, ws)}"),
            *(_export_table(kind, spec, doc[kind][spec.group], page) for spec in _EXPORT_TABLES),
        )
        for kind in ("contact", "company")
    ]
    form = _form(
        "export",
        f"{API}/workspaces/{ws.id}/mappings/export",
        page.section.etag,
        doc,
        _problem_list([p for p in page.problems if not p.path.startswith(("contact.", "company."))]),
        el("h2", "What each export writes"),
        *blocks,
    )
    return layout(
        "Export mapping",
        chrome,
        _unavailable(page),
        _version_line(page),
        _metadata_lists(page),
        form,
        _history("export", page),
    )


# ---------------------------------------------------------------------------------------------
# Step 3: campaign


def campaign_page(chrome: Chrome, page: MappingPage) -> str:
    doc = page.section.document.model_dump(mode="json")
    ws = page.workspace
    text_columns = [c for c in (page.columns or {}).get("contact", []) if c.type in ("String", "Memo")]
    by_name = {c.logical_name: c for c in text_columns}
    rows = []
    for value in CAMPAIGN_VALUES:
        column = doc["columns"].get(value.value)
        info = by_name.get(column or "")
        problems = _problems_for(page.problems, f"columns.{value.value}")
        control = text_input(
            f"columns.{value.value}", column, label=f"Dynamics column for {CAMPAIGN_LABELS[value]}", list="cols-text"
        )
        length = str(info.max_length) if info and info.max_length else "—"
        rows.append(
            el(
                "tr",
                el("th", CAMPAIGN_LABELS[value], scope="row"),
                el("td", control),
                el("td", length),
                el(
                    "td",
                    _mark(problems, info, page.columns is not None) if column else el("span", "Not mapped"),
                    class_="check",
                ),
            )
        )
    head = el("tr", *(el("th", h, scope="col") for h in ("Campaign value", "Text column", "Max length", "Check")))
    enabled = _checkbox("campaign-enabled", "enabled", "Write campaign values into Dynamics", bool(doc.get("enabled")))
    table = el(
        "div",
        el(
            "table",
            el("caption", f"Campaign values on {kind_label('contact', ws)}"),
            el("thead", head),
            el("tbody", *rows),
        ),
        class_="table-wrap",
    )
    hint = el(
        "p", "Values are rendered as text; a column shorter than a value cuts it (the check warns).", class_="hint"
    )
    form = _form(
        "campaign",
        f"{API}/workspaces/{ws.id}/mappings/campaign",
        page.section.etag,
        doc,
        el("h2", "Campaign values"),
        enabled,
        hint,
        table,
    )
    lists = _columns_datalist("cols-text", text_columns)
    return layout(
        "Campaign mapping", chrome, _unavailable(page), _version_line(page), lists, form, _history("campaign", page)
    )


# ---------------------------------------------------------------------------------------------
# Step 4: users


def _user_options(users: Sequence[UserInfo] | None, current: str | None) -> dict[str, str]:
    options = {"": "— not mapped —"}
    for user in users or []:
        options[user.id] = f"{user.name} ({user.email})" if user.email else user.name
    if current and current not in options:
        options[current] = f"{current} (not an enabled user)"
    return options


def _seen_status(seen: Mapping[str, Any] | None) -> tuple[Html, bool]:
    """The resolution of a Genesy identity seen in exports, and whether it is unmapped."""
    if seen is None:
        return el("span", "Mapped"), False
    user = (seen.get("user") or {}).get("name")
    resolution = seen.get("resolution")
    if resolution == "mapped":
        return el("span", f"Mapped to {user}"), False
    if resolution == "auto-matched":
        return el("span", f"Auto-matched by e-mail to {user}"), False
    fallback = f"resolves to the default owner {user}" if user else "no owner is set"
    return el("span", el("strong", "Unmapped"), f": {fallback}"), True


def _user_table(
    kind: str, key: str, entries: Sequence[Mapping[str, Any]], seen: Sequence[Mapping[str, Any]], page: MappingPage
) -> Html:
    by_identity = {str(s["identity"]).lower(): s for s in seen}
    rows_data: list[tuple[str, str | None, Mapping[str, Any] | None]] = [
        (str(e[key]), e["systemuser_id"], by_identity.pop(str(e[key]).lower(), None)) for e in entries
    ]
    rows_data += [(str(s["identity"]), None, s) for s in by_identity.values()]
    rows = []
    for index, (identity, user_id, seen_entry) in enumerate(rows_data):
        status, unmapped = _seen_status(seen_entry)
        label = f"{identity}"
        rows.append(
            el(
                "tr",
                el("td", text_input(key, identity, label=f"Genesy {kind} {index + 1}", data_key=True)),
                el(
                    "td",
                    select(
                        "systemuser_id",
                        _user_options(page.users, user_id),
                        user_id or "",
                        label=f"Dynamics user for {label}",
                    ),
                ),
                el("td", status),
                el("td", _remove_button(f"mapping of {label}")),
                data_row=True,
                class_="unmapped" if unmapped and not user_id else None,
            )
        )
    body_id = _id("users", kind)
    head = el("tr", *(el("th", h, scope="col") for h in (f"Genesy {kind}", "Dynamics user", "Now", "Actions")))
    new_row = el(
        "tr",
        el("td", text_input(key, None, label=f"New Genesy {kind}", data_key=True)),
        el("td", select("systemuser_id", _user_options(page.users, None), "", label=f"Dynamics user for new {kind}")),
        el("td", ""),
        el("td", _remove_button(f"new {kind}")),
        data_row=True,
    )
    path = "users" if key == "genesy_user" else "identities"
    return el(
        "div",
        el(
            "div",
            el(
                "table",
                el("caption", f"Genesy {kind}s → Dynamics users"),
                el("thead", head),
                el("tbody", *rows, data_list=path, id=body_id),
            ),
            class_="table-wrap",
        ),
        _add_button(f"Add a {kind}", f"tpl-{body_id}", body_id),
        el("template", el("table", el("tbody", new_row)), id=f"tpl-{body_id}"),
    )


def users_page(chrome: Chrome, page: MappingPage) -> str:
    doc = page.section.document.model_dump(mode="json")
    ws = page.workspace
    owners = [i for i in page.identities if i.get("role") == "owner"]
    senders = [i for i in page.identities if i.get("role") == "sender"]
    unmapped = sum(1 for i in page.identities if i.get("resolution") in ("default", "none"))
    summary = el(
        "p",
        f"{unmapped} Genesy identities seen in exports are not mapped (highlighted below).",
        class_="banner warning" if unmapped else "hint",
    )
    default = field(
        "Default owner",
        select(
            "default_owner_id",
            _user_options(page.users, doc.get("default_owner_id")),
            doc.get("default_owner_id") or "",
            id="default-owner",
            data_empty="null",
        ),
        "default-owner",
        "Owns what nobody else is mapped to, and what a disabled user would own.",
    )
    owner_field = field(
        "Genesy field naming the owner",
        text_input("owner_field", doc.get("owner_field"), control_id="owner-field"),
        "owner-field",
        "Looked up below when Genesy sends no ownerId.",
    )
    form = _form(
        "users",
        f"{API}/workspaces/{ws.id}/mappings/users",
        page.section.etag,
        doc,
        _problem_list(page.problems),
        summary,
        default,
        owner_field,
        el("h2", "Owners (who owns exported records)"),
        _user_table("user", "genesy_user", doc["users"], owners, page),
        el("h2", "Senders (whom activities are logged for)"),
        _user_table("sender", "identity", doc["identities"], senders, page),
    )
    return layout("User mapping", chrome, _unavailable(page), _version_line(page), form, _history("users", page))


# ---------------------------------------------------------------------------------------------
# Preview


SAMPLE_RECORD = {
    "externalId": "preview-1",
    "email": "maria.garcia@acme.com",
    "firstName": "María",
    "lastName": "García",
    "company": "Acme Corporation",
    "title": "CTO",
}


def preview_page(
    chrome: Chrome,
    form: Mapping[str, str],
    records: Sequence[PreviewRecordDiff] | None,
    error: str | None,
) -> str:
    ws = chrome.workspace
    assert ws is not None
    kind = form.get("kind", "contact")
    record_text = form.get("record") or json.dumps(SAMPLE_RECORD, indent=2, ensure_ascii=False)
    error_el = el("p", error, class_="problem", id="preview-error") if error else None
    query = el(
        "form",
        field(
            "Record type",
            select(
                "kind", {"contact": kind_label("contact", ws), "company": "companies"}, kind, id="pv-kind", name="kind"
            ),
            "pv-kind",
        ),
        field(
            "Dynamics record id (crmId)",
            el("input", type="text", name="crmId", id="pv-crm", value=form.get("crmId", "")),
            "pv-crm",
            "Preview an update of an existing record; leave empty to match the sample record like an export.",
        ),
        field(
            "Sample record (Genesy JSON)",
            el(
                "textarea",
                record_text,
                name="record",
                id="pv-record",
                rows="9",
                aria_invalid="true" if error else None,
                aria_describedby="preview-error" if error else None,
            ),
            "pv-record",
        ),
        error_el,
        field(
            "Export values (JSON, optional)",
            el("input", type="text", name="exportValues", id="pv-values", value=form.get("exportValues", "")),
            "pv-values",
        ),
        el("input", type="hidden", name="run", value="1"),
        el("div", el("button", "Preview", type="submit"), class_="actions"),
        method="get",
        action=f"{ROOT}/workspaces/{ws.id}/preview",
    )
    results = [_preview_record(r) for r in records or []]
    return layout(
        "Preview an export", chrome, el("p", "A dry run: nothing is written or queued.", class_="hint"), query, *results
    )


def _match_text(record: PreviewRecordDiff) -> str:
    m = record.match
    texts = {
        "new": "No record matched: a new one would be created",
        "matched": "Matched an existing record",
        "ambiguous": "Several records matched: the most recently modified active one is written",
        "by id": "The record named by its id",
        "not found": "No record has this id in Dynamics",
    }
    rule = f" by rule {m.rule.index + 1} ({m.rule.description})" if m.rule else ""
    return f"{texts[m.decision]}{rule}."


def _preview_record(record: PreviewRecordDiff) -> Html:
    head = el(
        "tr", *(el("th", h, scope="col") for h in ("Column", "From", "In Dynamics now", "Would write", "Decision"))
    )
    rows = [
        el(
            "tr",
            el("th", c.column, scope="row"),
            el("td", c.source),
            el("td", _value(c.current)),
            el("td", _value(c.value)),
            el("td", _decision(c.decision, c.reason)),
            class_="changed" if c.decision in ("write", "truncated") else None,
        )
        for c in record.columns
    ]
    owner = record.owner
    owner_line = (
        el("p", f"Owner: {owner.user.name if owner.user else 'not set by this export'} ({owner.resolution})")
        if owner
        else None
    )
    warnings = el("ul", *(el("li", w) for w in record.warnings), class_="reasons") if record.warnings else None
    error = (
        el("p", f"Cannot be written: {record.error.get('message')}", class_="banner error") if record.error else None
    )
    return el(
        "section",
        el("h2", f"Record {record.externalId or record.crmId}"),
        el("p", el("strong", "Match decision: "), _match_text(record), class_="decision"),
        el("p", f"Action: {record.action or '—'} · Genesy gets the id {record.crmId} · written to {record.writesTo}"),
        owner_line,
        error,
        warnings,
        el(
            "div",
            el("table", el("caption", "Before and after, per column"), el("thead", head), el("tbody", *rows)),
            class_="table-wrap",
        ),
        class_="preview-result",
    )


def _decision(decision: str, reason: str | None) -> str:
    """`skip: if_empty — Dynamics already has a value` (the reason without the decision repeated)."""
    if not reason:
        return decision
    head, _, rest = reason.partition(":")
    if head.strip() == decision.removeprefix("skip: ").strip():
        reason = rest.strip() or None
    return f"{decision} — {reason}" if reason else decision


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Sync health


def health_page(chrome: Chrome, page: SyncHealthPage) -> str:
    ws = chrome.workspace
    assert ws is not None
    counts: dict[str, dict[str, int]] = page.health["counts"]
    statuses = sorted({s for bucket in counts.values() for s in bucket})
    head = el("tr", el("th", "Kind", scope="col"), *(el("th", s, scope="col") for s in statuses))
    rows = [
        el("tr", el("th", kind, scope="row"), *(el("td", str(b.get(s, 0))) for s in statuses))
        for kind, b in sorted(counts.items())
    ]
    count_table = (
        el(
            "div",
            el("table", el("caption", "Records by status (latest outcome)"), el("thead", head), el("tbody", *rows)),
            class_="table-wrap",
        )
        if rows
        else el("p", "Nothing exported yet.")
    )
    day_head = el("tr", el("th", "Status", scope="col"), *(el("th", d[5:], scope="col") for d in page.days))
    day_rows = [
        el("tr", el("th", s, scope="row"), *(el("td", str(n)) for n in values)) for s, values in page.by_day.items()
    ]
    over_time = (
        el(
            "div",
            el(
                "table",
                el("caption", "Outcomes per day, last 7 days (UTC)"),
                el("thead", day_head),
                el("tbody", *day_rows),
            ),
            class_="table-wrap",
        )
        if day_rows
        else None
    )
    return layout(
        "Sync health",
        chrome,
        el("section", el("h2", "Counts"), count_table, over_time),
        _attention(ws.id, page.health["attention"]),
        _dead_letters(page.dead_letters),
        _reconciliation(ws.id, page.last_run),
    )


def _attention(workspace_id: str, attention: Sequence[Mapping[str, Any]]) -> Html:
    url = f"{API}/workspaces/{workspace_id}/retry"
    if not attention:
        return el("section", el("h2", "Records that need attention"), el("p", "None: every record was written."))
    head = el(
        "tr",
        *(el("th", h, scope="col") for h in ("Select", "Record", "Status", "Dataverse's reason", "Fix", "Actions")),
    )
    rows = []
    for index, row in enumerate(attention):
        key = str(row["key"])
        box = el(
            "input",
            type="checkbox",
            name="keys",
            value=key,
            id=f"pick-{index}",
            aria_label=f"Select {row['kind']} {key}",
        )
        retry = (
            el(
                "button",
                "Retry",
                type="button",
                class_="secondary",
                data_post=url,
                data_body=json.dumps({"keys": [key]}),
                aria_label=f"Retry {row['kind']} {key}",
            )
            if row.get("retryable")
            else el("span", "Not retryable", class_="hint")
        )
        reason = f"{row.get('code') or ''} {row.get('message') or ''}".strip()
        rows.append(
            el(
                "tr",
                el("td", box),
                el("td", f"{row['kind']} {key}"),
                el("td", row["status"]),
                el("td", reason),
                el("td", row.get("fix", "")),
                el("td", retry),
            )
        )
    table = el(
        "div",
        el(
            "table",
            el("caption", "Failed, retrying and ambiguous records (newest first)"),
            el("thead", head),
            el("tbody", *rows),
        ),
        class_="table-wrap",
    )
    actions = el(
        "div",
        el("button", "Retry selected", type="button", data_post=url, data_collect="keys"),
        el("button", "Retry all failed", type="button", class_="secondary", data_post=url, data_body="{}"),
        class_="actions",
    )
    return el("section", el("h2", "Records that need attention"), table, actions, id="attention")


def _dead_letters(letters: Sequence[Mapping[str, Any]]) -> Html:
    rows = [
        el(
            "tr",
            el("th", d["queue"], scope="row"),
            el("td", "unknown (see the portal)" if d["count"] is None else str(d["count"])),
            el(
                "td",
                el(
                    "button",
                    "Replay",
                    type="button",
                    class_="secondary",
                    data_post=f"{API}/queues/{d['queue']}/replay",
                    aria_label=f"Replay dead letters of {d['queue']}",
                ),
            ),
        )
        for d in letters
    ]
    head = el("tr", *(el("th", h, scope="col") for h in ("Queue", "Dead letters", "Actions")))
    return el(
        "section",
        el("h2", "Dead letters"),
        el(
            "div",
            el("table", el("caption", "Messages that failed every delivery"), el("thead", head), el("tbody", *rows)),
            class_="table-wrap",
        ),
    )


def _reconciliation(workspace_id: str, last: Mapping[str, Any] | None) -> Html:
    run = el("button", "Run reconciliation now", type="button", data_post=f"{API}/workspaces/{workspace_id}/reconcile")
    if last is None:
        body: Html = el("p", "Not run yet (the timer runs it every 15 minutes).")
    else:
        report = last["report"]
        tables = report.get("changes", {}).get("tables", {})
        items = [
            el(
                "li",
                f"{name} ({'change tracking' if t.get('mode') != 'modifiedon' else 'modifiedon: deletions not seen'}): "
                f"{t.get('changed', 0)} changed, {t.get('merged', 0)} merged, {t.get('deleted', 0)} deleted"
                + (f" — {t['error']}" if t.get("error") else ""),
            )
            for name, t in tables.items()
        ]
        checked = report.get("verification") or {}
        campaigns = report.get("campaign_values") or {}
        items += [
            el("li", f"Verification: {checked.get('checked', 0)} records looked up in Dynamics, "
                     f"{checked.get('missing', 0)} missing, {checked.get('requeued', 0)} queued again"),
            el("li", f"Campaign values waiting for their contact: {campaigns.get('written', 0)} of "
                     f"{campaigns.get('waiting', 0)} written"),
            el("li", f"Dataverse requests: {report.get('dataverse_requests', 0)} of a budget of "
                     f"{report.get('request_budget', 0)}"
                     + (f" (left for the next run: {', '.join(report['skipped'])})" if report.get("skipped") else "")),
        ]
        body = el(
            "div",
            el(
                "p",
                f"Last run {last['at'][:19].replace('T', ' ')} UTC by {last['by']}: "
                f"{report.get('requeued', 0)} re-queued, {report.get('failed', 0)} failed.",
            ),
            el("ul", *items),
        )
    return el("section", el("h2", "Reconciliation"), body, run)
