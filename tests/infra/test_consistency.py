"""infra/ against the code: the settings, queues, roles, secrets and Easy Auth paths must agree.

The Bicep CLI cannot run here, so this reads the Bicep text (one `KEY: value` per line, as infra/ is
written) and the code with the standard library only (ast, re, json): deterministic and fast.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

# Settings the Functions host (not the app) reads; infra may set them without the code reading them.
# Settings the platform reads rather than the code: the host's, and glibc's MALLOC_* (at process start).
HOST_SETTING_PREFIXES = ("AzureWebJobsStorage__", "APPLICATIONINSIGHTS_", "FUNCTIONS_", "WEBSITE_", "MALLOC_")
# Identity-based connection settings the host reads for `connection="<name>"`, besides the namespace.
IDENTITY_CONNECTION_SUFFIXES = ("fullyQualifiedNamespace", "credential", "clientId")
# Settings that carry keys: the code accepts them for local use; infra must never set them.
KEY_SETTINGS = {"TABLES_CONNECTION_STRING", "SERVICEBUS_CONNECTION_STRING"}

# Built-in role definition ids (Azure docs, "Azure built-in roles").
ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "serviceBusDataSender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "serviceBusDataReceiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# Connection (an app setting) → (the `existing` resource in roles.bicep it reaches, the roles it needs).
CONNECTION_ROLES = {
    "AzureWebJobsStorage__clientId": ("storage", {"storageBlobDataOwner", "storageQueueDataContributor"}),
    "TABLES_ENDPOINT": ("storage", {"storageTableDataContributor"}),
    "ServiceBusConnection__clientId": ("serviceBus", {"serviceBusDataSender", "serviceBusDataReceiver"}),
    "API_KEY_HASH_SECRET": ("vault", {"keyVaultSecretsUser"}),
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": ("applicationInsights", {"monitoringMetricsPublisher"}),
}
# roles.bicep parameter naming each `existing` resource → main.bicep module output it must come from.
ROLE_SCOPE_SOURCES = {
    "storageAccountName": "storage.outputs.name",
    "serviceBusNamespaceName": "serviceBus.outputs.name",
    "keyVaultName": "keyVault.outputs.name",
    "applicationInsightsName": "monitoring.outputs.applicationInsightsName",
}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _block(text: str, opener: str) -> str:
    """The text between `opener` (ending in `{` or `[`) and its matching bracket."""
    start = text.index(opener) + len(opener)
    close = {"{": "}", "[": "]"}[opener[-1]]
    depth = 1
    for i in range(start, len(text)):
        if text[i] == opener[-1]:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return text[start:i]
    raise AssertionError(f"unbalanced block after {opener!r}")


def _entries(block: str) -> dict[str, str]:
    """`KEY: value` lines of a Bicep object literal (first level only)."""
    entries: dict[str, str] = {}
    depth = 0
    for line in block.splitlines():
        stripped = re.sub(r"\s+//[^']*$", "", line).strip()  # a trailing comment (not `//` inside a string)
        match = re.match(r"^'?([A-Za-z0-9_]+)'?\s*:\s*(.+?)\s*$", stripped)
        if depth == 0 and match:
            entries[match.group(1)] = match.group(2)
        depth += stripped.count("{") + stripped.count("[") - stripped.count("}") - stripped.count("]")
    return entries


def _module_params(name: str) -> dict[str, str]:
    """The params main.bicep passes to `module <name>`."""
    main = _read(INFRA / "main.bicep")
    module = main[main.index(f"module {name} ") :]
    return _entries(_block(module, "params: {"))


def _main_vars() -> dict[str, str]:
    return dict(re.findall(r"^var (\w+) = (.+)$", _read(INFRA / "main.bicep"), flags=re.MULTILINE))


def _resolve(expression: str) -> str:
    """A main.bicep expression as a literal: a quoted string, a number, or a `var` holding one."""
    expression = expression.strip()
    variables = _main_vars()
    if expression in variables:
        return _resolve(variables[expression])
    if re.fullmatch(r"'[^']*'", expression):
        return expression[1:-1]
    if re.fullmatch(r"\d+", expression):
        return expression
    raise AssertionError(f"not a literal in main.bicep: {expression}")


@cache
def code_settings() -> dict[str, bool]:
    """Every `Field(..., validation_alias=NAME)` of shared/platform/settings.py → whether it has a default."""
    tree = ast.parse(_read(ROOT / "shared" / "platform" / "settings.py"))
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field":
            for keyword in node.keywords:
                if keyword.arg == "validation_alias" and isinstance(keyword.value, ast.Constant):
                    found[str(keyword.value.value)] = bool(node.args)
    assert len(found) > 15, "settings.py parsed badly"
    return found


@cache
def code_defaults() -> dict[str, object]:
    tree = ast.parse(_read(ROOT / "shared" / "platform" / "settings.py"))
    defaults: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field" and node.args:
            alias = next(k.value for k in node.keywords if k.arg == "validation_alias")
            if isinstance(alias, ast.Constant) and isinstance(node.args[0], ast.Constant):
                defaults[str(alias.value)] = node.args[0].value
    return defaults


def _functions_source() -> str:
    return "\n".join(_read(p) for p in sorted((ROOT / "functions").glob("*.py")))


@cache
def trigger_settings() -> set[str]:
    """Host-resolved settings the triggers reference: `%NAME%` and the identity-based connections."""
    source = _functions_source()
    names = set(re.findall(r'"%(\w+)%"', source))
    for connection in set(re.findall(r'connection="(\w+)"', source)):
        names |= {f"{connection}__{suffix}" for suffix in IDENTITY_CONNECTION_SUFFIXES}
    assert {"WRITES_QUEUE_NAME", "CAMPAIGN_QUEUE_NAME", "RECONCILE_SCHEDULE"} <= names
    return names


@cache
def infra_settings() -> dict[str, str]:
    return _entries(_block(_read(MODULES / "functionapp.bicep"), "var appSettings = {"))


def local_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads(_read(ROOT / "local.settings.example.json"))["Values"]
    return values


def documented() -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", _read(ROOT / "docs" / "configuration.md"), flags=re.MULTILINE))


# --- settings ---------------------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_set_by_infra_or_has_a_documented_default() -> None:
    missing = [
        name
        for name, has_default in code_settings().items()
        if name not in infra_settings() and not (has_default and name in documented())
    ]
    assert not missing, f"read by the code, neither set by infra nor documented with a default: {missing}"


def test_every_host_setting_the_triggers_reference_is_set_by_infra() -> None:
    missing = sorted(trigger_settings() - set(infra_settings()))
    assert not missing, f"the triggers reference settings infra does not set: {missing}"


def test_local_settings_example_lists_every_setting_the_code_reads() -> None:
    wanted = set(code_settings()) | {n for n in trigger_settings() if "__" not in n}
    wanted |= {n for n in trigger_settings() if n.endswith("__fullyQualifiedNamespace")}
    missing = sorted(wanted - set(local_settings()))
    assert not missing, f"missing from local.settings.example.json: {missing}"


def test_infra_sets_nothing_that_nothing_reads() -> None:
    read = set(code_settings()) | trigger_settings()
    unread = [n for n in infra_settings() if n not in read and not n.startswith(HOST_SETTING_PREFIXES)]
    assert not unread, f"infra sets settings neither the code nor the host reads: {unread}"


def test_infra_sets_no_key_based_connection() -> None:
    assert not KEY_SETTINGS & set(infra_settings())
    assert infra_settings()["QUEUE_BACKEND"] == "'servicebus'"
    assert infra_settings()["ServiceBusConnection__credential"] == "'managedidentity'"
    assert infra_settings()["AzureWebJobsStorage__credential"] == "'managedidentity'"


def test_infra_values_match_the_code_defaults() -> None:
    """Literal values infra sets equal the code's defaults (a change shows up here, not in production)."""
    for name, default in code_defaults().items():
        value = infra_settings().get(name)
        if value is None or not value.startswith("'"):
            continue
        expected = str(int(default)) if isinstance(default, float) and default.is_integer() else str(default)
        assert value.strip("'") == expected, f"{name}: infra {value}, code default {default!r}"


