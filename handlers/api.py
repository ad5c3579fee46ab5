"""The seam between the server and the apps: route a parsed request, or fall through to static.

Implements the worker's ``Application`` protocol. Paths claimed by a route go to its app
(405 with Allow for another method, HEAD served by GET, OPTIONS answered with Allow); an
unmatched path under a prefix the apps own is a JSON 404; everything else goes to the static
handler. All app errors leave here in one JSON envelope.
"""
from __future__ import annotations

import logging
import weakref
from typing import Any

from framework.server.protocol import KNOWN_METHODS, REASONS, Request
from framework.web import db, openapi
from framework.web.app import ApiError, ApiRequest, App, Example, error_response
from framework.web.auth import require_admin
from framework.web.compression import compress_app_response
from framework.web.responses import JSON_TYPE_FIELD, Response, encode_json
from framework.web.router import BODY_MEDIA_TYPES, Route, Router
from handlers.static import document_root

log = logging.getLogger("httpd.api")
RETRY_AFTER_SECONDS = 2

core = App("core", title="Server: health and API documentation", claims=["/api/"])


@core.get("/api/ping", response_schema={"type": "object", "required": ["status"],
                                         "properties": {"status": {"type": "string"}}},
          example=Example(response={"status": "ok"}))
def ping(req: ApiRequest) -> dict[str, str]:
    """Liveness check for load balancers; touches no database."""
    return {"status": "ok"}


@core.get("/openapi.json", response_schema={"type": "object", "required": ["openapi", "paths"]},
          example=Example(response={"openapi": openapi.OPENAPI_VERSION,
                                    "info": {"title": "httpd.py", "version": "1.0"},
                                    "paths": {"/api/ping": {"get": {"responses": {}}}}}))
