"""Hosting a WSGI app: PEP 3333 end to end, over raw sockets against real server processes.

The app is tests/wsgi_apps/conformance.py, wrapped in wsgiref.validate.validator: a server
that hands it a wrong environ or misuses its iterable makes the validator raise inside the
app, and the test sees a 500 (or the validator's complaint in the server's stderr).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    HTTPD,
    REPO,
    RawConnection,
    free_port,
    parse_response,
    running_server,
    wait_for,
)

APPS = REPO / "tests" / "wsgi_apps"
BIG_BODY = 3 * 1024 * 1024  # past body_spool_size (1 MiB): the body is spooled to disk


class Answer:
    """One response read off a raw connection."""

    def __init__(self, head: bytes, body: bytes, complete: bool) -> None:
        self.head = head
        self.status, self.headers, _ = parse_response(head)
        self.body = body
        self.complete = complete  # False: the connection ended inside the body

    def json(self) -> dict:
        return json.loads(self.body)


def read_answer(conn: RawConnection, head_only: bool = False) -> Answer:
    """The next response, framed by Content-Length, chunked coding or the connection's end."""
    while b"\r\n\r\n" not in conn.buf:
        if not conn.fill():
            raise ConnectionError(f"closed before a response head: {conn.buf!r}")
    head, _, conn.buf = conn.buf.partition(b"\r\n\r\n")
    head += b"\r\n\r\n"
    status, headers, _ = parse_response(head)
    if head_only or status in (204, 304):
        return Answer(head, b"", True)
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(conn.buf) < length:
            if not conn.fill():
                return Answer(head, conn.buf, False)
        body, conn.buf = conn.buf[:length], conn.buf[length:]
        return Answer(head, body, True)
    if headers.get("transfer-encoding") == "chunked":
        return read_chunked(conn, head)
    while conn.fill():
        pass
    body, conn.buf = conn.buf, b""
    return Answer(head, body, True)


def read_chunked(conn: RawConnection, head: bytes) -> Answer:
    body = bytearray()
    while True:
        while b"\r\n" not in conn.buf:
            if not fill_or_reset(conn):
                return Answer(head, bytes(body), False)
        size_line, _, conn.buf = conn.buf.partition(b"\r\n")
        size = int(size_line, 16)
        while len(conn.buf) < size + 2:
            if not fill_or_reset(conn):
                return Answer(head, bytes(body + conn.buf[:size]), False)
        assert conn.buf[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
        body += conn.buf[:size]
        conn.buf = conn.buf[size + 2:]
        if size == 0:
            return Answer(head, bytes(body), True)


def fill_or_reset(conn: RawConnection) -> bool:
    try:
        return conn.fill()
    except ConnectionResetError:
        return False


def request(method: str, target: str, body: bytes = b"", headers: str = "",
            chunked: bool = False, version: str = "HTTP/1.1") -> bytes:
    head = f"{method} {target} {version}\r\nHost: wsgi.test:8000\r\n{headers}"
    if chunked:
        pieces = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + framed
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wsgi-site")
    (root / "static.txt").write_bytes(b"served by the server")
    (root / "sub").mkdir()
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_bytes(b"<p>index</p>")
    return root


@pytest.fixture(scope="module")
def served_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return os.urandom(300 * 1024)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, site: Path, served_file: bytes):
    work = tmp_path_factory.mktemp("wsgi")
    marks = work / "marks"
    marks.mkdir()
    (work / "served.bin").write_bytes(served_file)
    env = {"PYTHONPATH": str(APPS), "WSGI_MARKS": str(marks),
           "WSGI_FILE": str(work / "served.bin")}
    with running_server(work, [], document_root=site, ready_path="/ready", env=env,
                        wsgi_app="conformance:app", max_body_size=8 * 1024 * 1024) as s:
        s.marks = marks
        yield s
    log = s.stderr_path.read_text()
    assert "without being closed" not in log, "an iterable was not closed"
    assert "WSGIWarning" not in log


def exchange(server, data: bytes, head_only: bool = False) -> Answer:
    with server.connect() as conn:
        conn.send(data)
        return read_answer(conn, head_only)


# -- the environ -----------------------------------------------------------------------------

