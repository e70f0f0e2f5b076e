"""`make serve` in a subprocess: writes the connection file, answers /health with the key, stops on SIGTERM,
and runs the sandbox with the knobs given in `SANDBOX_*` variables or flags."""

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

from devstack.dataverse_sandbox import SandboxConfig
from devstack.serve import main, sandbox_config

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
    "sandbox_config",
}


@pytest.fixture
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    """`python -m devstack.serve` running; `request.param` may give (extra environment, extra arguments)."""
    extra_env, extra_args = getattr(request, "param", ({}, []))
    stack_json = tmp_path / "local" / "stack.json"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")},
        "PORT": "0",
        "STACK_JSON": str(stack_json),
        **extra_env,
    }
    process = subprocess.Popen(  # noqa: S603 - our own module, the test's own arguments
        [sys.executable, "-m", "devstack.serve", *extra_args],
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
        if process.poll() is None:  # stopped as Ctrl-C would: the stack cleans up (temporary files included)
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
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


def test_sandbox_knobs_come_from_the_environment_and_flags_win() -> None:
    env = {"SANDBOX_LATENCY_MS": "25", "SANDBOX_ERROR_RATE_5XX": "0.1", "SANDBOX_ACCENT_INSENSITIVE": "no"}
    config = sandbox_config(env, {"latency_ms": "40", "throttle_burst": "3", "request_limit": None})
    assert (config.latency_ms, config.error_rate_5xx, config.throttle_burst) == (40.0, 0.1, 3)
    assert config.accent_insensitive is False
    assert config.request_limit == SandboxConfig().request_limit  # not given: the default
    assert sandbox_config({}) == SandboxConfig()
    assert sandbox_config({"SANDBOX_REQUEST_LIMIT": "600", "SANDBOX_CONCURRENCY_LIMIT": "8"}).concurrency_limit == 8
    for bad in ({"SANDBOX_TIMEOUT_RATE": "1.5"}, {"SANDBOX_REQUEST_LIMIT": "many"}, {"SANDBOX_LATENCY_MS": "-1"}):
        with pytest.raises(ValueError, match=next(iter(bad))[len("SANDBOX_") :].lower()):
            sandbox_config(bad)


def test_a_bad_knob_stops_serve_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--error-rate-5xx", "2"])
    assert stopped.value.code == 2
    assert "error_rate_5xx: a rate is between 0 and 1" in capsys.readouterr().err


_KNOBS = ({"SANDBOX_LATENCY_MS": "300", "SANDBOX_REQUEST_LIMIT": "5000"}, ["--request-limit", "4000"])


@pytest.mark.parametrize("served", [_KNOBS], indirect=True)
def test_the_sandbox_runs_with_the_knobs_given(served: tuple[subprocess.Popen[str], dict[str, Any], Path]) -> None:
    _, info, _ = served
    knobs = info["sandbox_config"]
    assert (knobs["latency_ms"], knobs["request_limit"]) == (300.0, 4000)
    headers = {info["api_key_header"]: info["api_key"]}
    with httpx.Client(base_url=info["base_url"], headers=headers, timeout=30) as client:
        started = time.monotonic()
        synced = client.post("contacts/sync", json={"contacts": [{"externalId": "k", "email": "nobody@knobs.example"}]})
        elapsed = time.monotonic() - started
    assert synced.status_code == 200
    assert elapsed >= 0.3  # the match query waited for the sandbox's latency
