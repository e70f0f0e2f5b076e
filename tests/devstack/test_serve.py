"""`make serve` in a subprocess: writes the connection file, answers /health with the key, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "base_url",
    "api_key",
    "api_key_header",
    "admin_key",
    "workspace_id",
    "dataverse_url",
    "ca_cert",
    "identity_endpoint",
    "identity_header",
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    stack_json = tmp_path / "local" / "stack.json"
    env = {**os.environ, "PORT": "0", "STACK_JSON": str(stack_json)}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not stack_json.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"serve did not write {stack_json} (exit {process.poll()}):\n{output[-3000:]}")
            time.sleep(0.1)
        yield process, json.loads(stack_json.read_text()), stack_json
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        if process.stdout:
            process.stdout.close()


def test_serve_writes_the_connection_file_and_answers_health(
    served: tuple[subprocess.Popen[str], dict[str, Any], Path],
) -> None:
    process, info, stack_json = served
    assert set(info) == KEYS
    assert info["base_url"].startswith("http://127.0.0.1:") and info["base_url"].endswith("/api")
    assert info["dataverse_url"].startswith("https://127.0.0.1:")
    assert Path(info["ca_cert"]).is_file()
    assert stack_json.stat().st_mode & 0o077 == 0  # it holds keys: owner only

    with httpx.Client(base_url=info["base_url"], timeout=30) as client:
        ok = client.get("health", headers={info["api_key_header"]: info["api_key"]})
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        assert client.get("health").status_code == 401
        assert client.get("health", headers={info["api_key_header"]: "gdk_0000_wrong"}).status_code == 401
        admin = client.get(
            f"manage/workspaces/{info['workspace_id']}/mappings", headers={"x-functions-key": info["admin_key"]}
        )
        assert admin.status_code == 200
        assert client.get(f"manage/workspaces/{info['workspace_id']}/mappings").status_code == 401

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-2000:]
    assert "stopped." in output
    assert not stack_json.exists()


def test_the_served_stack_pumps_queued_writes(served: tuple[subprocess.Popen[str], dict[str, Any], Path]) -> None:
    _, info, _ = served
    headers = {info["api_key_header"]: info["api_key"]}
    with httpx.Client(base_url=info["base_url"], headers=headers, timeout=30) as client:
        company = {"externalId": "srv-1", "name": "Pumped Ltd", "domain": "pumped.example"}
        crm_id = client.post("companies", json={"companies": [company]}).json()["results"][0]["crmId"]
        deadline = time.monotonic() + 60
        found: list[Any] = []
        while not found and time.monotonic() < deadline:
            found = client.post("companies/batch", json={"ids": [crm_id]}).json()["results"]
            time.sleep(0.1)
    assert found and found[0]["name"] == "Pumped Ltd"
