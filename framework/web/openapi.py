"""The OpenAPI 3.0 document of the mounted routes, and the offline page that explores it (/docs).

Everything comes from the route table: whatever apps are enabled, each route's method, path
parameters (typed by their converter), query parameters, request body, success response, its
example, and every other status it can answer: those the framework itself gives for it (400,
401/403 for admin routes, 404, 413, 415) and those the route declares (``responses``).
Bounds that are settings (``IntParam``) are read from the running configuration.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework import __version__
from framework.server.protocol import REASONS
from framework.web.app import ERROR_CODES
from framework.web.auth import DISABLED
from framework.web.params import IntParam
from framework.web.router import BODY_MEDIA_TYPES, PARAM, Route
from framework.web.validate import INT64_MAX

OPENAPI_VERSION = "3.0.3"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message", "fields"],
        "properties": {
            "code": {"type": "string", "example": "bad_request"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "string"}}},
        },
    }},
}
ADMIN_SCHEME = "adminToken"
SECURITY_SCHEMES = {ADMIN_SCHEME: {
    "type": "http", "scheme": "bearer",
    "description": "the server's admin_token (--admin-token, HTTPD_ADMIN_TOKEN)"}}
PATH_SCHEMAS = {
    "int": {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT64_MAX},
    "str": {"type": "string"},
    "path": {"type": "string", "description": "the rest of the path; may contain '/'"},
}
PAGE_PARAMETERS = [
    {"name": "page", "in": "query", "required": False,
     "description": "1-based page number, or 'last'; an invalid page is a 404",
     "schema": {"type": "string", "default": "1"}},
    {"name": "page_size", "in": "query", "required": False,
     "description": "items per page; invalid values fall back to the default, "
                    "large ones are clamped to the server's max_page_size",
     "schema": {"type": "integer", "minimum": 1}},
]
# what the framework's own refusals say, for the examples of the statuses it adds
FRAMEWORK_MESSAGES = {
    400: "Request validation has failed",
    401: "a valid admin bearer token is required",
    403: DISABLED,
    404: "not found",
    413: "request body exceeds the limit",
    415: "Content-Type is not accepted here",
}
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": {
    "description": "the authentication scheme: Bearer", "required": True,
    "schema": {"type": "string", "example": 'Bearer realm="admin"'}}}


def document(apps: Iterable[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``apps`` (objects with name, title and routes)."""
    apps = list(apps)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for app in apps:
        for route in app.routes:
            item = paths.setdefault(template(route.pattern), {})
            item[route.method.lower()] = operation(route, operation_ids, settings)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "httpd.py", "version": __version__,
                 "description": "JSON APIs served by httpd.py. Every route also answers with "
                                "or without its trailing slash, HEAD on GET routes, and OPTIONS."},
        "tags": [{"name": app.name, "description": app.title} for app in apps],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }


def template(pattern: str) -> str:
    """``/api/scores/<int:client_id>`` -> ``/api/scores/{client_id}`` (an OpenAPI path)."""
    return PARAM.sub(lambda m: "{" + m.group(2) + "}", pattern)


def operation(route: Route, taken: set[str], settings: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": unique_id(route, taken),
        "summary": route.summary or f"{route.method} {route.pattern}",
        "tags": list(route.tags),
        "parameters": parameters(route, settings),
        "responses": responses(route),
    }
    if route.description:
        op["description"] = route.description
    if route.admin:
        op["security"] = [{ADMIN_SCHEME: []}]
    body = request_body(route)
    if body:
        op["requestBody"] = body
    return op


