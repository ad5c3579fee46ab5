"""The router on plain paths: static and typed routes, trailing slashes, int overflow, claimed
prefixes, and the dispatcher's method rules (405/Allow, HEAD via GET, OPTIONS, 415).

No server runs here; requests are built with the protocol's ``Request``.
"""
from __future__ import annotations

import pytest

from framework.server.protocol import Request
from framework.web.router import INT64_MAX, Route, Router
from handlers.api import check_content_type, not_allowed, pick


def handler(req, **params):
    return params


def router_with(*routes: tuple[str, str]) -> Router:
    router = Router()
    for method, pattern in routes:
        router.add(Route(method, pattern, handler))
    return router


ROUTER = router_with(
    ("GET", "/api/ping"),
    ("GET", "/api/scores"),
    ("POST", "/api/scores"),
    ("GET", "/api/scores/<int:client_id>"),
    ("PUT", "/api/scores/<int:client_id>"),
    ("DELETE", "/api/scores/<int:client_id>"),
    ("GET", "/sales/"),  # canonical form with a slash (apps B and C)
    ("GET", "/imports/<int:import_id>/citizens/<int:citizen_id>"),
    ("GET", "/imports/<int:import_id>/citizens/birthdays"),
    ("GET", "/tags/<name>"),
    ("GET", "/media/<path:name>"),
    ("GET", "/<str:slug>.json"),  # a pattern whose first segment is a parameter
    ("GET", "/"),
)


def match(path: str):
    """(sorted methods, params) at ``path``, or None."""
    found = ROUTER.match(path)
    if found is None:
        return None
    methods, params = found
    return sorted(methods), params


MATCHES = [
    # (path, methods, params)
    ("/api/ping", ["GET"], {}),
    ("/api/ping/", ["GET"], {}),  # either form of the trailing slash
    ("/sales/", ["GET"], {}),
    ("/sales", ["GET"], {}),
    ("/", ["GET"], {}),
    ("/api/scores", ["GET", "POST"], {}),
    ("/api/scores/7", ["DELETE", "GET", "PUT"], {"client_id": 7}),
    ("/api/scores/7/", ["DELETE", "GET", "PUT"], {"client_id": 7}),
    ("/api/scores/007", ["DELETE", "GET", "PUT"], {"client_id": 7}),  # leading zeros: decimal
    ("/api/scores/0", ["DELETE", "GET", "PUT"], {"client_id": 0}),
    (f"/api/scores/{INT64_MAX}", ["DELETE", "GET", "PUT"], {"client_id": INT64_MAX}),
    (f"/api/scores/000{INT64_MAX}", ["DELETE", "GET", "PUT"], {"client_id": INT64_MAX}),
    ("/imports/1/citizens/2", ["GET"], {"import_id": 1, "citizen_id": 2}),
    ("/imports/1/citizens/birthdays", ["GET"], {"import_id": 1}),
    ("/tags/a%20b", ["GET"], {"name": "a b"}),  # str parameters are percent-decoded
    ("/tags/%D0%BA%D0%BE%D1%82", ["GET"], {"name": "кот"}),
    ("/tags/a%2Fb", ["GET"], {"name": "a/b"}),  # an encoded slash stays inside the segment
    ("/media/memes/x.png", ["GET"], {"name": "memes/x.png"}),
    ("/report.json", ["GET"], {"slug": "report"}),
    # escapes of unreserved characters are the same path (RFC 3986 §6.2.2.2)
    ("/api/%70ing", ["GET"], {}),
    ("/api/scores/%37", ["DELETE", "GET", "PUT"], {"client_id": 7}),
]


@pytest.mark.parametrize("path, methods, params", MATCHES)
def test_match(path, methods, params):
    assert match(path) == (methods, params)


NO_MATCH = [
    "/api/pin",
    "/api/ping//",  # only one trailing slash is optional
    "/api/scores/abc",
    "/api/scores/-1",
    "/api/scores/1.5",
    "/api/scores/+1",
    "/api/scores/%31%2F",
    "/api/scores/١",  # a non-ASCII digit is not [0-9]
    f"/api/scores/{INT64_MAX + 1}",  # past sqlite's range: not found, never an overflow
    "/api/scores/" + "9" * 5000,  # and never a slow or failing int() either
    "/api/scores/1/extra",
    "/tags/%ZZ",  # a bad escape in a str parameter
    "/tags/%FF",  # bytes that are not UTF-8
    "/tags/a/b",
    "/index.html",
]


