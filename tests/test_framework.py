"""The app framework against a real server: method rules, body checks before reading, the
error envelope (500 included, with the worker still up), pagination links (API.md §1.10 and
the §C.6 worked example, on the scores list), the admin helper, /openapi.json and /docs.

The scores app (API.md §E) is the app mounted; its own behaviour is tested in test_scores.py.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi
from support import parse_response, running_server

from framework.server.config import CORE_SETTINGS
from framework.server.protocol import Request
from framework.web import db
from framework.web.app import ApiError, ApiRequest
from framework.web.auth import require_admin
from framework.web.responses import Response
from framework.web.router import PARAM, Route
from handlers.api import Dispatcher, core

JSON_TYPE = "application/json; charset=utf-8"
TABLES = ("client_interests", "client_scores")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("framework"), ["scores"]) as s:
        yield s


def raw(server, method: str, path: str, *headers: str, body: bytes = b"") -> tuple:
    """One request on its own connection, exactly as written: (status, headers, body)."""
    head = "\r\n".join([f"{method} {path} HTTP/1.1", "Host: t", "Connection: close", *headers])
    return parse_response(server.raw(head.encode("latin-1") + b"\r\n\r\n" + body))


def envelope(response: requests.Response, status: int, code: str) -> dict:
    """Check the one error envelope (API.md §1.1) and return its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == JSON_TYPE
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    return error


# -- routing and methods -------------------------------------------------------------------

def test_ping_and_response_headers(server):
    r = server.get("/api/ping")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == JSON_TYPE
    assert r.headers["Content-Length"] == str(len(r.content))
    assert r.headers["Server"] == "httpd.py"
    assert "Date" in r.headers and "Connection" in r.headers


@pytest.mark.parametrize("path", ["/api/ping/", "/api/%70ing"])
def test_ping_other_spellings(server, path):
    assert server.get(path).json() == {"status": "ok"}


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/api/scores", "GET, HEAD, OPTIONS, POST"),
    ("DELETE", "/api/interests/", "GET, HEAD, OPTIONS, POST"),
    ("POST", "/api/interests/5", "DELETE, GET, HEAD, OPTIONS, PUT"),
    ("PATCH", "/api/scores/5", "DELETE, GET, HEAD, OPTIONS, PUT"),
    ("POST", "/api/ping", "GET, HEAD, OPTIONS"),
])
def test_405_with_allow(server, method, path, allow):
    before = server.snapshot(*TABLES)
    r = server.request(method, path, json={"client_id": 5, "interests": []})
    envelope(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == allow
    assert server.snapshot(*TABLES) == before


def test_head_is_get_without_a_body(server):
    get_status, get_headers, get_body = raw(server, "GET", "/api/scores")
    status, headers, body = raw(server, "HEAD", "/api/scores")
    assert status == get_status == 200
    assert body == b""
    assert headers["content-length"] == get_headers["content-length"] == str(len(get_body))
    assert headers["content-type"] == get_headers["content-type"]


def test_head_of_a_missing_item_is_a_bodiless_404(server):
    status, headers, body = raw(server, "HEAD", "/api/scores/424242")
    assert (status, body) == (404, b"")
    assert int(headers["content-length"]) > 0


def test_options_is_204_with_allow(server):
    status, headers, body = raw(server, "OPTIONS", "/api/interests/1")
    assert (status, body) == (204, b"")
    assert headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert "content-length" not in headers


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/nothing"),  # the core app owns /api/
    ("GET", "/api/scores/abc"),  # a non-numeric id: route mismatch, 404 (API.md §1.2)
    ("DELETE", "/api/scores/abc"),
    ("GET", "/api/scores/99999999999999999999"),  # past 2^63-1: 404, not 500 (§1.5)
    ("PUT", "/api/interests/-1"),
    ("GET", "/api/scores/1/extra"),
])
def test_unknown_api_paths_are_json_404(server, method, path):
    envelope(server.request(method, path), 404, "not_found")


