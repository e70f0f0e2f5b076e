"""`$batch`: multipart framing, atomic change sets with Content-ID references, error handling modes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import httpx

from devstack.dataverse_sandbox import SEED_IDS, Sandbox

CRLF = "\r\n"


def _part(method: str, url: str, body: dict[str, object] | None = None, content_id: int | None = None,
          headers: dict[str, str] | None = None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("")
    if body is not None:
        lines.append(json.dumps(body))
    return CRLF.join(lines)


def _batch(parts: list[str | list[str]]) -> tuple[str, str]:
    boundary = f"batch_{uuid.uuid4()}"
    chunks = []
    for part in parts:
        if isinstance(part, list):
            cs = f"changeset_{uuid.uuid4()}"
            inner = "".join(f"--{cs}{CRLF}{p}{CRLF}" for p in part) + f"--{cs}--"
            chunks.append(f"Content-Type: multipart/mixed; boundary={cs}{CRLF}{CRLF}{inner}")
        else:
            chunks.append(part)
    body = "".join(f"--{boundary}{CRLF}{c}{CRLF}" for c in chunks) + f"--{boundary}--{CRLF}"
    return f"multipart/mixed; boundary={boundary}", body


@dataclass
class PartResponse:
    status: int
    headers: dict[str, str]
    body: str
    content_id: str | None


def _parse(resp: httpx.Response) -> list[PartResponse]:
    """Independent parser of the response framing (flattens change sets)."""
    ctype = resp.headers["Content-Type"]
    assert ctype.startswith("multipart/mixed; boundary=batchresponse_")
    return _parse_multipart(resp.text, ctype.split("boundary=")[1])


def _parse_multipart(text: str, boundary: str) -> list[PartResponse]:
    out: list[PartResponse] = []
    segments = text.split(f"--{boundary}")
    assert segments[-1].strip() == "--", "missing closing boundary"
    for seg in segments[1:-1]:
        mime, _, rest = seg.strip(CRLF).partition(CRLF + CRLF)
        mime_headers = dict(line.split(": ", 1) for line in mime.split(CRLF) if line)
        if mime_headers["Content-Type"].startswith("multipart/mixed"):
            out += _parse_multipart(rest, mime_headers["Content-Type"].split("boundary=")[1])
            continue
        head, _, body = rest.partition(CRLF + CRLF)
        status_line, *header_lines = head.split(CRLF)
        assert status_line.startswith("HTTP/1.1 ")
        out.append(PartResponse(int(status_line.split()[1]), dict(h.split(": ", 1) for h in header_lines),
                                body.strip(), mime_headers.get("Content-ID")))
    return out


def _post(api: httpx.Client, parts: list[str | list[str]], prefer: str | None = None) -> httpx.Response:
    ctype, body = _batch(parts)
    headers = {"Content-Type": ctype}
    if prefer:
        headers["Prefer"] = prefer
    return api.post("$batch", content=body.encode(), headers=headers)


def test_mixed_batch_with_changeset_and_content_id_references(api: httpx.Client, sandbox: Sandbox) -> None:
    base = f"{sandbox.url}/api/data/v9.2"
    resp = _post(api, [
        _part("GET", f"{base}/accounts({SEED_IDS['account:acme']})?$select=name"),
        [
            _part("POST", "/api/data/v9.2/accounts", {"name": "Batch Co"}, content_id=1),
            _part("POST", "contacts", {"lastname": "Batchy", "parentcustomerid_account@odata.bind": "$1"},
                  content_id=2),
            _part("PATCH", "$1", {"telephone1": "123"}, content_id=3, headers={"If-Match": "*"}),
        ],
        _part("GET", "contacts?$select=fullname&$filter=lastname%20eq%20'Batchy'"),
    ])
    assert resp.status_code == 200
    parts = _parse(resp)
    assert [p.status for p in parts] == [200, 204, 204, 204, 200]
    assert json.loads(parts[0].body)["name"] == "Acme Corporation"
    assert [p.content_id for p in parts[1:4]] == ["1", "2", "3"]
    account_id = parts[1].headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    account = sandbox.store.get("account", account_id)
    assert account is not None and account["telephone1"] == "123"
    contact_id = parts[2].headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    assert sandbox.store.get("contact", contact_id)["_parentcustomerid_value"] == account_id  # type: ignore[index]
    assert [r["fullname"] for r in json.loads(parts[4].body)["value"]] == ["Batchy"]
    log = sandbox.request_log[-1]
    assert log.path.endswith("$batch") and log.batch_parts == 5
    assert sandbox.counters["batch_parts"] == 5


def test_failed_changeset_rolls_back_and_stops_the_batch(api: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("account"))
    resp = _post(api, [
        [
            _part("POST", "accounts", {"name": "Rolled Back"}, content_id=1),
            _part("POST", "accounts", {"name": "n" * 161}, content_id=2),
        ],
        _part("POST", "accounts", {"name": "Never Runs"}),
    ])
    assert resp.status_code == 400
    parts = _parse(resp)
    assert len(parts) == 1 and parts[0].status == 400
    assert json.loads(parts[0].body)["error"]["code"] == "0x80044331"
    assert len(sandbox.store.rows("account")) == before


def test_continue_on_error_answers_every_part(api: httpx.Client, sandbox: Sandbox) -> None:
    resp = _post(api, [
        _part("POST", "accounts", {"name": "First"}),
        _part("GET", f"accounts({uuid.uuid4()})"),
        [_part("POST", "accounts", {"name": "In CS"}, content_id=1),
         _part("POST", "accounts", {"bogus": 1}, content_id=2)],
        _part("POST", "accounts", {"name": "Last"}),
    ], prefer="odata.continue-on-error")
    assert resp.status_code == 200
    statuses = [p.status for p in _parse(resp)]
    assert statuses == [204, 404, 400, 204]
    names = {r["name"] for r in sandbox.store.rows("account")}
    assert {"First", "Last"} <= names and "In CS" not in names


def test_stop_at_first_failure_outside_changesets(api: httpx.Client, sandbox: Sandbox) -> None:
    resp = _post(api, [
        _part("POST", "accounts", {"name": "Kept"}),
        _part("DELETE", f"accounts({uuid.uuid4()})"),
        _part("POST", "accounts", {"name": "Skipped"}),
    ])
    assert resp.status_code == 400
    assert [p.status for p in _parse(resp)] == [204, 404]
    names = {r["name"] for r in sandbox.store.rows("account")}
    assert "Kept" in names and "Skipped" not in names


def test_get_inside_changeset_is_rejected(api: httpx.Client) -> None:
    resp = _post(api, [[_part("GET", "accounts")]])
    assert resp.status_code == 400


def test_more_than_limit_requests_is_rejected(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.config.max_batch_requests = 3
    resp = _post(api, [_part("GET", "WhoAmI") for _ in range(4)])
    assert resp.status_code == 400
    assert _post(api, [_part("GET", "WhoAmI") for _ in range(3)]).status_code == 200


def test_bulk_action_inside_batch(api: httpx.Client, sandbox: Sandbox) -> None:
    resp = _post(api, [_part("POST", "contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [
        {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "InBatch"}]})])
    parts = _parse(resp)
    assert parts[0].status == 200 and len(json.loads(parts[0].body)["Ids"]) == 1
    assert sandbox.counters["batch:POST contacts/CreateMultiple"] == 1
