"""Triggers only: parse → call the core → shape the reply. One blueprint per module."""

from __future__ import annotations

import importlib

import azure.functions as func

__all__ = ["BLUEPRINTS", "MODULES"]

MODULES: tuple[str, ...] = (
    "functions.admin_workspaces",
    "functions.admin_mappings",
    "functions.admin_operations",
    "functions.reconciliation",
    "functions.genesy_records",
    "functions.writes_worker",
    "functions.genesy_tasks",
    "functions.genesy_activities",
    "functions.campaign_worker",
)

BLUEPRINTS: list[func.Blueprint] = [importlib.import_module(name).bp for name in MODULES]
