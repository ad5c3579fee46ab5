"""The OpenAPI 3.0 document of the mounted routes, and the offline page that lists it (/docs).

Everything comes from the route table: whatever apps are enabled, each route's method, path
parameters (typed by their converter), query parameters, request body, success response and
the error responses the framework itself can give for it (400, 404, 413, 415...).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from framework import __version__
from framework.protocol import REASONS
from framework.router import BODY_MEDIA_TYPES, PARAM, Route

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
PATH_SCHEMAS = {
    "int": {"type": "integer", "format": "int64", "minimum": 0},
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


def document(apps: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``apps`` (objects with name, title and routes)."""
    apps = list(apps)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for app in apps:
        for route in app.routes:
            item = paths.setdefault(template(route.pattern), {})
            item[route.method.lower()] = operation(route, operation_ids)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "httpd.py", "version": __version__,
                 "description": "JSON APIs served by httpd.py. Every route also answers with "
                                "or without its trailing slash, HEAD on GET routes, and OPTIONS."},
        "tags": [{"name": app.name, "description": app.title} for app in apps],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }


def template(pattern: str) -> str:
    """``/api/scores/<int:client_id>`` -> ``/api/scores/{client_id}`` (an OpenAPI path)."""
    return PARAM.sub(lambda m: "{" + m.group(2) + "}", pattern)


def operation(route: Route, taken: set[str]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": unique_id(route, taken),
        "summary": route.summary or f"{route.method} {route.pattern}",
        "tags": list(route.tags),
        "parameters": parameters(route),
        "responses": responses(route),
    }
    if route.description:
        op["description"] = route.description
    kinds = route.body_kinds
    if kinds:
        schemas = route.request_schema if len(kinds) > 1 else {kinds[0]: route.request_schema}
        op["requestBody"] = {"required": True, "content": {
            BODY_MEDIA_TYPES[kind]: {"schema": (schemas or {}).get(kind) or {"type": "object"}}
            for kind in kinds}}
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


def parameters(route: Route) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": dict(PATH_SCHEMAS[kind])}
              for name, kind in route.params.items()]
    for name, spec in route.query.items():
        schema = dict(spec)
        param = {"name": name, "in": "query", "required": bool(schema.pop("required", False))}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        params.append(param)
    if route.paginated:
        params.extend(dict(p) for p in PAGE_PARAMETERS)
    return params


def responses(route: Route) -> dict[str, Any]:
    status = route.status
    success: dict[str, Any] = {"description": REASONS.get(status, "Success")}
    if status != 204:
        schema = route.response_schema or {}
        if route.paginated:
            schema = page_of(schema)
        success["content"] = {route.media_type: {"schema": schema}}
    if status == 201:
        success["headers"] = {"Location": {"description": "URL of the created resource",
                                           "schema": {"type": "string"}}}
    out = {str(status): success}
    for code in error_statuses(route):
        out[str(code)] = {"description": REASONS.get(code, "Error"),
                          "content": {"application/json": {"schema": ERROR_REF}}}
    out["default"] = {"description": "Any other error, in the same envelope",
                      "content": {"application/json": {"schema": ERROR_REF}}}
    return out


def error_statuses(route: Route) -> list[int]:
    codes = []
    if route.body is not None or route.query or route.paginated:
        codes.append(400)
    if route.params or route.paginated:
        codes.append(404)
    if route.body is not None:
        codes += [413, 415]
    return codes


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    """The §1.10 pagination envelope around ``item``."""
    link = {"type": "string", "nullable": True, "description": "absolute URL, or null"}
    return {"type": "object", "required": ["count", "next", "previous", "results"],
            "properties": {"count": {"type": "integer", "minimum": 0}, "next": link,
                           "previous": link, "results": {"type": "array", "items": item}}}


# Self-contained on purpose: no CDN, no external fonts or scripts, so it works offline.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>API documentation</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; }
details { border: 1px solid #ddd; border-radius: 4px; margin: .4rem 0; padding: .3rem .6rem; }
summary { cursor: pointer; }
.method { display: inline-block; width: 4.5rem; font-weight: bold; font-family: monospace; }
.path { font-family: monospace; }
.GET { color: #0a6; } .POST { color: #05c; } .PUT { color: #a60; }
.PATCH { color: #a0a; } .DELETE { color: #c22; }
pre { background: #f6f6f6; padding: .5rem; overflow: auto; }
</style>
</head>
<body>
<h1 id="title">API documentation</h1>
<p>Generated from <a href="/openapi.json">/openapi.json</a>.</p>
<div id="endpoints">Loading...</div>
<script>
"use strict";
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function block(title, value) {
  const wrap = el("div");
  wrap.appendChild(el("h4", title));
  wrap.appendChild(el("pre", JSON.stringify(value, null, 2)));
  return wrap;
}
function render(spec) {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  const root = document.getElementById("endpoints");
  root.textContent = "";
  const groups = new Map((spec.tags || []).map(t => [t.name, {tag: t, ops: []}]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const name = (op.tags || ["other"])[0];
      if (!groups.has(name)) groups.set(name, {tag: {name: name}, ops: []});
      groups.get(name).ops.push({path: path, method: method.toUpperCase(), op: op});
    }
  }
  for (const {tag, ops} of groups.values()) {
    if (!ops.length) continue;
    root.appendChild(el("h2", tag.description ? tag.name + ": " + tag.description : tag.name));
    for (const {path, method, op} of ops) {
      const details = el("details");
      const line = el("summary");
      line.appendChild(el("span", method, "method " + method));
      line.appendChild(el("span", path, "path"));
      line.appendChild(document.createTextNode(" " + (op.summary || "")));
      details.appendChild(line);
      if (op.description) details.appendChild(el("p", op.description));
      if (op.parameters && op.parameters.length) {
        details.appendChild(block("Parameters", op.parameters));
      }
      if (op.requestBody) details.appendChild(block("Request body", op.requestBody.content));
      details.appendChild(block("Responses", op.responses));
      root.appendChild(details);
    }
  }
}
fetch("/openapi.json").then(r => r.json()).then(render).catch(err => {
  document.getElementById("endpoints").textContent = "Cannot load /openapi.json: " + err;
});
</script>
</body>
</html>
"""
