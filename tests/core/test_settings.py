import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.platform.settings import ENVIRONMENT_VARIABLES, SettingsError, load_settings

BASE = {"API_KEY_HASH_SECRET": "x" * 16, "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true"}
ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_typed_values() -> None:
    settings = load_settings({**BASE, "QUEUE_BACKEND": "inprocess", "DATAVERSE_MAX_CONCURRENCY": "4"})
    assert settings.dataverse_max_concurrency == 4
    assert settings.writes_queue == "genesy-writes" and settings.campaign_queue == "campaign-updates"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TABLES_CONNECTION_STRING": "x", "QUEUE_BACKEND": "inprocess"}, "API_KEY_HASH_SECRET"),
        ({**BASE, "API_KEY_HASH_SECRET": "short", "QUEUE_BACKEND": "inprocess"}, "API_KEY_HASH_SECRET"),
        ({"API_KEY_HASH_SECRET": "x" * 16, "QUEUE_BACKEND": "inprocess"}, "TABLES_CONNECTION_STRING"),
        ({**BASE, "QUEUE_BACKEND": "inprocess", "DATAVERSE_MAX_CONCURRENCY": "many"}, "DATAVERSE_MAX_CONCURRENCY"),
        ({**BASE, "QUEUE_BACKEND": "inprocess", "WRITE_BUDGET_SECONDS": "-1"}, "WRITE_BUDGET_SECONDS"),
        ({**BASE, "QUEUE_BACKEND": "kafka"}, "QUEUE_BACKEND"),
        ({**BASE}, "ServiceBusConnection__fullyQualifiedNamespace"),
        ({**BASE, "QUEUE_BACKEND": "inprocess", "TABLE_PREFIX": "no-dashes"}, "TABLE_PREFIX"),
        ({**BASE, "QUEUE_BACKEND": "inprocess", "TABLES_ENDPOINT": "ftp://x"}, "TABLES_ENDPOINT"),
    ],
)
def test_a_missing_or_malformed_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_values_are_trimmed_and_blank_ones_count_as_unset() -> None:
    settings = load_settings({**BASE, "QUEUE_BACKEND": " inprocess ", "TABLE_PREFIX": "  ", "AZURE_CLIENT_ID": ""})
    assert settings.queue_backend == "inprocess" and settings.table_prefix == "gd"
    assert settings.managed_identity_client_id is None


def test_a_given_mapping_is_read_instead_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRITES_QUEUE_NAME", "from-os-environ")
    assert load_settings({**BASE, "QUEUE_BACKEND": "inprocess"}).writes_queue == "genesy-writes"


def test_an_invalid_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError, match="API_KEY_HASH_SECRET") as raised:
        load_settings({**BASE, "API_KEY_HASH_SECRET": "too-short-value", "QUEUE_BACKEND": "inprocess"})
    assert "too-short-value" not in str(raised.value)


def test_the_example_settings_document_every_variable() -> None:
    example = (ROOT / "local.settings.example.json").read_text()
    assert [name for name in ENVIRONMENT_VARIABLES if f'"{name}"' not in example] == []


def test_the_app_refuses_to_start_under_the_host_without_its_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env["FUNCTIONS_WORKER_RUNTIME"] = "python"
    run = subprocess.run(
        [sys.executable, "-c", "import function_app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "API_KEY_HASH_SECRET" in run.stderr
