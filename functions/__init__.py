"""Triggers only: parse → call the core → shape the reply. One blueprint per module."""

from __future__ import annotations

import importlib

import azure.functions as func

from shared.services.root import ServicesProvider

__all__ = ["MODULES", "blueprints"]

MODULES: tuple[str, ...] = (
    "functions.admin_workspaces",
    "functions.admin_mappings",
    "functions.admin_operations",
    "functions.admin_identities",
    "functions.admin_metadata",
    "functions.reconciliation",
    "functions.genesy_records",
    "functions.writes_worker",
    "functions.genesy_tasks",
    "functions.genesy_activities",
    "functions.genesy_campaign_events",
    "functions.campaign_worker",
    "functions.genesy_webhooks",
    "functions.admin_webhooks",
    "functions.openapi",
    "functions.console",
)


def blueprints(services: ServicesProvider) -> list[func.Blueprint]:
    """Every module's blueprint, its functions calling the use cases with `services()`."""
    return [importlib.import_module(name).blueprint(services) for name in MODULES]