def test_unclaimed_paths_fall_through_to_static(server):
    r = server.get("/index.html")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    r = server.get("/no-such-file.html")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    r = server.request("POST", "/index.html", data=b"x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("query", ["page=%zz", "client_ids=%FF", "x=%", "%C3=1"])
def test_malformed_query_string_is_400(server, query):
    status, _, body = raw(server, "GET", "/api/scores?" + query)  # as sent, not re-encoded
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request"


# -- bodies: media type, size, strict JSON -------------------------------------------------

def test_wrong_content_type_is_415_and_stores_nothing(server):
    before = server.snapshot(*TABLES)
    body = json.dumps({"client_id": 900, "interests": ["x"]})
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        r = server.request("POST", "/api/interests", data=body,
                           headers={"Content-Type": content_type})
        envelope(r, 415, "unsupported_media_type")
    assert server.snapshot(*TABLES) == before


def test_json_content_type_variants_and_missing_type_are_accepted(server):
    for client_id, content_type in enumerate(["application/json; charset=UTF-8",
                                              "APPLICATION/JSON", "application/x+json"], 901):
        body = json.dumps({"client_id": client_id, "interests": []}).encode()
        status, _, _ = raw(server, "POST", "/api/interests", f"Content-Type: {content_type}",
                           f"Content-Length: {len(body)}", body=body)
        assert status == 201
    body = b'{"client_id": 904, "interests": ["no content type"]}'
    status, _, reply = raw(server, "POST", "/api/interests",
                           f"Content-Length: {len(body)}", body=body)
    assert status == 201, reply
    assert json.loads(reply) == {"client_id": 904, "interests": ["no content type"]}


def test_413_is_answered_before_the_body_is_sent(server):
    # No body follows the head: a server that waited for it would answer only after its
    # 30 s body timeout, long after raw()'s 5 s, and this test would see nothing.
    head = (b"POST /api/interests HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\n\r\n")
    status, headers, body = parse_response(server.raw(head, timeout=5))
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_413_at_one_byte_past_the_limit(server):
    limit = 1024 * 1024  # max_body_size's default
    status, _, body = raw(server, "POST", "/api/interests", "Content-Type: application/json",
                          f"Content-Length: {limit + 1}")
    assert status == 413
    assert str(limit) in json.loads(body)["error"]["message"]


def test_a_body_at_the_limit_is_read(server):
    limit = 1024 * 1024
    start = b'{"client_id": 905, "interests": ["'
    body = start + b"x" * (limit - len(start) - 3) + b'"]}'
    assert len(body) == limit
    status, _, reply = raw(server, "POST", "/api/interests", "Content-Type: application/json",
                           f"Content-Length: {limit}", body=body)
    assert status == 400  # read and parsed: the one interest is too long
    assert "interests" in json.loads(reply)["error"]["fields"]


def test_chunked_body_over_the_limit_is_413_json(server):
    before = server.snapshot(*TABLES)
    status, _, body = raw(server, "POST", "/api/interests",
                          "Content-Type: application/json", "Transfer-Encoding: chunked",
                          body=b"200000\r\n" + b"x" * 1000)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert server.snapshot(*TABLES) == before


@pytest.mark.parametrize("body", [
    b'{"client_id": 906, "interests": [], "interests": ["x"]}',
    b'{"client_id": NaN, "interests": []}',
    b'{"client_id": 906, "interests": ["\\ud800"]}',
    b'{"client_id": 906, "interests": ["\xff"]}',
    b"[" * 100000 + b"]" * 100000,
    b"",
    b"{",
])
def test_bad_json_is_400_and_stores_nothing(server, body):
    before = server.snapshot(*TABLES)
    r = server.request("POST", "/api/interests", data=body,
                       headers={"Content-Type": "application/json"})
    envelope(r, 400, "bad_request")
    assert server.snapshot(*TABLES) == before


def test_bom_is_accepted(server):
    r = server.request("POST", "/api/interests", data=b'\xef\xbb\xbf{"client_id": 907, '
                       b'"interests": []}', headers={"Content-Type": "application/json"})
    assert r.status_code == 201


# -- unexpected exceptions -----------------------------------------------------------------

@pytest.fixture
def fragile(tmp_path):
    with running_server(tmp_path, ["scores"]) as s:
        yield s


def test_unexpected_exception_is_a_500_envelope_and_the_worker_survives(fragile):
    session = requests.Session()
    url = fragile.url
    assert session.post(url("/api/scores"), json={
        "client_id": 1, "first_name": "a", "last_name": "b"}).status_code == 201
    workers = sorted(fragile.worker_pids())
    with sqlite3.connect(fragile.db_path) as conn:  # pull the table from under the app
        conn.execute("DROP TABLE client_scores")
    for _ in range(4):  # enough to reach both workers, some on a kept-alive connection
        r = session.get(url("/api/scores/1"))
        error = envelope(r, 500, "internal_server_error")
        assert "client_scores" not in error["message"]  # internals never leak (§1.1)
        assert error["fields"] == {}
        r = requests.post(url("/api/scores"), json={"client_id": 2, "first_name": "a",
                                                    "last_name": "b"}, timeout=10)
        envelope(r, 500, "internal_server_error")
    assert session.get(url("/api/ping")).json() == {"status": "ok"}
    assert session.get(url("/api/interests")).status_code == 200  # other tables still fine
    assert sorted(fragile.worker_pids()) == workers  # no worker died or was replaced
    log = wait_for_text(fragile.stderr_path, "no such table")
    assert "Traceback" in log and "handler GET /api/scores/<int:client_id> failed" in log


def wait_for_text(path: Path, text: str, timeout: float = 5.0) -> str:
    """The content of a log file once ``text`` is in it (workers write asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text()
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.05)


def dispatcher(tmp_path: Path) -> Dispatcher:
    settings = {"document_root": str(tmp_path), "static_cache_size": 0,
                "max_body_size": 1024, "database": str(tmp_path / "unit.sqlite3"),
                "sqlite_busy_timeout": 1000, "sqlite_synchronous": "NORMAL"}
    return Dispatcher(settings, [])


def call(dispatcher: Dispatcher, handler, status: int = 200) -> Response:
    request = Request("GET", "/unit", "HTTP/1.1", {"host": "h"})
    return dispatcher.call(Route("GET", "/unit", handler, status=status), {}, request)


def test_dispatcher_renders_every_kind_of_result(tmp_path):
    d = dispatcher(tmp_path)

    def with_header(req: ApiRequest):
        req.add_header("X-Extra", "1")
        raise ApiError(409, "taken", {"id": ["exists"]}, headers=[("X-Why", "dup")])

    r = call(d, lambda req: {"a": 1}, status=201)
    assert (r.status, r.body, r.header("Content-Type")) == (201, b'{"a":1}', JSON_TYPE)
    assert (call(d, lambda req: None).status, call(d, lambda req: None).body) == (204, b"")
    assert call(d, lambda req: {"ignored": 1}, status=204).body == b""  # 204 has no body
    assert call(d, lambda req: Response(302, b"", [("Location", "/x")])).status == 302
    r = call(d, with_header)
    assert r.status == 409
    assert json.loads(r.body) == {"error": {"code": "conflict", "message": "taken",
                                            "fields": {"id": ["exists"]}}}
    assert r.header("X-Why") == "dup" and r.header("X-Extra") == "1"


def test_dispatcher_turns_an_exception_into_a_logged_500(tmp_path, caplog):
    def broken(req):
        raise RuntimeError("secret detail")

    def unserializable(req):
        return {"when": object()}

    d = dispatcher(tmp_path)
    for handler in (broken, unserializable):
        r = call(d, handler)
        assert r.status == 500
        assert json.loads(r.body) == {"error": {"code": "internal_server_error",
                                                "message": "internal server error",
                                                "fields": {}}}
    assert "secret detail" in caplog.text and "Traceback" in caplog.text


def test_dispatcher_rolls_back_a_transaction_left_open(tmp_path):
    d = dispatcher(tmp_path)

    def careless(req):
        req.db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        req.db.execute("BEGIN IMMEDIATE")
        req.db.execute("INSERT INTO t VALUES (1)")
        return {"ok": True}

    try:
        assert call(d, careless).status == 200
        conn = db.connection(d.settings)
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    finally:
        db.close_connection()


# -- pagination (API.md §1.10, §C.6 worked example) ----------------------------------------

@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    """23 scores, client_ids 1..23."""
    with running_server(tmp_path_factory.mktemp("paged"), ["scores"]) as s:
        session = requests.Session()
        for client_id in range(1, 24):
            r = session.post(s.url("/api/scores"), json={
                "client_id": client_id, "first_name": "a", "last_name": "b"})
            assert r.status_code == 201
        yield s


def page(server, query: str = "", path: str = "/api/scores") -> dict:
    r = server.get(path + query, headers={"Host": "h"})
    assert r.status_code == 200, r.text
    return r.json()


def ids(body: dict) -> list[int]:
    return [item["client_id"] for item in body["results"]]


def test_pagination_worked_example(paged):
    for query in ("", "?page=1", "?page="):
        body = page(paged, query)
        assert body["count"] == 23
        assert body["next"] == "http://h/api/scores?page=2"
        assert body["previous"] is None
        assert ids(body) == list(range(1, 11))
    body = page(paged, "?page=2")
    assert body["next"] == "http://h/api/scores?page=3"
    assert body["previous"] == "http://h/api/scores"  # the link to page 1 drops page (DRF)
    assert ids(body) == list(range(11, 21))
    body = page(paged, "?page=3")
    assert (body["next"], body["previous"]) == (None, "http://h/api/scores?page=2")
    assert ids(body) == [21, 22, 23]
    assert page(paged, "?page=last") == body
    assert page(paged, "?page=003") == body


@pytest.mark.parametrize("query", ["?page=4", "?page=0", "?page=-1", "?page=abc", "?page=1.0",
                                   "?page=2&page=99", "?page=" + "9" * 400])
def test_invalid_page_is_404(paged, query):
    r = paged.get("/api/scores" + query)
    assert envelope(r, 404, "not_found")["message"] == "Invalid page."


def test_page_size(paged):
    body = page(paged, "?page_size=5&page=2")
    assert ids(body) == [6, 7, 8, 9, 10]
    assert body["next"] == "http://h/api/scores?page=3&page_size=5"
    assert body["previous"] == "http://h/api/scores?page_size=5"
    for fallback in ("0", "-3", "abc", "", "2.5"):  # invalid: the default of 10
        assert len(page(paged, f"?page_size={fallback}")["results"]) == 10
    for huge in ("100", "1000", "9" * 40):  # clamped to max_page_size (100): one page
        body = page(paged, f"?page_size={huge}")
        assert (len(body["results"]), body["next"]) == (23, None)


def test_links_keep_other_parameters_and_the_path_form(paged):
    body = page(paged, "?page_size=5&client_ids=1,2,3,4,5,6,7,8,9,10,11,12&page=2")
    assert body["count"] == 12
    base = "http://h/api/scores?client_ids=1,2,3,4,5,6,7,8,9,10,11,12"  # parameters sorted
    assert body["next"] == base + "&page=3&page_size=5"
    assert body["previous"] == base + "&page_size=5"
    body = page(paged, "?page=2", path="/api/scores/")
    assert body["previous"] == "http://h/api/scores/"
    assert body["next"] == "http://h/api/scores/?page=3"


def test_links_follow_the_host_header(paged):
    r = paged.get("/api/scores", headers={"Host": "example.org:8080"})
    assert r.json()["next"] == "http://example.org:8080/api/scores?page=2"


def test_empty_collection(paged):
    body = page(paged, "?client_ids=999")
    assert body == {"count": 0, "next": None, "previous": None, "results": []}
    envelope(paged.get("/api/scores?client_ids=999&page=2"), 404, "not_found")


# -- admin helper (API.md, Decisions §1) ---------------------------------------------------

def admin_request(token: str, authorization: str | None) -> ApiRequest:
    headers = {"host": "h"}
    if authorization is not None:
        headers["authorization"] = authorization
    raw_request = Request("POST", "/admin", "HTTP/1.1", headers)
    return ApiRequest(raw_request, {},
                      {"admin_token": token})


@pytest.mark.parametrize("token, authorization, status", [
    ("", None, 403),  # off unless a token is configured
    ("", "Bearer anything", 403),
    ("", "Bearer ", 403),
    ("s3cret", None, 401),
    ("s3cret", "Bearer wrong", 401),
    ("s3cret", "Bearer s3cre", 401),
    ("s3cret", "Bearer s3cret2", 401),
    ("s3cret", "Basic s3cret", 401),
    ("s3cret", "s3cret", 401),
    ("s3cret", "Bearer", 401),
    ("s3cret", "Bearer s3cret", None),
    ("s3cret", "bearer s3cret", None),  # the scheme is case-insensitive (RFC 9110 §11.1)
    ("s3cret", "Bearer  s3cret ", None),
])
def test_require_admin(token, authorization, status):
    req = admin_request(token, authorization)
    if status is None:
        require_admin(req)
        return
    with pytest.raises(ApiError) as info:
        require_admin(req)
    assert info.value.status == status
    if status == 403:
        assert "admin_token" in info.value.message  # says how to enable the helpers
    else:
        assert ("WWW-Authenticate", 'Bearer realm="admin"') in info.value.headers


# -- OpenAPI and /docs ---------------------------------------------------------------------

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def check_openapi_structure(doc: dict) -> None:
    """Every field OpenAPI 3.0 requires, and the references and ids it expects to hold."""
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"])
    assert isinstance(doc["info"]["title"], str) and isinstance(doc["info"]["version"], str)
    assert doc["paths"]
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            assert method in HTTP_METHODS
            assert op["responses"]
            for code, response in op["responses"].items():
                assert code == "default" or re.fullmatch(r"[1-5][0-9][0-9]", code)
                assert isinstance(response["description"], str)
                for media in response.get("content", {}).values():
                    assert "schema" in media
            in_path = set()
            for param in op.get("parameters", []):
                assert param["in"] in ("path", "query", "header", "cookie")
                assert isinstance(param["name"], str) and "schema" in param
                if param["in"] == "path":
                    assert param["required"] is True
                    in_path.add(param["name"])
            assert in_path == templated, (path, method)
            if "requestBody" in op:
                assert op["requestBody"]["content"]
            operation_ids.append(op["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(doc)):
        node = doc
        for part in ref.split("/"):
            node = node[part]


def test_openapi_document(server):
    r = server.get("/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == JSON_TYPE
    doc = r.json()
    validate_openapi(doc)
    check_openapi_structure(doc)
    from apps.scores import app as scores_app
    routes = core.routes + scores_app.routes
    assert sum(len(item) for item in doc["paths"].values()) == len(routes)
    for route in routes:  # every route, method and typed path parameter is there
        op = doc["paths"][PARAM.sub(lambda m: "{" + m.group(2) + "}", route.pattern)][
            route.method.lower()]
        assert op["tags"] == [route.tags[0]]
        assert op["summary"]
        assert str(route.status) in op["responses"]
        params = {p["name"]: p["schema"]["type"] for p in op["parameters"] if p["in"] == "path"}
        assert params == {name: "integer" if kind == "int" else "string"
                          for name, kind in route.params.items()}
    assert {t["name"] for t in doc["tags"]} == {"core", "scores"}


def test_openapi_of_every_default_app_validates(tmp_path):
    """Whatever apps are mounted, their routes make a valid document (the generator has no
    knowledge of any app)."""
    apps = CORE_SETTINGS["apps"][0]
    with running_server(tmp_path, apps) as s:
        doc = s.get("/openapi.json").json()
    validate_openapi(doc)
    check_openapi_structure(doc)
    assert [t["name"] for t in doc["tags"]] == ["core", *apps]


def test_openapi_describes_bodies_and_responses(server):
    paths = server.get("/openapi.json").json()["paths"]
    post = paths["/api/scores"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert {"client_id", "phone", "email", "gender", "birthday"} <= set(schema["properties"])
    assert schema["required"] == ["client_id"]
    assert set(post["responses"]) == {"201", "400", "409", "413", "415"}
    assert "Location" in post["responses"]["201"]["headers"]
    listing = paths["/api/interests"]["get"]
    page_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page_schema["required"] == ["count", "next", "previous", "results"]
    assert page_schema["properties"]["results"]["items"]["required"] == ["client_id",
                                                                         "interests"]
    assert {"client_ids", "page", "page_size"} <= {p["name"] for p in listing["parameters"]}
    assert set(paths["/api/scores/{client_id}"]["delete"]["responses"]) == {"204", "404"}
    put = paths["/api/interests/{client_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "interests"]
    assert "text/html" in paths["/docs"]["get"]["responses"]["200"]["content"]


def test_docs_page_is_self_contained(server):
    r = server.get("/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    html = r.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'fetch("/openapi.json")' in html
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), \
        "the page must not load anything from another host"
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html, re.IGNORECASE)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_docs_page_lists_the_endpoints_in_a_browser(server):
    """The page's script really runs: headless chromium renders the endpoint list."""
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", server.url("/docs")],
        capture_output=True, timeout=120, text=True, check=False).stdout
    for method, path in [("GET", "/api/ping"), ("POST", "/api/scores"),
                         ("DELETE", "/api/interests/{client_id}")]:
        assert f'<span class="method {method}">{method}</span><span class="path">{path}</span>' \
            in dom
