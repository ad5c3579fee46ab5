"""What to do with a parsed request: static files (static), an app (api), a WSGI app (wsgi)."""
from __future__ import annotations

from typing import Any

from framework import db
from framework.app import load_app_modules
from framework.master import Plan
from handlers.api import Dispatcher
from handlers.static import StaticFiles
from handlers.wsgi import WsgiBridge, WsgiSite, load_app


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
    static = StaticFiles(root, settings["static_cache_size"]) if root else None
    return Plan(settings, WsgiSite(WsgiBridge(wsgi_app, settings), dispatcher, static, settings),
                services)