def unique_id(route: Route, taken: set[str]) -> str:
    """``GET /api/scores/<int:client_id>`` -> ``get_api_scores_client_id``, made unique."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {template(route.pattern)}").strip("_")
    candidate, n = base.lower(), 1
    while candidate in taken:  # e.g. /a-b and /a_b
        n += 1
        candidate = f"{base.lower()}_{n}"
    taken.add(candidate)
    return candidate


def parameters(route: Route, settings: dict[str, Any]) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": dict(PATH_SCHEMAS[kind])}
              for name, kind in route.params.items()]
    for name, spec in route.query.items():
        if isinstance(spec, IntParam):
            param = {"name": name, "in": "query", "required": False,
                     "description": spec.description, "schema": spec.schema(settings)}
        else:
            schema = dict(spec)
            param = {"name": name, "in": schema.pop("in", "query"),
                     "required": bool(schema.pop("required", False))}
            if "description" in schema:
                param["description"] = schema.pop("description")
            param["schema"] = schema
        params.append(param)
    if route.paginated:
        params.extend(dict(p) for p in PAGE_PARAMETERS)
    examples = route.example.params if route.example else {}
    for param in params:
        if param["name"] in examples:
            param["example"] = examples[param["name"]]
    return params


def request_body(route: Route) -> dict[str, Any] | None:
    kinds = route.body_kinds
    if not kinds:
        return None
    schemas = route.request_schema if len(kinds) > 1 else {kinds[0]: route.request_schema}
    example = route.example.body if route.example else None
    # with several kinds (a form or JSON), the example is the JSON one
    example_kind = kinds[0] if len(kinds) == 1 else "json"
    content = {}
    for kind in kinds:
        media: dict[str, Any] = {"schema": (schemas or {}).get(kind) or {"type": "object"}}
        if example is not None and kind == example_kind:
            media["example"] = example
        content[BODY_MEDIA_TYPES[kind]] = media
    return {"required": True, "content": content}


def responses(route: Route) -> dict[str, Any]:
    status = route.status
    out = {str(status): success_response(route)}
    for code in sorted({*framework_statuses(route), *route.responses}):
        if code == status:
            continue
        description = route.responses.get(code) or FRAMEWORK_MESSAGES.get(code, "")
        reason = REASONS.get(code, "Error")
        answer: dict[str, Any] = {"description": f"{reason}: {description}" if description
                                  else reason}
        if code >= 400:
            answer["content"] = {"application/json": {"schema": ERROR_REF, "example": {
                "error": {"code": ERROR_CODES.get(code, f"error_{code}"),
                          "message": description or reason, "fields": {}}}}}
            if code == 401:
                answer["headers"] = UNAUTHORIZED_HEADERS
        elif code < 300 and code != 204:  # e.g. 206: a part of the success content
            answer["content"] = success_content(route, with_example=False)
        out[str(code)] = answer
    return out


def success_response(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": REASONS.get(route.status, "Success")}
    if route.status != 204:
        success["content"] = success_content(route, with_example=True)
    headers = dict(route.response_headers)
    if route.status == 201:
        headers["Location"] = {"description": "URL of the created resource",
                               "schema": {"type": "string"}}
    if headers:
        success["headers"] = headers
    return success


def success_content(route: Route, with_example: bool) -> dict[str, Any]:
    schema = route.response_schema or {}
    if route.paginated:
        schema = page_of(schema)
    kinds = (route.media_type,) if isinstance(route.media_type, str) else route.media_type
    example = route.example
    content = {}
    for media_type in kinds:
        media: dict[str, Any] = {"schema": schema}
        if (with_example and example is not None and example.response is not None
                and example.media_type in (None, media_type)):
            media["example"] = example.response
        content[media_type] = media
    return content


def framework_statuses(route: Route) -> list[int]:
    """The error statuses the framework itself may answer for this route."""
    codes = []
    if route.body is not None or route.query or route.paginated:
        codes.append(400)  # a bad body, or a malformed query string
    if route.admin:
        codes += [401, 403]
    if route.params or route.paginated:
        codes.append(404)
    if route.body is not None:
        codes += [413, 415]
    return codes


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    """The pagination envelope (count, next, previous, results) around ``item``."""
    link = {"type": "string", "nullable": True, "description": "absolute URL, or null"}
    return {"type": "object", "required": ["count", "next", "previous", "results"],
            "properties": {"count": {"type": "integer", "minimum": 0}, "next": link,
                           "previous": link, "results": {"type": "array", "items": item}}}


# Self-contained on purpose (inline CSS and script, no CDN), so it works offline.
DOCS_PAGE = (Path(__file__).resolve().parent / "docs.html").read_bytes()