def openapi_document(req: ApiRequest) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every mounted route."""
    return openapi.document(req.apps, req.settings)


@core.get("/docs", media_type="text/html", response_schema={"type": "string"},
          example=Example(response="<!DOCTYPE html>\n<html lang=\"en\">..."))
def docs_page(req: ApiRequest) -> Response:
    """An offline page to explore and try every endpoint of /openapi.json."""
    return Response(200, openapi.DOCS_PAGE, content_type="text/html; charset=utf-8")


class Dispatcher:
    def __init__(self, settings: dict[str, Any], apps: list[App]) -> None:
        # routes resolved before a body was read, by request; forgotten with the request
        self.routed: weakref.WeakKeyDictionary[Request, Any] = weakref.WeakKeyDictionary()
        self.settings = settings
        self.apps = (core, *apps)
        self.router = Router()
        for app in self.apps:
            for route in app.routes:
                self.router.add(route)
            for prefix in app.claims:
                self.router.claim(prefix)
        self.static = document_root(settings)
        options = self.static.options
        self.gzip_types = options.gzip_types if options.gzip else None
        self.gzip_min_length = options.gzip_min_length

    # -- the worker's Application protocol -------------------------------------------------

    def preflight(self, request: Request) -> Response | int:
        """Before the body is read: refuse it (404/405/415/413) or give its size limit."""
        target = self.resolve(request)
        if target is None:
            if request.method not in ("GET", "HEAD"):
                return self.static.handle(request.method, request.path, "", request.headers)
            return self.settings["max_body_size"]
        if isinstance(target, Response):
            return target
        self.routed[request] = target  # for handle() once the body is in
        route = target[0]
        limit = self.body_limit(route)
        if request.content_length > limit:
            return error_response(413, f"request body exceeds the limit of {limit} bytes")
        return limit

    def handle(self, request: Request) -> Response:
        # only a request with a body went through preflight (and so may be in ``routed``)
        target = (request.has_body and self.routed.pop(request, None)) or self.resolve(request)
        if target.__class__ is tuple:
            return self.call(target[0], target[1], request)
        if target is None:
            return self.static.handle(request.method, request.path, request.query,
                                      request.headers)
        return target  # a refusal: 404, 405, 415, 501

    def error(self, status: int, message: str, request: Request | None = None) -> Response:
        """Protocol-level errors: JSON for requests routed to an app, else the static error
        page (``error_pages``, or a small HTML page)."""
        if request is not None and request in self.routed:
            return error_response(status, message)
        return self.static.error(status, request.headers if request is not None else None,
                                 reason=REASONS.get(status, "Error"))

    # -- helpers ---------------------------------------------------------------------------

    def resolve(self, request: Request) -> tuple[Route, dict[str, Any]] | Response | None:
        """The route and parameters for a request, a refusal, or None (a static path)."""
        match = self.router.match(request.path)
        known = request.method in KNOWN_METHODS
        if match is None:
            if self.router.claims(request.path):
                return error_response(404, "no such endpoint") if known else unknown_method(request)
            return None if known else self.error(501, REASONS[501], request)
        if not known:
            return unknown_method(request)
        methods, params = match
        route = methods.get(request.method) or pick(methods, request.method)
        if route is None:
            return not_allowed(methods, request.method)
        if route.body_kinds:
            refusal = check_content_type(route, request)
            if refusal is not None:
                return refusal
        return route, params

    def call(self, route: Route, params: dict[str, Any], request: Request) -> Response:
        """Run the handler and render what it gives (data, None, a Response or an error)."""
        req = ApiRequest(request, params, self.settings, self.apps)
        try:
            if route.admin:
                require_admin(req)
            result = route.handler(req, **params) if params else route.handler(req)
            if isinstance(result, Response):
                response = result
            elif result is None or route.status == 204:  # 204 has no body (RFC 9110 §15.3.5)
                response = Response(204)
            else:
                response = Response(route.status, encode_json(result).encode("utf-8"))
                response.raw = JSON_TYPE_FIELD
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:
            if db.is_contention(exc):  # another writer held the lock past the busy timeout
                log.warning("%s %s: %s; answered 503", route.method, route.pattern, exc)
                response = error_response(503, "the database is busy; retry shortly", None,
                                          [("Retry-After", str(RETRY_AFTER_SECONDS))])
            else:
                log.exception("handler %s %s failed", route.method, route.pattern)
                response = error_response(500, "internal server error")
        finally:
            if db.touched:
                db.abandon_transaction()
        if req.response_headers:
            response.headers.extend(req.response_headers)
        if self.gzip_types is not None and len(response.body) >= self.gzip_min_length:
            compress_app_response(response, request.headers.get("accept-encoding"),
                                  self.gzip_min_length, self.gzip_types)
        return response

    def body_limit(self, route: Route) -> int:
        limit = route.max_body
        if isinstance(limit, str):
            return self.settings[limit]
        if callable(limit):
            return limit(self.settings)
        return self.settings["max_body_size"] if limit is None else limit


def pick(methods: dict[str, Route], method: str) -> Route | None:
    route = methods.get(method)
    if route is None and method == "HEAD":
        route = methods.get("GET")
    return route


def unknown_method(request: Request) -> Response:
    """RFC 9110 §9.1: a method the server does not recognise is 501, not 405."""
    return error_response(501, f"method {request.method} is not implemented")


def not_allowed(methods: dict[str, Route], method: str) -> Response:
    """OPTIONS is answered with the allowed methods; any other method is a 405."""
    allow = ", ".join(sorted({*methods, "OPTIONS", *(("HEAD",) if "GET" in methods else ())}))
    if method == "OPTIONS":
        return Response(204, b"", [("Allow", allow)])
    return error_response(405, f"method {method} is not allowed here", None, [("Allow", allow)])


def check_content_type(route: Route, request: Request) -> Response | None:
    """415 for a body of the wrong media type; a missing type is tolerated for JSON (§1.3)."""
    kinds = route.body_kinds
    if not kinds:
        return None
    given = request.headers.get("content-type")
    media = (given or "").partition(";")[0].strip().lower()
    if "json" in kinds and (given is None or media == "application/json"
                            or media.endswith("+json")):
        return None
    if "multipart" in kinds and media == "multipart/form-data":
        return None
    expected = " or ".join(BODY_MEDIA_TYPES[kind] for kind in kinds)
    return error_response(415, f"Content-Type must be {expected}")
