"""Routes: ``method + pattern`` with typed parameters, e.g. ``/imports/<int:import_id>/citizens``.

Static paths are found with one dict lookup; patterns are tried after, in declaration order.
A path is matched with and without its trailing slash, so both forms reach the same route.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from framework.urls import percent_decode

INT64_MAX = 2 ** 63 - 1
PARAM = re.compile(r"<(?:(int|str|path):)?([A-Za-z_][A-Za-z0-9_]*)>")
CONVERTERS = {"int": r"[0-9]+", "str": r"[^/]+", "path": r".+"}


@dataclass
class Route:
    method: str
    pattern: str
    handler: Callable[..., Any]
    status: int = 200
    body: str | None = None  # "json", "multipart" or None for no body
    max_body: int | str | None = None  # bytes, or the name of a setting holding them
    summary: str = ""
    request_schema: dict | None = None
    response_schema: dict | None = None
    tags: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # name -> converter


def canonical(path: str) -> str:
    return path.rstrip("/") or "/"


class Router:
    def __init__(self) -> None:
        self.static: dict[str, dict[str, Route]] = {}
        self.dynamic: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        self.routes.append(route)
        route.params = {name: kind or "str" for kind, name in PARAM.findall(route.pattern)}
        key = canonical(route.pattern)
        if not route.params:
            self.static.setdefault(key, {})[route.method] = route
            return
        regex = re.compile(self.compile(key))
        for existing, methods in self.dynamic:
            if existing.pattern == regex.pattern:
                methods[route.method] = route
                return
        self.dynamic.append((regex, {route.method: route}))

    @staticmethod
    def compile(pattern: str) -> str:
        out, pos = [], 0
        for m in PARAM.finditer(pattern):
            out.append(re.escape(pattern[pos:m.start()]))
            out.append(f"(?P<{m.group(2)}>{CONVERTERS[m.group(1) or 'str']})")
            pos = m.end()
        out.append(re.escape(pattern[pos:]))
        return "".join(out)

    def match(self, path: str) -> tuple[dict[str, Route], dict[str, Any]] | None:
        """The routes at ``path`` by method, and the converted parameters; None if unclaimed."""
        key = canonical(path)
        methods = self.static.get(key)
        if methods is not None:
            return methods, {}
        for regex, methods in self.dynamic:
            m = regex.fullmatch(key)
            if m is None:
                continue
            params = convert(m.groupdict(), next(iter(methods.values())).params)
            if params is not None:
                return methods, params
        return None


def convert(raw: dict[str, str], kinds: dict[str, str]) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if kinds[name] == "int":
            number = int(value)
            if number > INT64_MAX:
                return None  # ids past sqlite's range are simply not found
            params[name] = number
        else:
            try:
                params[name] = percent_decode(value).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
    return params
