"""The whole local stack in one context manager, for `make demo`, `make serve` and the benchmarks.

`LocalStack` starts an in-memory Azurite (Table Storage), the Dataverse sandbox (HTTPS with a test CA,
its fake managed-identity endpoint), sets the app's environment (in-process queue), imports
`function_app` only then, builds the `FunctionHost` over the app's own registrations with an admin key,
and creates a demo workspace with default mappings plus a demo export/campaign/user mapping. On exit
(also after Ctrl-C or an exception) it stops everything it started and puts the environment back.

A development tool, never deployed. `function_app.app` can be hosted once per process, so the
`FunctionHost` is built once and reused by later stacks in the same process.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from devstack.azurite import Azurite, start_azurite
from devstack.dataverse_sandbox import Sandbox, SandboxConfig, start_sandbox
from devstack.local_host import FunctionHost
from devstack.sandbox_process import SandboxProcess
from mapping_store.store import MappingStore
from shared.messaging.queue import InProcessQueue
from shared.platform.settings import Settings
from shared.services.root import Services, ServicesProvider

QueueSource = InProcessQueue | Callable[[], InProcessQueue]

__all__ = [
    "DEMO_COMPANY_EXPORT_FIELD",
    "DEMO_CONTACT_EXPORT_FIELD",
    "DEMO_ENGAGEMENT_TEXT",
    "DemoWorkspace",
    "LocalStack",
    "StackInfo",
    "configure_demo_workspace",
    "demo_mapping_documents",
    "function_host",
]

log = logging.getLogger("devstack.stack")

DEMO_CONTACT_EXPORT_FIELD = "country"
DEMO_COMPANY_EXPORT_FIELD = "industry"
DEMO_ENGAGEMENT_TEXT = "Engaged through a Genesy campaign"
DEMO_GENESY_OWNER_EMAIL = "bruno@sales-team.example"
DEMO_SENDER_IDENTITY = "alice@sales-team.example"

ROOT = Path(__file__).resolve().parent.parent
def function_host(services: ServicesProvider, queue: QueueSource, admin_key: str | None) -> FunctionHost:
    """A local host over a new app whose functions use `services` (the app's composition root).

    Build it only after the environment is set: the host resolves `%SETTING%` binding expressions (queue
    names) from the environment when it is built.
    """
    from function_app import build_app

    app_settings = {**_example_settings(), **os.environ}
    return FunctionHost(build_app(services), queue=queue, admin_key=admin_key, app_settings=app_settings)


def _example_settings() -> dict[str, str]:
    """`local.settings.example.json` values: what `func start` would resolve `%SETTING%` bindings from
    (e.g. a timer's schedule) when the environment does not set them."""
    path = ROOT / "local.settings.example.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in values.items() if isinstance(v, str)}


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to drive a running stack (written to `.local/stack.json` by `make serve`)."""

    base_url: str
    api_key: str
    api_key_header: str
    admin_key: str
    workspace_id: str
    dataverse_url: str
    ca_cert: str
    identity_endpoint: str
    identity_header: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DemoWorkspace:
    id: str
    name: str
    api_key: str
    key_header: str


def _user_id(sandbox: Sandbox, fullname: str) -> str:
    for row in sandbox.store.rows("systemuser"):
        if row.get("fullname") == fullname and not row.get("isdisabled"):
            return str(row["systemuserid"])
    raise RuntimeError(f"the sandbox has no enabled user named {fullname!r}")


def demo_mapping_documents(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The four sections of the demo workspace, as an admin would PUT them (valid against the models)."""
    from shared.domain.mappings import default_section

    export = default_section("export").model_dump(mode="json")
    # A match must not rename what the CRM already holds: identity columns only fill empty values.
    for entity, sources in (("contact", {"firstName", "lastName", "email"}), ("company", {"name"})):
        for mapped in export[entity]["fields"]:
            if mapped["source"] in sources:
                mapped["policy"] = "if_empty"
    export["contact"]["fixed"] = [{"column": "leadsourcecode", "value": "Web", "policy": "on_create"}]
    export["contact"]["export_fields"] = [
        {
            "name": DEMO_CONTACT_EXPORT_FIELD,
            "column": "address1_country",
            "options": ["Spain", "France", "Ireland", "Germany", "United Kingdom"],
            "default": "Spain",
        }
    ]
    export["contact"]["engagement"] = [{"column": "description", "value": DEMO_ENGAGEMENT_TEXT}]
    export["company"]["export_fields"] = [
        {
            "name": DEMO_COMPANY_EXPORT_FIELD,
            "column": "industrycode",
            "options": ["Business Services", "Consulting", "Financial", "Eating and Drinking Places"],
            "default": "Business Services",
            "policy": "if_empty",
        }
    ]
    return {
        "sync": {
            "contact": {"mode": "email_or_linkedin_or_name_company"},
            "company": {"mode": "domain_or_name"},
            "contact_sync_back": {"title": "jobtitle", "phone": "telephone1"},
            "company_sync_back": {"employees": "numberofemployees"},
        },
        "export": export,
        "campaign": default_section("campaign").model_dump(mode="json"),
        "users": {
            "identities": [
                {"identity": DEMO_SENDER_IDENTITY, "systemuser_id": _user_id(sandbox, "Alice Martin")},
            ],
            "users": [
                {"genesy_user": DEMO_GENESY_OWNER_EMAIL, "systemuser_id": _user_id(sandbox, "Bruno Díaz")},
            ],
            "owner_field": "ownerEmail",
            "default_owner_id": _user_id(sandbox, "Chloé O'Neil"),
        },
    }


def configure_demo_workspace(store: MappingStore, workspace_id: str, sandbox: Sandbox, actor: str = "devstack") -> None:
    """PUT the demo's four mapping sections on a workspace (with the ETag each GET returned)."""
    for section, document in demo_mapping_documents(sandbox).items():
        current = store.get_section(workspace_id, section)
        store.put_section(workspace_id, section, document, current.etag, actor)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class LocalStack:
    """Azurite + Dataverse sandbox + identity endpoint + the app on the local host, with a demo workspace.

    Use as a context manager. `sandbox_config` tunes the sandbox (latency, limits, faults); `extra_env`
    adds or overrides app settings (e.g. `DATAVERSE_MAX_CONCURRENCY`); `demo_mappings=False` leaves the
    workspace on the default mappings.
    """

    def __init__(
        self,
        *,
        sandbox_config: SandboxConfig | None = None,
        extra_env: Mapping[str, str] | None = None,
        workspace_name: str = "Demo workspace",
        demo_mappings: bool = True,
        table_prefix: str = "demo",
        progress: Callable[[str], None] | None = None,
        external_sandbox: SandboxProcess | None = None,
    ) -> None:
        self._sandbox_config = sandbox_config
        # A sandbox running elsewhere (a benchmark's child process): used instead of an in-process one.
        self._external = external_sandbox
        self._extra_env = dict(extra_env or {})
        self._workspace_name = workspace_name
        self._demo_mappings = demo_mappings
        self._table_prefix = table_prefix
        self._progress = progress or (lambda _line: None)
        self._exit = ExitStack()
        self.admin_key = secrets.token_urlsafe(24)
        self._azurite: Azurite | None = None
        self._sandbox: Sandbox | None = None
        self._host: FunctionHost | None = None
        self._workspace: DemoWorkspace | None = None
        self._base_url: str | None = None
        self._settings: Settings | None = None
        self._services: Services | None = None

    # ---- handles ------------------------------------------------------------------------------------------

    @property
    def azurite(self) -> Azurite:
        if self._azurite is None:
            raise RuntimeError("the stack is not started")
        return self._azurite

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the stack is not started")
        return self._sandbox

    @property
    def host(self) -> FunctionHost:
        if self._host is None:
            raise RuntimeError("the stack is not started")
        return self._host

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the stack is not running")
        return self._services

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the stack is not started")
        return self._settings

    @property
    def workspace(self) -> DemoWorkspace:
        if self._workspace is None:
            raise RuntimeError("the stack is not started")
        return self._workspace

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/api` once `serve_http()` ran."""
        if self._base_url is None:
            raise RuntimeError("the HTTP server is not started: call serve_http()")
        return f"{self._base_url}/api"

    @property
    def api_headers(self) -> dict[str, str]:
        return {self.workspace.key_header: self.workspace.api_key, "Accept": "application/json"}

    def info(self) -> StackInfo:
        return StackInfo(
            base_url=self.base_url,
            api_key=self.workspace.api_key,
            api_key_header=self.workspace.key_header,
            admin_key=self.admin_key,
            workspace_id=self.workspace.id,
            dataverse_url=self.sandbox.url,
            ca_cert=self.sandbox.ca_cert_path,
            identity_endpoint=self.sandbox.identity_endpoint,
            identity_header=self.sandbox.identity_header,
        )

    # ---- life cycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop everything this stack started, in reverse order (idempotent)."""
        self._exit.close()

    def _start(self) -> None:
        self._progress("starting Azurite (Table Storage, in memory)")
        self._azurite = start_azurite()
        self._exit.callback(self._azurite.stop)

        if self._external is None:
            self._progress("starting the Dataverse sandbox (HTTPS) and its identity endpoint")
            self._sandbox = start_sandbox(self._sandbox_config or SandboxConfig())
            self._exit.callback(self._sandbox.stop)
        dataverse_url = self._external.url if self._external else self.sandbox.url
        dataverse_env = self._external.env() if self._external else self.sandbox.env()

        env = {
            "TABLES_CONNECTION_STRING": self._azurite.connection_string,
            "TABLE_PREFIX": self._table_prefix,
            "QUEUE_BACKEND": "inprocess",
            "API_KEY_HASH_SECRET": secrets.token_urlsafe(32),
            **dataverse_env,
            **self._extra_env,
        }
        self._exit.enter_context(_environment(env))

        self._progress("loading the Functions app")
        from shared.domain.mappings import WorkspaceCreate
        from shared.messaging.queue import InProcessQueue
        from shared.platform.settings import load_settings
        from shared.services.root import Services

        self._settings = settings = load_settings()
        queue = InProcessQueue()
        self._services = services = Services(settings, sender=queue)
        self._exit.callback(services.close)
        self._host = function_host(lambda: services, queue, self.admin_key)
        self._exit.callback(self._stop_pump)

        self._progress("creating the demo workspace")
        workspace, api_key = services.store.create_workspace(
            WorkspaceCreate(name=self._workspace_name, environment_url=dataverse_url), "devstack"
        )
        self._workspace = DemoWorkspace(workspace.id, workspace.name, api_key, workspace.key_header)
        if self._demo_mappings:
            configure_demo_workspace(services.store, workspace.id, self.sandbox)

    def _stop_pump(self) -> None:
        if self._host is not None and self._host.pump_running:
            self._host.stop_pump()

    def serve_http(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve the app's HTTP functions on a real socket (port 0 = any free port); returns the `/api` base URL."""
        if self._base_url is not None:
            return self.base_url
        base, stop = self.host.serve_in_thread(port, host)
        self._exit.callback(stop)
        self._base_url = base
        return self.base_url

    def start_pump(self) -> None:
        """Feed Service Bus triggers continuously (stopped with the stack)."""
        if not self.host.pump_running:
            self.host.start_pump()
