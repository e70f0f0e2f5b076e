"""The app registers exactly the surfaces of the design: Genesy's Custom CRM API (anonymous: our own key
check), the admin API (function keys), the admin console (anonymous at the host, Easy Auth in the app), two
session-enabled queue triggers and the reconciliation timer."""

from __future__ import annotations

import typing
from typing import Any

GENESY = {
    ("GET", "health"),
    ("HEAD", "health"),
    ("GET", "users"),
    ("POST", "companies"),
    ("PUT", "companies"),
    ("POST", "companies/sync"),
    ("POST", "companies/batch"),
    ("POST", "contacts"),
    ("PUT", "contacts"),
    ("POST", "contacts/sync"),
    ("POST", "contacts/batch"),
    ("POST", "associations"),
    ("POST", "tasks"),
    ("GET", "tasks/{id}"),
    ("PATCH", "tasks/{id}"),
    ("POST", "tasks/batch"),
    ("PATCH", "tasks/batch"),
    ("POST", "activities"),
    ("GET", "activities/{id}"),
    ("POST", "campaign-events"),
    ("POST", "webhooks/genesy/{workspace_id}"),  # Genesy webhooks: the workspace's webhook secret
    ("GET", "openapi.json"),  # our extension: campaign events over HTTPS, the workspace key
}

# The admin console: anonymous at the host, signed in by the app (Easy Auth's principal and app role).
CONSOLE = {
    ("GET", "console"),
    ("GET", "console/{*path}"),
    ("POST", "console/api/workspaces"),
    ("PATCH", "console/api/workspaces/{workspace_id}"),
    ("POST", "console/api/workspaces/{workspace_id}/keys"),
    ("POST", "console/api/workspaces/{workspace_id}/connection-test"),
    ("PUT", "console/api/workspaces/{workspace_id}/mappings/{section}"),
    ("POST", "console/api/workspaces/{workspace_id}/mappings/{section}/restore"),
    ("POST", "console/api/workspaces/{workspace_id}/retry"),
    ("POST", "console/api/workspaces/{workspace_id}/reconcile"),
    ("POST", "console/api/queues/{queue}/replay"),
}


def test_the_registered_functions_are_the_designed_surfaces(function_host: Any) -> None:
    functions = list(function_host.functions.values())
    http = [f for f in functions if f.trigger_type == "httpTrigger"]
    genesy = {(m, f.route) for f in http if f.auth_level == "anonymous" for m in (f.methods or ())}
    assert genesy == GENESY | CONSOLE
    admin = [f for f in http if f.auth_level != "anonymous"]
    assert admin and all(f.route.startswith("manage/") and f.auth_level == "function" for f in admin)
    queues = {f.queue_name: f.sessions_enabled for f in functions if f.trigger_type == "serviceBusTrigger"}
    assert queues == {"genesy-writes": True, "campaign-updates": True}
    assert [f.name for f in functions if f.trigger_type == "timerTrigger"] == ["reconciliation"]


def test_every_trigger_parameter_has_a_type_the_functions_worker_accepts(function_host: Any) -> None:
    """The Python worker checks each trigger parameter's annotation with the binding's converter when it
    indexes the app, and refuses the function otherwise (e.g. `list[ServiceBusMessage]` for a batch: only
    `typing.List[...]` passes) — the local host does not, so check it here."""
    from azure.functions import meta

    checked = 0
    for info in function_host.functions.values():
        trigger = next(b for b in info.bindings if str(b["type"]).endswith("Trigger"))
        converter = meta.get_binding_registry().get(trigger["type"])
        assert converter is not None, trigger["type"]
        hints = typing.get_type_hints(info.user_function)
        annotation = hints[info.binding_name]
        assert converter.check_input_type_annotation(annotation), (info.name, annotation)
        checked += 1
    writes = function_host.functions["writes_worker"]
    assert str(next(b for b in writes.bindings if b["type"] == "serviceBusTrigger")["cardinality"]).lower() == "many"
    assert checked == len(function_host.functions)
