"""What an app is written against: ``App`` with route decorators, ``ApiRequest``, ``ApiError``.

An app is a package under ``apps/`` exposing ``app = App(...)`` (and optionally
``SETTINGS``, extra config keys). Handlers are plain functions that take the request and the
path parameters, and return data (rendered as JSON), ``None`` (204), or a ``Response``.
Problems are raised as ``ApiError`` and rendered in one envelope by handlers/api.py.

    app = App("scores", schema=[SCHEMA_V1])

    @app.get("/api/scores/<int:client_id>")
    def read_score(req, client_id):
        row = req.db.execute("SELECT ... WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            raise ApiError(404, "score not found")
        return {...}
"""
from __future__ import annotations

import codecs
import importlib
import inspect
import io
import json
import math
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any, BinaryIO

from framework.server.config import ConfigError  # noqa: F401 - apps check their settings
from framework.server.contract import Service
from framework.server.protocol import Request
from framework.web import db
from framework.web.errors import ERROR_CODES, ApiError, error_response
from framework.web.responses import Response, json_response
from framework.web.router import Example, Route
from framework.web.urls import parse_query
from framework.web.validate import validation_error

# re-exported: an app is written against this module (the errors, Example, the 400 of the kit)
__all__ = ["ERROR_CODES", "ApiError", "ApiRequest", "App", "Example", "created",
           "error_response", "load_app_modules", "parse_json", "validation_error"]

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
NOT_PARSED = object()  # ApiRequest._json before json() was called


class ApiRequest:
    """A request as apps see it: parsed parts, never bytes or sockets."""

    __slots__ = ("raw", "params", "settings", "apps", "response_headers", "_query", "_json")

    def __init__(self, request: Request, params: dict[str, Any], settings: dict[str, Any],
                 apps: tuple[App, ...] = ()) -> None:
        self.raw = request
        self.params = params
        self.settings = settings
        self.apps = apps  # every mounted app, for endpoints that describe the server
        self.response_headers: list[tuple[str, str]] | None = None  # add_header's, if any
        self._query: dict[str, list[str]] | None = None
        self._json: Any = NOT_PARSED

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def headers(self) -> dict[str, str]:
        """Header fields by lower-case name (repeated fields joined by ", ")."""
        return self.raw.headers

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters, each a list of values; a malformed query string is a 400."""
        if self._query is None:
            try:
                self._query = parse_query(self.raw.query)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "malformed query string", {"query": ["bad escape"]}) from None
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter, or ``default``."""
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def db(self) -> Any:
        """This worker's connection: sqlite3's, or db.PostgresConnection (same methods)."""
        return db.connection(self.settings)

    def json(self) -> Any:
        """The body parsed strictly (``parse_json``); every problem is a 400."""
        if self._json is NOT_PARSED:
            self._json = parse_json(self.body_bytes())
        return self._json

    def body_bytes(self) -> bytes:
        if self.raw.body_file is not None:
            self.raw.body_file.seek(0)
            return self.raw.body_file.read()
        return self.raw.body

    def body_stream(self) -> BinaryIO:
        """The body as a file (for streaming parsers such as multipart)."""
        if self.raw.body_file is not None:
            self.raw.body_file.seek(0)
            return self.raw.body_file
        return io.BytesIO(self.raw.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def base_url(self) -> str:
        return f"{self.raw.scheme}://{self.raw.host or 'localhost'}"

    def url(self, path: str) -> str:
        """An absolute URL on this server for ``path``: the one place apps' absolute URLs
        (Location, pagination links, media URLs) are built, from the scheme and Host the
        client used (as a trusted proxy reports them, or as the connection gives them)."""
        return self.base_url + path

    def add_header(self, name: str, value: str) -> None:
        if self.response_headers is None:
            self.response_headers = []
        self.response_headers.append((name, value))


def parse_json(body: bytes) -> Any:
    if body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body is not valid UTF-8") from None
    if not text.strip():
        raise ApiError(400, "request body is empty; a JSON document is required")
    try:
        value = json.loads(text, parse_constant=reject_constant, parse_float=finite_float,
                           object_pairs_hook=reject_duplicates)
    except RecursionError:
        raise ApiError(400, "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and our hooks' complaints
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if SURROGATE_ESCAPE.search(text) and has_lone_surrogate(value):
        raise ApiError(400, "malformed JSON: lone surrogate in a string")
    return value


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def finite_float(text: str) -> float:
    """A JSON number as a float; ``1e400`` would silently become infinity, so refuse it."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def created(data: Any, location: str) -> Response:
    return json_response(data, 201, [("Location", location)])


class App:
    """An app's routes, schema migrations, background services and start-up hooks.

    ``schema`` is a list of migration scripts, or one list per dialect ({"sqlite": [...],
    "postgresql": [...]}, see db.migrate).

    ``claims`` lists path prefixes the app owns beyond those its patterns imply (see
    ``Router.claim``): an unmatched path under them is a JSON 404, not a static lookup.
    """

    def __init__(self, name: str, schema: list[str] | dict[str, list[str]] | None = None,
                 title: str = "",
                 claims: list[str] | None = None) -> None:
        self.name = name
        self.title = title or name
        self.schema = schema or []
        self.claims = claims or []
        self.routes: list[Route] = []
        self.services: list[Service] = []
        self.startup: list[Callable[[dict[str, Any]], None]] = []

    def route(self, method: str, pattern: str, **meta: Any) -> Callable:
        """Register the decorated handler for ``method`` at ``pattern``.

        ``meta`` holds the ``Route`` fields (status, body, max_body, summary, description,
        request_schema, response_schema, query, paginated, media_type, admin, responses,
        example, response_headers). Summary and description default to the first line and
        the rest of the handler's docstring.
        """
        def register(handler: Callable) -> Callable:
            first, _, rest = (inspect.getdoc(handler) or "").partition("\n")
            described = {"summary": meta.pop("summary", None) or first,
                         "description": meta.pop("description", None) or rest.strip()}
            self.routes.append(Route(method, pattern, handler, tags=[self.name],
                                     **described, **meta))
            return handler
        return register

    def get(self, pattern: str, **meta: Any) -> Callable:
        return self.route("GET", pattern, **meta)

    def post(self, pattern: str, **meta: Any) -> Callable:
        meta.setdefault("body", "json")
        return self.route("POST", pattern, **meta)

    def put(self, pattern: str, **meta: Any) -> Callable:
        meta.setdefault("body", "json")
        return self.route("PUT", pattern, **meta)

    def patch(self, pattern: str, **meta: Any) -> Callable:
        meta.setdefault("body", "json")
        return self.route("PATCH", pattern, **meta)

    def delete(self, pattern: str, **meta: Any) -> Callable:
        return self.route("DELETE", pattern, **meta)

    def service(self, name: str) -> Callable:
        """Declare a background process the master runs and restarts beside the workers."""
        def register(target: Callable[[dict[str, Any]], None]) -> Callable:
            self.services.append(Service(name, target))
            return target
        return register

    def on_startup(self, hook: Callable[[dict[str, Any]], None]) -> Callable:
        """Run ``hook(settings)`` in the master at start-up, after the schema is applied."""
        self.startup.append(hook)
        return hook


def load_app_modules(names: list[str]) -> list[ModuleType]:
    modules = []
    for name in names:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ImportError(f"invalid app name {name!r}")
        modules.append(importlib.import_module(f"apps.{name}"))
    return modules
