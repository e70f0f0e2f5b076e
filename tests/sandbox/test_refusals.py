"""What the sandbox does not implement is refused with Dataverse's error shape (400, 0x80060888), never
answered as if the option were not there."""

from __future__ import annotations

import httpx
import pytest

from devstack.dataverse_sandbox import SEED_IDS, Sandbox
from tests.sandbox.conftest import error_of

FETCH = ('<fetch><entity name="contact"><filter><condition attribute="lastname" operator="eq" value="x"/>'
         "</filter></entity></fetch>")


def _refused(resp: httpx.Response, *, sandbox_feature: bool = True) -> str:
    assert resp.status_code == 400, resp.text
    error = error_of(resp)
    assert error["code"] == "0x80060888"
    if sandbox_feature:
        assert "not supported by the Dataverse sandbox" in error["message"]
    return error["message"]


@pytest.mark.parametrize(("name", "value"), [
    ("fetchXml", FETCH),
    ("savedQuery", "00000000-0000-0000-0000-000000000001"),
    ("userQuery", "00000000-0000-0000-0000-000000000001"),
    ("$apply", "groupby((lastname))"),
    ("$search", "maria"),
    ("$compute", "lastname as x"),
    ("@p1", "'x'"),
])
def test_dataverse_features_the_sandbox_lacks_are_refused(api: httpx.Client, name: str, value: str) -> None:
    assert name in _refused(api.get("contacts", params={name: value}))


def test_unknown_and_misplaced_options_are_refused(api: httpx.Client) -> None:
    maria = SEED_IDS["contact:maria"]
    assert "foo" in _refused(api.get("contacts", params={"foo": "bar"}), sandbox_feature=False)
    assert "$filter" in _refused(api.get(f"contacts({maria})", params={"$filter": "lastname eq 'x'"}),
                                 sandbox_feature=False)
    assert "$top" in _refused(api.get("EntityDefinitions", params={"$top": "1"}), sandbox_feature=False)
    assert "$top" in _refused(api.get("WhoAmI", params={"$top": "1"}), sandbox_feature=False)
    assert "$select" in _refused(api.delete(f"contacts({maria})", params={"$select": "lastname"}),
                                 sandbox_feature=False)
    assert "$skip" in _refused(api.get("contacts", params={"$skip": "1"}), sandbox_feature=False)


def test_expand_options_beyond_select_are_refused(api: httpx.Client, sandbox: Sandbox) -> None:
    acme = SEED_IDS["account:acme"]
    ok = api.get("contacts", params={"$select": "lastname", "$expand": "parentcustomerid_account($select=name)"})
    assert ok.status_code == 200
    nested = api.get("contacts", params={"$expand": "parentcustomerid_account($select=name;$filter=name eq 'x')"})
    assert "$filter" in _refused(nested)
    unknown = api.get(f"accounts({acme})", params={"$expand": "no_such_nav"})
    assert unknown.status_code == 400 and "no_such_nav" in error_of(unknown)["message"]


def test_duplicate_detection_is_refused(api: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.store.rows("contact"))
    resp = api.post("contacts", json={"lastname": "Dup"}, headers={"MSCRM.SuppressDuplicateDetection": "false"})
    assert "Duplicate detection" in _refused(resp)
    assert len(sandbox.store.rows("contact")) == before
    suppressed = api.post("contacts", json={"lastname": "Dup"}, headers={"MSCRM.SuppressDuplicateDetection": "true"})
    assert suppressed.status_code == 204


def test_fetchxml_inside_a_batch_part_is_refused(api: httpx.Client) -> None:
    boundary = "batch_refusal"
    body = (f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"GET contacts?fetchXml=%3Cfetch%2F%3E HTTP/1.1\r\n\r\n--{boundary}--\r\n")
    resp = api.post("$batch", content=body.encode(), headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})
    assert resp.status_code == 400
    assert "HTTP/1.1 400" in resp.text and "0x80060888" in resp.text and "fetchXml" in resp.text


def test_change_tracking_enabled_follows_the_knob(api: httpx.Client, sandbox: Sandbox) -> None:
    def enabled(name: str) -> bool:
        doc = api.get(f"EntityDefinitions(LogicalName='{name}')", params={"$select": "ChangeTrackingEnabled"})
        assert doc.status_code == 200, doc.text
        return bool(doc.json()["ChangeTrackingEnabled"])

    assert enabled("account") and enabled("contact")
    sandbox.config.change_tracking_disabled = {"account"}
    assert not enabled("account") and enabled("contact")
    tracked = api.get("EntityDefinitions", params={"$select": "LogicalName",
                                                   "$filter": "ChangeTrackingEnabled eq false"}).json()["value"]
    assert [d["LogicalName"] for d in tracked] == ["account"]
