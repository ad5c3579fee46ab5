"""The seam between the server and the apps: route a parsed request, or fall through to static.

Implements the worker's ``Application`` protocol. Paths claimed by a route go to its app
(405 with Allow for another method, HEAD served by GET, OPTIONS answered with Allow);
everything else goes to the static handler. All app errors leave here in one JSON envelope.
"""
from __future__ import annotations

import logging
from typing import Any

from framework.app import ApiError, ApiRequest, App, error_response
from framework.messages import Response, json_response
from framework.protocol import Request
from framework.router import Route, Router
from handlers.static import StaticFiles, html_error

log = logging.getLogger("httpd.api")

core = App("core", title="Server")


@core.get("/api/ping", response_schema={"type": "object",
                                         "properties": {"status": {"type": "string"}}})
def ping(req: ApiRequest) -> dict[str, str]:
    """Liveness check for load balancers; touches no database."""
    return {"status": "ok"}


class Dispatcher:
    def __init__(self, settings: dict[str, Any], apps: list[App]) -> None:
        self.settings = settings
        self.apps = [core, *apps]
        self.router = Router()
        for app in self.apps:
            for route in app.routes:
                self.router.add(route)
        self.static = StaticFiles(settings["document_root"], settings["static_cache_size"])

    # -- the worker's Application protocol -------------------------------------------------

    def preflight(self, request: Request) -> Response | int:
        match = self.router.match(request.path)
        if match is None:
            if request.method not in ("GET", "HEAD"):
                return self.static.handle(request.method, request.path, "", request.headers)
            return self.settings["max_body_size"]
        methods, params = match
        route = pick(methods, request.method)
        if route is None:
            return self.not_allowed(methods, request.method)
        request.app_state = (route, params)
        refusal = self.check_content_type(route, request)
        if refusal is not None:
            return refusal
        limit = self.body_limit(route)
        if request.content_length > limit:
            return error_response(413, f"request body exceeds the limit of {limit} bytes")
        return limit

    def handle(self, request: Request) -> Response:
        state = request.app_state
        if state is None:
            match = self.router.match(request.path)
            if match is None:
                return self.static.handle(request.method, request.path, request.query,
                                          request.headers)
            methods, params = match
            route = pick(methods, request.method)
            if route is None:
                return self.not_allowed(methods, request.method)
            refusal = self.check_content_type(route, request)
            if refusal is not None:
                return refusal
        else:
            route, params = state
        return self.call(route, params, request)

    def error(self, status: int, message: str, request: Request | None = None) -> Response:
        if request is not None and request.app_state is not None:
            return error_response(status, message)
        from framework.protocol import REASONS
        return html_error(status, REASONS.get(status, "Error"))

    # -- helpers ---------------------------------------------------------------------------

    def call(self, route: Route, params: dict[str, Any], request: Request) -> Response:
        req = ApiRequest(request, route, params, self.settings)
        try:
            result = route.handler(req, **params)
        except ApiError as exc:
            response = exc.response()
        except Exception:
            log.exception("handler %s %s failed", route.method, route.pattern)
            response = error_response(500, "internal server error")
        else:
            if isinstance(result, Response):
                response = result
            elif result is None:
                response = Response(204)
            else:
                response = json_response(result, route.status)
        if req.response_headers:
            response.headers.extend(req.response_headers)
        return response

    def body_limit(self, route: Route) -> int:
        limit = route.max_body
        if isinstance(limit, str):
            return self.settings[limit]
        return self.settings["max_body_size"] if limit is None else limit

    @staticmethod
    def check_content_type(route: Route, request: Request) -> Response | None:
        """415 for a body of the wrong media type; a missing type is tolerated for JSON."""
        if route.body is None:
            return None
        given = request.headers.get("content-type")
        media = (given or "").partition(";")[0].strip().lower()
        if route.body == "json":
            if given is None or media == "application/json" or media.endswith("+json"):
                return None
            expected = "application/json"
        else:
            if media == "multipart/form-data":
                return None
            expected = "multipart/form-data"
        return error_response(415, f"Content-Type must be {expected}")

    @staticmethod
    def not_allowed(methods: dict[str, Route], method: str) -> Response:
        allow = allowed(methods)
        if method == "OPTIONS":
            return Response(204, b"", [("Allow", allow)])
        return error_response(405, f"method {method} is not allowed here", None,
                              [("Allow", allow)])


def pick(methods: dict[str, Route], method: str) -> Route | None:
    route = methods.get(method)
    if route is None and method == "HEAD":
        route = methods.get("GET")
    return route


def allowed(methods: dict[str, Route]) -> str:
    names = set(methods)
    if "GET" in names:
        names.add("HEAD")
    names.add("OPTIONS")
    return ", ".join(sorted(names))