def test_the_secret_is_a_key_vault_reference_and_the_dataverse_client_id_is_the_identity() -> None:
    assert infra_settings()["API_KEY_HASH_SECRET"] == "'@Microsoft.KeyVault(SecretUri=${apiKeyHashSecretUri})'"
    assert "AZURE_CLIENT_ID" in code_settings(), "settings.py reads the user-assigned identity's client id here"
    for name in ("AZURE_CLIENT_ID", "ServiceBusConnection__clientId", "AzureWebJobsStorage__clientId"):
        assert infra_settings()[name] == "identityClientId", name
    assert infra_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identityClientId};Authorization=AAD'"
    )
    params = _module_params("functionApp")
    assert params["identityClientId"] == "identity.outputs.clientId"
    assert params["identityId"] == "identity.outputs.id"
    assert "keyVaultReferenceIdentity: identityId" in _read(MODULES / "functionapp.bicep")


# --- queues -----------------------------------------------------------------------------------------


def test_every_trigger_queue_exists_with_sessions_and_the_codes_delivery_count() -> None:
    app_params = _module_params("functionApp")
    bus_params = _module_params("serviceBus")
    declared = set(re.findall(r"queue_name=\"%(\w+)%\"", _functions_source()))
    assert declared == {"WRITES_QUEUE_NAME", "CAMPAIGN_QUEUE_NAME"}
    provisioned = {_resolve(q) for q in bus_params["queueNames"].strip("[]").split(",")}
    for setting in declared:
        queue = _resolve(app_params[infra_settings()[setting]])
        assert queue in provisioned, f"{setting}={queue} is not a queue infra creates"
        assert queue == code_defaults()[setting], f"{setting}: infra {queue}, code default {code_defaults()[setting]}"
    queue_resource = _block(_read(MODULES / "servicebus.bicep"), "[for queueName in queueNames: {")
    properties = _entries(_block(queue_resource, "properties: {"))
    assert properties["requiresSession"] == "true"
    assert properties["requiresDuplicateDetection"] == "true"
    assert properties["deadLetteringOnMessageExpiration"] == "true"
    assert properties["maxDeliveryCount"] == "maxDeliveryCount"
    assert bus_params["maxDeliveryCount"] == app_params["maxDeliveryCount"] == "maxDeliveryCount"
    assert int(_resolve("maxDeliveryCount")) == code_defaults()["SERVICEBUS_MAX_DELIVERY_COUNT"]
    assert infra_settings()["SERVICEBUS_MAX_DELIVERY_COUNT"] == "string(maxDeliveryCount)"
    assert "disableLocalAuth: true" in _read(MODULES / "servicebus.bicep")
    assert "name: 'Standard'" in _read(MODULES / "servicebus.bicep")


