"""Post-deploy smoke test (azd `postdeploy` hook, infra/hooks/postdeploy.sh): creates a workspace through
the admin API, calls `GET /health` with its key, and prints what to paste into Genesy.

Reads what `azd` exports to hooks (the outputs of infra/main.bicep): `AZURE_RESOURCE_GROUP`,
`AZURE_FUNCTION_APP_NAME`, `GENESY_BASE_URL`, `AUTH_CLIENT_ID`; and `DYNAMICS_ENVIRONMENT_URL`
(`azd env set DYNAMICS_ENVIRONMENT_URL https://<org>.crm.dynamics.com`). Without it, only the app's
reachability is checked. The function key comes from `az functionapp keys list`; with App Service
Authentication on, an Entra token from `az account get-access-token` goes with it. The API key is printed
once, to the terminal, and stored nowhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["main"]


def _az(*args: str) -> str:
    """Run the Azure CLI and return its trimmed stdout."""
    az = shutil.which("az")
    if az is None:
        raise SystemExit("smoke: the Azure CLI (az) is required")
    done = subprocess.run([az, *args], check=True, capture_output=True, text=True)  # noqa: S603 (fixed argv)
    return done.stdout.strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SystemExit(f"smoke: {name} is not set (run `azd provision` first)")
    return value


def admin_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The function key, plus an Entra bearer token when Easy Auth guards the admin surface."""
    key = _az(
        "functionapp", "keys", "list",
        "--resource-group", _required(env, "AZURE_RESOURCE_GROUP"),
        "--name", _required(env, "AZURE_FUNCTION_APP_NAME"),
        "--query", "functionKeys.default", "-o", "tsv",
    )  # fmt: skip
    headers = {"x-functions-key": key, "x-actor": "azd-postdeploy"}
    auth_client_id = env.get("AUTH_CLIENT_ID", "").strip()
    if auth_client_id:
        token = _az(
            "account", "get-access-token", "--scope", f"api://{auth_client_id}/user_impersonation",
            "--query", "accessToken", "-o", "tsv",
        )  # fmt: skip
        headers["Authorization"] = f"Bearer {token}"
    return headers


def run(env: Mapping[str, str], client: httpx.Client) -> int:
    """The smoke test against `GENESY_BASE_URL`; 0 when the app answered as expected."""
    base = _required(env, "GENESY_BASE_URL").rstrip("/")
    unauthenticated = client.get(f"{base}/health")
    # Without a key the app refuses (401): it is up, its settings loaded and the Genesy route is not behind Easy Auth.
    print(f"GET /health without a key: {unauthenticated.status_code} (expected 401)")
    if unauthenticated.status_code != 401:
        return 1
    environment_url = env.get("DYNAMICS_ENVIRONMENT_URL", "").strip()
    if not environment_url:
        print("DYNAMICS_ENVIRONMENT_URL is not set: no workspace created.")
        print("  azd env set DYNAMICS_ENVIRONMENT_URL https://<org>.crm.dynamics.com && azd hooks run postdeploy")
        return 0
    name = env.get("GENESY_WORKSPACE_NAME", "").strip() or f"Genesy ({env.get('AZURE_ENV_NAME', 'azd')})"
    created = client.post(
        f"{base}/manage/workspaces",
        headers=admin_headers(env),
        json={"name": name, "environment_url": environment_url},
    )
    if created.status_code != 201:
        print(f"POST /manage/workspaces: {created.status_code} {created.text[:500]}", file=sys.stderr)
        return 1
    body: dict[str, Any] = created.json()
    workspace, api_key = body["workspace"], str(body["api_key"])
    key_header = str(workspace.get("key_header") or "X-API-Key")
    health = client.get(f"{base}/health", headers={key_header: api_key})
    print(f"GET /health with the workspace key: {health.status_code} {health.text[:200]}")
    if health.status_code != 200:
        return 1
    org = environment_url.rstrip("/")
    print(
        "\nPaste into Genesy (Settings → Integrations → Custom CRM), see docs/connecting-genesy.md:\n"
        f"  Base URL:        {base}\n"
        f"  API key:         {api_key}   (shown once; only its hash is stored)\n"
        f"  API key header:  {key_header}\n"
        f"  Contact link:    {org}/main.aspx?pagetype=entityrecord&etn=contact&id={{{{crmId}}}}\n"
        f"  Company link:    {org}/main.aspx?pagetype=entityrecord&etn=account&id={{{{crmId}}}}\n"
        f"Workspace id: {workspace['id']} — set its mappings next (docs/mappings.md)."
    )
    return 0


def main() -> int:
    with httpx.Client(timeout=60.0) as client:
        return run(os.environ, client)


if __name__ == "__main__":
    sys.exit(main())
