"""What to do with a parsed request: static files (static) or an app (api)."""
from __future__ import annotations

from typing import Any

from framework.server.contract import Plan
from framework.web import db
from framework.web.app import load_app_modules
from handlers.api import Dispatcher


def app_settings(app_names: list[str]) -> dict[str, tuple[Any, type, str]]:
    """The extra keys the enabled apps declare (``SETTINGS`` in each app package)."""
    schema: dict[str, tuple[Any, type, str]] = {}
    for module in load_app_modules(app_names):
        schema.update(getattr(module, "SETTINGS", {}))
    return schema


def build_plan(settings: dict[str, Any]) -> Plan:
    """Load the enabled apps, bring their schemas up to date, and assemble the dispatcher.

    Runs in the master before any fork; the connection it opens is closed before workers
    start, so no sqlite handle crosses a fork.
    """
    apps = [module.app for module in load_app_modules(settings["apps"])]
    conn = db.open_connection(settings)
    try:
        for app in apps:
            db.migrate(conn, app.name, app.schema)
    finally:
        conn.close()
    for app in apps:
        for hook in app.startup:
            hook(settings)
    db.close_connection()
    services = [service for app in apps for service in app.services]
    return Plan(settings, Dispatcher(settings, apps), services)