@pytest.mark.parametrize("path", NO_MATCH)
def test_no_match(path):
    assert ROUTER.match(path) is None


CLAIMS = [
    ("/api/scores/abc", True),  # under a pattern's literal prefix: the API's 404
    ("/api/scores/1/extra", True),
    ("/imports/x", True),
    ("/tags/a/b", True),
    ("/api/other", False),  # no pattern lives under /api/ alone (the core app claims it)
    ("/index.html", False),
    ("/", False),  # '/' is never claimed, so /<slug>.json does not swallow the site
]


@pytest.mark.parametrize("path, claimed", CLAIMS)
def test_claims(path, claimed):
    assert ROUTER.claims(path) is claimed


def test_explicit_claim_and_root_never_claimed():
    router = router_with(("GET", "/api/ping"))
    router.claim("/api/")
    router.claim("/")
    assert router.claims("/api/nothing")
    assert not router.claims("/index.html")


def test_route_params_in_path_order():
    route = Route("GET", "/imports/<int:import_id>/citizens/<citizen>/<path:rest>", handler)
    assert route.params == {"import_id": "int", "citizen": "str", "rest": "path"}


def test_declaration_order_decides_between_patterns():
    router = router_with(("GET", "/x/<int:n>"), ("GET", "/x/<name>"))
    assert router.match("/x/5")[1] == {"n": 5}
    assert router.match("/x/five")[1] == {"name": "five"}


def test_duplicate_route_is_refused():
    router = router_with(("GET", "/a/<int:id>"))
    with pytest.raises(ValueError, match="duplicate"):
        router.add(Route("GET", "/a/<int:id>/", handler))  # same route, other slash form
    with pytest.raises(ValueError, match="duplicate"):
        router_with(("GET", "/p"), ("GET", "/p/"))


def test_same_path_with_other_parameter_names_is_refused():
    with pytest.raises(ValueError, match="differently"):
        router_with(("GET", "/a/<int:id>"), ("PUT", "/a/<int:other>"))


# -- the dispatcher's method rules ---------------------------------------------------------

def methods_at(path: str):
    return ROUTER.match(path)[0]


def test_pick_serves_head_with_get():
    methods = methods_at("/api/scores/1")
    assert pick(methods, "GET").method == "GET"
    assert pick(methods, "HEAD").method == "GET"
    assert pick(methods, "POST") is None
    assert pick(methods_at("/api/scores"), "HEAD").method == "GET"


def test_not_allowed_lists_methods():
    response = not_allowed(methods_at("/api/scores"), "PUT")
    assert response.status == 405
    assert response.header("Allow") == "GET, HEAD, OPTIONS, POST"
    assert b'"code":"method_not_allowed"' in response.body
    options = not_allowed(methods_at("/api/scores/1"), "OPTIONS")
    assert (options.status, options.body) == (204, b"")
    assert options.header("Allow") == "DELETE, GET, HEAD, OPTIONS, PUT"


def test_allow_without_get_has_no_head():
    router = router_with(("POST", "/only-post"))
    assert not_allowed(router.match("/only-post")[0], "GET").header("Allow") == "OPTIONS, POST"


CONTENT_TYPES = [
    # (route body kind, Content-Type sent or None, refused with 415)
    ("json", None, False),  # a missing type is tried as JSON (API.md §1.3)
    ("json", "application/json", False),
    ("json", "application/json; charset=utf-8", False),
    ("json", "Application/JSON ; charset=UTF-8", False),
    ("json", "application/merge-patch+json", False),
    ("json", "text/plain", True),
    ("json", "application/x-www-form-urlencoded", True),
    ("json", "multipart/form-data; boundary=x", True),
    ("json", "", True),
    ("multipart", "multipart/form-data; boundary=x", False),
    ("multipart", "application/json", True),
    ("multipart", None, True),
    (None, "text/plain", False),  # routes without a body do not care
]


@pytest.mark.parametrize("body, content_type, refused", CONTENT_TYPES)
def test_content_type(body, content_type, refused):
    headers = {"host": "h"}
    if content_type is not None:
        headers["content-type"] = content_type
    route = Route("POST", "/x", handler, body=body)
    response = check_content_type(route, Request("POST", "/x", "HTTP/1.1", headers))
    if refused:
        assert response.status == 415
        assert b'"code":"unsupported_media_type"' in response.body
    else:
        assert response is None