def test_environ_holds_every_pep_3333_key(server) -> None:
    with server.connect() as conn:
        conn.send(b"GET /a%2Fb/%C3%A9t%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: wsgi.test:8000\r\n"
                  b"X-Dup: a\r\nX-Dup: b\r\nX-Custom-Name: v\r\nX_Dup: spoofed\r\n"
                  b"Cookie: c=1\r\nCookie: d=2\r\nContent-Type: text/x-test\r\n\r\n")
        answer = read_answer(conn)
        local_port = conn.sock.getsockname()[1]
    assert answer.status == 200, answer.body
    data = answer.json()
    cgi = data["cgi"]
    # percent-decoded, then each byte one latin-1 character (PEP 3333 "native strings")
    assert cgi["PATH_INFO"] == "/a/b/" + "été".encode().decode("latin-1")
    assert cgi["SCRIPT_NAME"] == ""
    assert cgi["QUERY_STRING"] == "x=1&y=%20"
    assert cgi["REQUEST_METHOD"] == "GET"
    assert cgi["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (cgi["SERVER_NAME"], cgi["SERVER_PORT"]) == ("wsgi.test", "8000")
    assert cgi["HTTP_HOST"] == "wsgi.test:8000"
    assert (cgi["REMOTE_ADDR"], cgi["REMOTE_PORT"]) == ("127.0.0.1", str(local_port))
    assert cgi["HTTP_X_DUP"] == "a, b"  # repeated fields joined; X_Dup dropped, not merged
    assert cgi["HTTP_X_CUSTOM_NAME"] == "v"
    assert cgi["HTTP_COOKIE"] == "c=1; d=2"
    assert cgi["CONTENT_TYPE"] == "text/x-test"
    assert "HTTP_CONTENT_TYPE" not in cgi and "CONTENT_LENGTH" not in cgi
    assert cgi["RAW_URI"] == "/a%2Fb/%C3%A9t%C3%A9?x=1&y=%20"
    wsgi = data["wsgi"]
    assert wsgi["wsgi.version"] == "(1, 0)"
    assert wsgi["wsgi.url_scheme"] == "'http'"
    assert (wsgi["wsgi.multithread"], wsgi["wsgi.multiprocess"], wsgi["wsgi.run_once"]) == \
        ("False", "True", "False")
    assert wsgi["wsgi.input_terminated"] == "True"
    assert data["has_file_wrapper"] is True


def test_http10_request_without_host_names_the_server(server) -> None:
    answer = exchange(server, b"GET /x HTTP/1.0\r\n\r\n")
    cgi = answer.json()["cgi"]
    assert (cgi["SERVER_NAME"], cgi["SERVER_PORT"]) == ("127.0.0.1", str(server.port))
    assert cgi["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert "HTTP_HOST" not in cgi


def test_bad_percent_escape_is_400_before_the_app(server) -> None:
    assert exchange(server, request("GET", "/bad%zzescape")).status == 400


# -- the request body --------------------------------------------------------------------------

LINES = b"".join(b"line %d of the body\n" % i for i in range(200)) + b"no newline at the end"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("mode", ["all", "chunks", "readline", "readlines", "iter"])
def test_input_reads_the_decoded_body_every_way(server, mode: str, chunked: bool) -> None:
    answer = exchange(server, request("POST", f"/echo?read={mode}", LINES, chunked=chunked))
    assert answer.status == 200, answer.body
    data = answer.json()
    assert data["cgi"]["CONTENT_LENGTH"] == str(len(LINES))  # also when it came chunked
    assert "HTTP_TRANSFER_ENCODING" not in data["cgi"]
    assert data["body_sha256"] == hashlib.sha256(LINES).hexdigest()
    if mode in ("readline", "readlines", "iter"):
        assert data["pieces"] == LINES.count(b"\n") + 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_big_body_is_spooled_and_read_whole(server, chunked: bool) -> None:
    body = os.urandom(BIG_BODY)
    answer = exchange(server, request("PUT", "/echo?read=chunks", body, chunked=chunked))
    assert answer.status == 200
    data = answer.json()
    assert data["cgi"]["CONTENT_LENGTH"] == str(BIG_BODY)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_body_over_max_body_size_is_413_without_calling_the_app(server) -> None:
    data = request("POST", "/echo", b"").replace(b"Content-Length: 0",
                                                 b"Content-Length: 9000000")
    assert exchange(server, data).status == 413


# -- connections -------------------------------------------------------------------------------

def test_pipelined_requests_are_answered_in_order_on_one_connection(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/first") + request("POST", "/echo", LINES, chunked=True)
                  + request("GET", "/stream?n=5&size=1000") + request("HEAD", "/stream")
                  + request("GET", "/write"))
        first = read_answer(conn)
        echoed = read_answer(conn)
        streamed = read_answer(conn)
        head = read_answer(conn, head_only=True)
        written = read_answer(conn)
        # and the connection is still good for one more, sent after all were answered
        conn.send(request("GET", "/last"))
        last = read_answer(conn)
    assert first.json()["cgi"]["PATH_INFO"] == "/first"
    assert echoed.json()["body_length"] == len(LINES)
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.body == b"".join((b"%d" % i) * 1000 for i in range(5))
    assert head.status == 200 and head.headers["transfer-encoding"] == "chunked"
    assert written.body == b"written then returned"
    assert last.json()["cgi"]["PATH_INFO"] == "/last"
    assert all(a.headers["connection"] == "keep-alive" for a in (first, streamed, head, last))


def test_unknown_length_is_close_delimited_for_http10(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/stream?n=4&size=100", version="HTTP/1.0",
                          headers="Connection: keep-alive\r\n"))
        answer = read_answer(conn)
        assert conn.closed_by_server()
    assert "transfer-encoding" not in answer.headers and "content-length" not in answer.headers
    assert answer.headers["connection"] == "close"
    assert answer.body == b"0" * 100 + b"1" * 100 + b"2" * 100 + b"3" * 100


def test_stream_with_content_length_is_sent_as_is(server) -> None:
    answer = exchange(server, request("GET", "/stream?n=3&size=50000&length=1"))
    assert answer.headers["content-length"] == "150000"
    assert "transfer-encoding" not in answer.headers
    assert answer.body == b"0" * 50000 + b"1" * 50000 + b"2" * 50000


def test_app_connection_close_is_honoured_and_hop_by_hop_fields_are_ours(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/hop-by-hop"))
        answer = read_answer(conn)
        assert conn.closed_by_server()
    assert answer.body == b"bye!!"
    assert answer.head.lower().count(b"\r\nconnection:") == 1
    assert answer.headers["connection"] == "close"


# -- start_response, write(), exc_info ---------------------------------------------------------

def test_write_callable_comes_before_the_iterable(server) -> None:
    answer = exchange(server, request("GET", "/write"))
    assert answer.status == 200
    assert answer.body == b"written then returned"


def test_exc_info_before_the_head_replaces_the_status(server) -> None:
    answer = exchange(server, request("GET", "/exc-before"))
    assert answer.status == 503
    assert answer.body == b"replaced by the error page"


def test_exc_info_after_the_head_reraises_and_aborts_the_response(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/exc-after"))
        answer = read_answer(conn)
        assert conn.closed_by_server() or not answer.complete
    assert answer.status == 200
    assert answer.body == b"first part"
    assert not answer.complete, "an aborted chunked body must not look complete"
    assert wait_for(lambda: (server.marks / "exc-after").exists(), 5)  # close() was called
    assert "RuntimeError: after the head" in server.stderr_path.read_text()


def test_status_the_server_has_no_phrase_for_keeps_the_apps(server) -> None:
    answer = exchange(server, request("GET", "/teapot"))
    assert answer.head.startswith(b"HTTP/1.1 418 I'm a teapot\r\n")
    assert answer.body == b"short and stout"


def test_204_has_no_body_and_no_length(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/no-content") + request("GET", "/after"))
        answer = read_answer(conn)
        after = read_answer(conn)
    assert answer.status == 204 and "content-length" not in answer.headers
    assert after.json()["cgi"]["PATH_INFO"] == "/after"


def test_header_with_crlf_from_the_app_is_a_500_not_an_injection(server) -> None:
    answer = exchange(server, request("GET", "/bad-header"))
    assert answer.status == 500
    assert b"Injected" not in answer.head


# -- files and streams -------------------------------------------------------------------------

def test_file_wrapper_sends_the_file_from_its_position(server, served_file: bytes) -> None:
    # through the validator the wrapper is iterated: this checks FileWrapper's iteration
    answer = exchange(server, request("GET", "/file?1000"))
    assert answer.status == 200
    assert answer.body == served_file[1000:]


def test_file_wrapper_over_a_real_file_goes_out_by_sendfile(server, served_file: bytes) -> None:
    # the wrapped object refuses read(): only sendfile on its descriptor can send it
    answer = exchange(server, request("GET", "/sendfile"))
    assert answer.status == 200
    assert answer.body == served_file
    assert wait_for(lambda: (server.marks / "sendfile").exists(), 5)  # closed after sending
    head = exchange(server, request("HEAD", "/sendfile"), head_only=True)
    assert head.headers["content-length"] == str(len(served_file))


def test_client_gone_mid_stream_closes_the_iterable(server) -> None:
    with server.connect() as conn:
        conn.send(request("GET", "/stream?n=-1&size=65536&mark=gone"))
        while len(conn.buf) < 1024 * 1024:
            conn.fill()
    assert wait_for(lambda: (server.marks / "gone").exists(), 10)


def test_a_1_gib_generator_streams_in_bounded_memory(server) -> None:
    size, count = 1024 * 1024, 1024
    with server.connect(timeout=60) as conn:
        conn.send(request("GET", "/pid"))
        pid = read_answer(conn).json()["pid"]
        conn.send(request("GET", f"/stream?n={count}&size={size}&mark=big"))
        while b"\r\n\r\n" not in conn.buf:
            conn.fill()
        tail = conn.buf.partition(b"\r\n\r\n")[2]
        received = len(tail)
        while not tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk
            chunk = conn.sock.recv(1 << 20)
            assert chunk, "connection closed before the last chunk"
            received += len(chunk)
            tail = tail[-16:] + chunk
    assert received >= count * size
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = int(status.split("VmHWM:")[1].split()[0])
    assert peak_kib < 120 * 1024, f"worker peaked at {peak_kib} KiB while streaming 1 GiB"
    assert wait_for(lambda: (server.marks / "big").exists(), 5)


def test_app_exception_is_500_logged_and_the_worker_lives(server) -> None:
    before = sorted(server.worker_pids())
    answer = exchange(server, request("GET", "/fail"))
    assert answer.status == 500
    assert "RuntimeError: the app fails on purpose" in server.stderr_path.read_text()
    assert "Traceback" in server.stderr_path.read_text()
    time.sleep(0.3)
    assert sorted(server.worker_pids()) == before
    assert exchange(server, request("GET", "/still-here")).status == 200


# -- dispatch: static files first, then the app ------------------------------------------------

def test_existing_static_file_is_served_by_the_server(server) -> None:
    answer = exchange(server, request("GET", "/static.txt"))
    assert answer.body == b"served by the server"
    assert "etag" in answer.headers  # the static handler's answer, not the app's
    assert exchange(server, request("GET", "/withindex/")).body == b"<p>index</p>"


@pytest.mark.parametrize("target", ["/missing.txt", "/sub", "/sub/", "/withindex"])
def test_paths_that_are_not_files_go_to_the_app(server, target: str) -> None:
    answer = exchange(server, request("GET", target))
    assert answer.json()["cgi"]["PATH_INFO"] == target


def test_other_methods_on_a_static_path_go_to_the_app(server) -> None:
    answer = exchange(server, request("POST", "/static.txt", b"x=1"))
    assert answer.json()["cgi"]["REQUEST_METHOD"] == "POST"


def test_builtin_apps_keep_their_paths_and_script_name_is_stripped(tmp_path: Path,
                                                                   site: Path) -> None:
    env = {"PYTHONPATH": str(APPS), "WSGI_MARKS": str(tmp_path)}
    with running_server(tmp_path, ["scores"], document_root=site, env=env,
                        wsgi_app="conformance:app", wsgi_script_name="/mount") as s:
        assert s.get("/api/ping").json() == {"status": "ok"}  # the server's own route
        assert s.get("/api/scores").status_code == 200  # an enabled built-in app
        assert s.get("/api/nothing-here").status_code == 404  # under a claimed prefix
        cgi = s.get("/mount/page%20one").json()["cgi"]
        assert (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == ("/mount", "/page one")
        cgi = s.get("/mount").json()["cgi"]
        assert (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == ("/mount", "")
        cgi = s.get("/mountain").json()["cgi"]
        assert (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == ("/mount", "/mountain")


# -- the command line ----------------------------------------------------------------------------

def test_wsgi_flag_hosts_the_app_on_every_path(tmp_path: Path) -> None:
    """--wsgi without -c: no bundled apps or site; '/' and '/api/ping' are the app's."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(APPS), "WSGI_MARKS": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(HTTPD), "--wsgi", "conformance:app", "-w", "1",
                             "-p", str(port), "--access-log", "off"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def path_info(path: str) -> str | None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(request("GET", path))
                    conn = RawConnection.__new__(RawConnection)
                    conn.sock, conn.buf = s, b""
                    return read_answer(conn).json()["cgi"]["PATH_INFO"]
            except OSError:
                return None
        assert wait_for(lambda: path_info("/"), 15) == "/"
        assert path_info("/api/ping") == "/api/ping"
        assert path_info("/index.html") == "/index.html"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


@pytest.mark.parametrize("spec, error", [
    ("no_such_module:app", "ModuleNotFoundError: No module named 'no_such_module'"),
    ("conformance:no_such_name", "AttributeError"),
    ("conformance:ROUTES", "is not callable"),
    ("not a spec", "must be MODULE:CALLABLE"),
])
def test_import_error_is_one_line_at_start(tmp_path: Path, spec: str, error: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    result = subprocess.run([sys.executable, str(HTTPD), "--wsgi", spec, "-p", str(free_port())],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("httpd.py: ") and error in lines[0], lines


def test_module_is_imported_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("def app(:\n")
    result = subprocess.run([sys.executable, str(HTTPD), "--wsgi", "broken_app:app",
                             "-p", str(free_port())], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "SyntaxError" in result.stderr


@pytest.mark.parametrize("values, error", [
    ({"wsgi_app": "m:app", "wsgi_script_name": "mount"}, "wsgi_script_name must start with '/'"),
    ({"wsgi_app": "m:app", "wsgi_script_name": "/mount/"}, "wsgi_script_name must start"),
    ({"document_root": ""}, "document_root may be empty only when a wsgi_app is hosted"),
])
def test_wsgi_settings_are_checked(values: dict, error: str) -> None:
    from framework.server import config
    with pytest.raises(config.ConfigError, match=error):
        config.build({"apps": [], **values}, {})


def test_hosting_a_wsgi_app_turns_builtin_apps_and_static_files_off_by_default() -> None:
    from framework.server import config
    settings = config.build({"wsgi_app": "m:app"}, {})
    assert (settings["apps"], settings["document_root"]) == ([], "")
    settings = config.build({"wsgi_app": "m:app", "apps": ["scores"]}, {"document_root": "/x"})
    assert (settings["apps"], settings["document_root"]) == (["scores"], "/x")


def test_a_trusted_proxy_sets_remote_addr_and_url_scheme(server) -> None:
    """From 127.0.0.1 (trusted by default) X-Forwarded-* set REMOTE_ADDR, wsgi.url_scheme and
    the host; from 127.0.0.2 (loopback, not trusted) they are only headers."""
    fields = ("X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
              "X-Forwarded-Host: shop.example\r\n")
    for source, expected in (("127.0.0.1", ("203.0.113.9", "'https'", "shop.example", "443")),
                             ("127.0.0.2", ("127.0.0.2", "'http'", "wsgi.test", "8000"))):
        with RawConnection(server.port, source=source) as conn:
            conn.send(request("GET", "/echo", headers=fields))
            answer = read_answer(conn)
        data = answer.json()
        cgi = data["cgi"]
        assert (cgi["REMOTE_ADDR"], data["wsgi"]["wsgi.url_scheme"], cgi["SERVER_NAME"],
                cgi["SERVER_PORT"]) == expected
        assert cgi["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"  # the field itself stays
