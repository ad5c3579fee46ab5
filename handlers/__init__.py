"""What to do with a parsed request: static files (static), an app (api), a WSGI app (wsgi)."""
from __future__ import annotations

import pkgutil
from typing import Any

from framework.server.config import Schema, as_setting
from framework.server.contract import Plan
from framework.web import db
from framework.web.app import load_app_modules
from handlers.api import Dispatcher
from handlers.static import document_root
from handlers.wsgi import WsgiBridge, WsgiSite, load_app


def app_settings(app_names: list[str]) -> Schema:
    """The extra keys the enabled apps declare (``SETTINGS`` in each app package)."""
    schema: Schema = {}
    for module in load_app_modules(app_names):
        schema.update({key: as_setting(spec)
                       for key, spec in getattr(module, "SETTINGS", {}).items()})
    return schema


def every_app_setting() -> Schema:
    """The keys of every app package under apps/, enabled or not (for the CLI's flags)."""
    import apps

    names = [m.name for m in pkgutil.iter_modules(apps.__path__) if m.ispkg]
    return app_settings(names)


def build_plan(settings: dict[str, Any]) -> Plan:
    """Load the enabled apps (and the WSGI app), bring their schemas up to date, and assemble
    the dispatcher.

    Runs in the master before any fork; the connection it opens is closed before workers
    start, so no sqlite handle crosses a fork.
    """
    wsgi_app = load_app(settings["wsgi_app"]) if settings["wsgi_app"] else None
    apps = [module.app for module in load_app_modules(settings["apps"])]
    if apps or wsgi_app is None:
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
    if wsgi_app is None:
        return Plan(settings, Dispatcher(settings, apps), services)
    # the server's own routes (/api/ping, /docs) come only with built-in apps: the WSGI
    # app may have paths of the same names
    dispatcher = Dispatcher(settings, apps) if apps else None
    root = settings["document_root"]
    static = document_root(settings) if root else None  # gzip, cache_control... as configured
    return Plan(settings, WsgiSite(WsgiBridge(wsgi_app, settings), dispatcher, static, settings),
                services)