def _iso_seconds(duration: str) -> int:
    match = re.fullmatch(r"P(?:T)?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match, duration
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _timespan_seconds(value: str) -> int:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + int(float(seconds))


def test_lock_duration_fits_the_write_budget_and_host_json() -> None:
    budget = int(_resolve(_module_params("functionApp")["writeBudgetSeconds"]))
    assert budget == code_defaults()["WRITE_BUDGET_SECONDS"]
    assert infra_settings()["WRITE_BUDGET_SECONDS"] == "string(writeBudgetSeconds)"
    lock = _iso_seconds(_resolve(_module_params("serviceBus")["lockDuration"]))
    assert budget <= lock <= 300, "lock at most PT5M (Service Bus) and at least one message's budget"
    host = json.loads(_read(ROOT / "host.json"))
    renewal = _timespan_seconds(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    assert renewal >= budget, "the host must keep renewing the lock for the whole budget"
    assert _timespan_seconds(host["functionTimeout"]) > budget
    window = _iso_seconds(_resolve(_module_params("serviceBus")["duplicateDetectionWindow"]))
    assert window >= 3600, "duplicate detection must cover Genesy's retries"


# --- identity and roles -----------------------------------------------------------------------------


def _role_assignments() -> list[tuple[str, set[str], str]]:
    """(scope resource, role keys, name expression) of each roleAssignments resource in roles.bicep."""
    text = _read(MODULES / "roles.bicep")
    found = []
    for chunk in text.split("\nresource ")[1:]:
        if "Microsoft.Authorization/roleAssignments" not in chunk.splitlines()[0]:
            continue
        scope = re.search(r"scope: (\w+)", chunk)
        name = re.search(r"name: (guid\(.+\))", chunk)
        assert scope and name, chunk
        found.append((scope.group(1), set(re.findall(r"roles\.(\w+)", chunk)), name.group(1)))
    return found


def test_every_connection_has_its_roles_on_the_identity_it_uses() -> None:
    text = _read(MODULES / "roles.bicep")
    for key, role_id in ROLE_IDS.items():
        assert re.search(rf"{key}: '{role_id}'", text), f"{key} must be the built-in role {role_id}"
    granted: dict[str, set[str]] = {}
    for scope, keys, name in _role_assignments():
        granted.setdefault(scope, set()).update(keys)
        assert re.fullmatch(rf"guid\({scope}\.id, principalId, (role|roles\.\w+)\)", name), name
    for connection, (scope, needed) in CONNECTION_ROLES.items():
        assert connection in infra_settings(), connection
        assert needed <= granted.get(scope, set()), f"{connection} needs {needed - granted.get(scope, set())}"
    params = _module_params("roles")
    assert params["principalId"] == "identity.outputs.principalId", "roles go to the identity the connections use"
    for param, source in ROLE_SCOPE_SOURCES.items():
        assert params[param] == source, param
    assert "allowSharedKeyAccess: false" in _read(MODULES / "storage.bicep")
    assert "DisableLocalAuth: true" in _read(MODULES / "monitoring.bicep")
    assert "enableRbacAuthorization: true" in _read(MODULES / "keyvault.bicep")


# --- secrets ----------------------------------------------------------------------------------------

FORBIDDEN = ("listKeys(", "listConnectionStrings(", "AccountKey=", "SharedAccessKey", "primaryConnectionString")


def _infra_files() -> list[Path]:
    files = [p for p in INFRA.rglob("*") if p.is_file()]
    return [*files, ROOT / "azure.yaml"]


@pytest.mark.parametrize("path", _infra_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_key_or_secret_value_in_infra(path: Path) -> None:
    text = _read(path)
    for needle in FORBIDDEN:
        assert needle not in text, f"{needle} in {path.name}"
    literal = re.search(
        r"(?i)\b(password|secretValue|apiKeyHashSecret|API_KEY_HASH_SECRET)\b\"?\s*[:=]\s*[\"']\w", text
    )
    assert not literal, f"a literal secret in {path.name}: {literal.group(0) if literal else ''}"
    assert not re.search(r"(?=[\w+]*\d)(?=[\w+]*[a-z])(?=[\w+]*[A-Z])[A-Za-z0-9+]{40,}", text), (
        f"a key-like literal in {path.name}"
    )
    assert not re.search(r"@secure\(\)\n(@description\(.*\)\n)?param \w+ string = '", text), "a secure default"


def test_the_generated_secret_goes_only_to_key_vault() -> None:
    main = _read(INFRA / "main.bicep")
    assert re.search(r"@secure\(\)\n(@description\(.*\)\n)?param apiKeyHashSecret string = newGuid\(\)", main)
    uses = [line.strip() for line in main.splitlines() if re.search(r"\bapiKeyHashSecret\b", line)]
    assert uses == ["param apiKeyHashSecret string = newGuid()", "secretValue: apiKeyHashSecret"], uses
    vault = _read(MODULES / "keyvault.bicep")
    assert "@secure()\nparam secretValue string" in vault
    assert [line.strip() for line in vault.splitlines() if "secretValue" in line] == [
        "param secretValue string",
        "value: secretValue",
    ]
    assert 'apiKeyHashSecret"' not in _read(INFRA / "main.parameters.json")
    for output in re.findall(r"^output (\w+) \w+ = (.+)$", main, flags=re.MULTILINE):
        assert not re.search(r"(?i)secret|password|connectionstring|key\b", output[0] + output[1]), output


# --- Easy Auth --------------------------------------------------------------------------------------


def _routes() -> list[tuple[str, bool]]:
    """(route, anonymous) of every HTTP function in functions/*.py."""
    source = _functions_source()
    routes = []
    for route, auth in re.findall(r"@bp\.route\(route=\"([^\"]+)\"[^)]*auth_level=([\w.]+)\)", source):
        routes.append((route, auth in ("ANON", "func.AuthLevel.ANONYMOUS")))
    assert len(routes) > 30
    return routes


def _excluded(path: str, excluded: list[str]) -> bool:
    return any(path == e or (e.endswith("/*") and path.startswith(e[:-1])) for e in excluded)


def test_easy_auth_guards_the_admin_surface_and_leaves_genesy_routes_to_their_keys() -> None:
    auth = _read(MODULES / "auth.bicep")
    excluded = [e.strip().strip("'") for e in _block(auth, "var excludedPaths = [").split("\n") if e.strip()]
    assert "requireAuthentication: true" in auth
    assert "unauthenticatedClientAction: 'Return401'" in auth
    assert "excludedPaths: excludedPaths" in auth
    for route, anonymous in _routes():
        path = "/api/" + re.sub(r"\{[^}]+\}", "x", route)
        if route.startswith("manage/"):
            assert not anonymous, route
            assert not _excluded(path, excluded), f"admin route {route} must stay behind Entra ID"
        elif route == "console" or route.startswith("console/"):
            # The console: anonymous at the host (a browser holds no function key), signed in by Easy Auth.
            assert anonymous, route
            assert not _excluded(path, excluded), f"console route {route} must stay behind Entra ID"
        else:
            assert anonymous, route
            assert _excluded(path, excluded), f"Genesy route {route} must be excluded from Easy Auth"
    assert "module auth 'modules/auth.bicep' = if (!empty(authClientId))" in _read(INFRA / "main.bicep")


def _postprovision(tmp_path: Path, env: dict[str, str], existing: str) -> tuple[int, list[list[str]], str]:
    """Run the postprovision hook with a stand-in `az` that answers `ad app show` with `existing` and logs calls."""
    import json as jsonlib
    import os
    import subprocess

    log = tmp_path / "az-calls.jsonl"
    fake = tmp_path / "az"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"if sys.argv[1:3] == ['ad', 'app'] and sys.argv[3] == 'show':\n    print({existing!r}, end='')\n"
    )
    fake.chmod(0o755)
    result = subprocess.run(  # noqa: S603 - our own hook script, run by the system shell
        ["/bin/sh", str(ROOT / "infra" / "hooks" / "postprovision.sh")],
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    calls = [jsonlib.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result.returncode, calls, result.stdout + result.stderr


def test_postprovision_adds_the_console_sign_in_callback_once_and_keeps_other_redirect_uris(tmp_path: Path) -> None:
    assert "postprovision" in (ROOT / "azure.yaml").read_text()
    env = {"AUTH_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
           "GENESY_BASE_URL": "https://gd-app.azurewebsites.net/api"}
    callback = "https://gd-app.azurewebsites.net/.auth/login/aad/callback"
    code, calls, out = _postprovision(tmp_path, env, "https://other.example/cb\n")
    assert code == 0, out
    update = calls[-1]
    assert update[:5] == ["ad", "app", "update", "--id", env["AUTH_CLIENT_ID"]]
    uris = update[update.index("--web-redirect-uris") + 1 : update.index("--enable-id-token-issuance")]
    assert uris == ["https://other.example/cb", callback]
    assert update[-2:] == ["--enable-id-token-issuance", "true"]

    (tmp_path / "az-calls.jsonl").unlink()
    code, calls, out = _postprovision(tmp_path, env, f"https://other.example/cb\n{callback}\n")
    uris = calls[-1][calls[-1].index("--web-redirect-uris") + 1 : calls[-1].index("--enable-id-token-issuance")]
    assert code == 0 and uris == ["https://other.example/cb", callback]  # already there: not added twice


def test_postprovision_does_nothing_without_easy_auth(tmp_path: Path) -> None:
    code, calls, out = _postprovision(tmp_path, {"AUTH_CLIENT_ID": "none"}, "")
    assert code == 0 and calls == [] and "nothing to do" in out
