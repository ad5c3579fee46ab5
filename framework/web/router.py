"""Routes: ``method + pattern`` with typed parameters, e.g. ``/imports/<int:import_id>/citizens``.

Static paths are found with one dict lookup; patterns are indexed by their first segment, so a
path only meets the few patterns that could match it, tried in declaration order. A path is
matched with and without one trailing slash, so both forms reach the same route.

Converters: ``<int:name>`` is ``[0-9]+`` as a Python int (past 2^63-1, sqlite's range, the
pattern does not match: an id that cannot exist is simply not found); ``<name>`` or
``<str:name>`` is one segment, percent-decoded as UTF-8; ``<path:name>`` is the rest of the
path, slashes included.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from framework.web.urls import normalize_path, percent_decode
from framework.web.validate import INT64_MAX, parse_int

PARAM = re.compile(r"<(?:(int|str|path):)?([A-Za-z_][A-Za-z0-9_]*)>")
CONVERTERS = {"int": r"[0-9]+", "str": r"[^/]+", "path": r".+"}
BODY_MEDIA_TYPES = {"json": "application/json", "multipart": "multipart/form-data"}
ANY_SEGMENT = ""  # index key of patterns whose first segment is itself a parameter
RECENT_PATHS = 4096  # how many paths' matches are remembered
MISSING, CLAIMED, UNCLAIMED = object(), object(), object()


@dataclass(frozen=True)
class Example:
    """One worked request and its success answer, shown in /openapi.json and tried by /docs.

    ``params`` holds path and query parameters by name; ``body`` the JSON body, or the fields
    of a multipart form (a file part as its text content); ``response`` the success answer's
    body (None for 204). ``media_type`` picks the one response media type the example is
    for when the route lists several.
    """
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    response: Any = None
    media_type: str | None = None


@dataclass
class Route:
    """One endpoint: what answers it, and enough description to document it (OpenAPI)."""
    method: str
    pattern: str
    handler: Callable[..., Any]
    status: int = 200
    # "json", "multipart", a tuple of both (the Content-Type picks), or None for no body
    body: str | tuple[str, ...] | None = None
    # bytes, the name of a setting holding them, or a function of the settings
    max_body: int | str | Callable[[dict[str, Any]], int] | None = None
    summary: str = ""
    description: str = ""
    request_schema: dict | None = None  # with several body kinds: {kind: schema}
    response_schema: dict | None = None
    query: dict[str, Any] = field(default_factory=dict)  # name -> JSON schema or IntParam
    paginated: bool = False  # the response is a page (pagination.py) of response_schema items
    # of the success response, for the docs; a tuple when the content decides
    media_type: str | tuple[str, ...] = "application/json"
    admin: bool = False  # only with the admin bearer token (the dispatcher checks it first)
    # other statuses the handler answers, with what they mean (an error's example message)
    responses: dict[int, str] = field(default_factory=dict)
    example: Example | None = None
    response_headers: dict[str, dict] = field(default_factory=dict)  # name -> OpenAPI header
    tags: list[str] = field(default_factory=list)
    params: dict[str, str] = field(init=False)  # parameter name -> converter, in path order
    body_kinds: tuple[str, ...] = field(init=False)  # ``body`` as a tuple: () for no body

    def __post_init__(self) -> None:
        self.params = {name: kind or "str" for kind, name in PARAM.findall(self.pattern)}
        body = self.body
        self.body_kinds = () if body is None else (body,) if isinstance(body, str) else tuple(body)


class Pattern:
    """A compiled route pattern and the routes that share it, by method."""

    __slots__ = ("kinds", "regex", "routes")

    def __init__(self, key: str, kinds: dict[str, str]) -> None:
        self.regex = re.compile(compile_pattern(key))
        self.kinds = kinds
        self.routes: dict[str, Route] = {}


class Router:
    def __init__(self) -> None:
        self.static: dict[str, dict[str, Route]] = {}
        self.dynamic: dict[str, list[Pattern]] = {}
        self.recent: dict[str, Any] = {}  # path -> what match() answered
        self.shapes: dict[str, Pattern] = {}
        self.prefixes: list[str] = []
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        """Register a route; a second route for the same method and path is an error."""
        self.recent.clear()
        key = without_trailing_slash(route.pattern)
        if not route.params:
            methods = self.static.setdefault(key, {})
        else:
            methods = self.pattern_for(key, route.params).routes
            self.claim(key[:key.index("<")].rpartition("/")[0] + "/")
        if route.method in methods:
            raise ValueError(f"duplicate route {route.method} {route.pattern}")
        methods[route.method] = route
        self.routes.append(route)

    def pattern_for(self, key: str, kinds: dict[str, str]) -> Pattern:
        shape = PARAM.sub(lambda m: f"<{m.group(1) or 'str'}>", key)
        pattern = self.shapes.get(shape)
        if pattern is None:
            pattern = self.shapes[shape] = Pattern(key, kinds)
            self.dynamic.setdefault(first_segment(key), []).append(pattern)
        elif pattern.kinds != kinds:
            raise ValueError(f"route {key} names its parameters differently from another "
                             f"route of the same path ({', '.join(pattern.kinds)})")
        return pattern

    def claim(self, prefix: str) -> None:
        """Make every path under ``prefix`` belong to the apps (unmatched ones are a JSON 404).

        Patterns claim the literal part before their first parameter, so ``/api/scores/abc``
        is the API's 404 rather than a static file lookup; ``/`` is never claimed.
        """
        if len(prefix) > 1 and prefix not in self.prefixes:
            self.prefixes.append(prefix)
            self.recent.clear()

    def match(self, path: str) -> tuple[dict[str, Route], dict[str, Any]] | None:
        """The routes at ``path`` by method, and the converted parameters; None if unclaimed.

        The parameters are copied so a handler cannot change the remembered ones.
        """
        found = self.recent.get(path) or self.remembered(path)
        if found.__class__ is not tuple:  # CLAIMED or UNCLAIMED
            return None
        return found if not found[1] else (found[0], dict(found[1]))

    def claims(self, path: str) -> bool:
        """True when ``path`` lies under a prefix the apps own (see ``claim``)."""
        found = self.remembered(path)
        if found is CLAIMED or found is UNCLAIMED:
            return found is CLAIMED
        return self.under_prefix(path)

    def remembered(self, path: str) -> Any:
        """What ``path`` leads to, remembered per path in a bounded dict, since the same paths
        come again and again: a match, or CLAIMED / UNCLAIMED for a path no route matches."""
        found = self.recent.get(path, MISSING)
        if found is MISSING:
            found = self.lookup(path)
            if found is None:
                found = CLAIMED if self.under_prefix(path) else UNCLAIMED
            if len(self.recent) >= RECENT_PATHS:
                self.recent.clear()
            self.recent[path] = found
        return found

    def lookup(self, path: str) -> tuple[dict[str, Route], dict[str, Any]] | None:
        key = without_trailing_slash(normalize_path(path))
        methods = self.static.get(key)
        if methods is not None:
            return methods, {}
        for candidates in (self.dynamic.get(first_segment(key)), self.dynamic.get(ANY_SEGMENT)):
            for pattern in candidates or ():
                m = pattern.regex.fullmatch(key)
                if m is None:
                    continue
                params = convert(m.groupdict(), pattern.kinds)
                if params is not None:
                    return pattern.routes, params
        return None

    def under_prefix(self, path: str) -> bool:
        path = normalize_path(path)
        return any(path.startswith(prefix) for prefix in self.prefixes)


def compile_pattern(pattern: str) -> str:
    out, pos = [], 0
    for m in PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        out.append(f"(?P<{m.group(2)}>{CONVERTERS[m.group(1) or 'str']})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "".join(out)


def without_trailing_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def first_segment(path: str) -> str:
    """``/api/scores/<int:id>`` -> ``api``; a leading parameter gives ANY_SEGMENT."""
    segment = path[1:].partition("/")[0]
    return ANY_SEGMENT if "<" in segment else segment


def convert(raw: dict[str, str], kinds: dict[str, str]) -> dict[str, Any] | None:
    """Typed parameter values, or None when a value cannot be one (so the route does not match)."""
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if kinds[name] == "int":
            number = parse_int(value, 0, INT64_MAX)
            if number is None:  # past 2^63-1
                return None
            params[name] = number
        else:
            try:
                params[name] = percent_decode(value).decode("utf-8")
            except ValueError:  # a bad escape, or bytes that are not UTF-8
                return None
    return params
