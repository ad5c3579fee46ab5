"""What an outside review broke, each fixed and held here: signals, a stop in the middle of an
epoll batch, response-head injection, answers to non-HTTP bytes, bounded validation errors,
long imports under a short watchdog, lock contention and multipart charsets.

Most tests run a real httpd.py; the two that need a precise interleaving drive a real
``Worker`` in a forked child over real sockets, with a stand-in application.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import build_docroot
from support import alive, parse_response, running_server, wait_for

from framework.server import config
from framework.server.contract import Plan, Service
from framework.server.log import setup_error_log
from framework.server.master import Master
from framework.server.worker import Worker
from framework.web.responses import Response


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_docroot(tmp_path_factory.mktemp("site"))


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()




# == signals that operators send routinely ====================================================

# USR2 deliberately replaces the master (the upgrade): tests/test_operations.py
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGWINCH])
def test_routine_signals_kill_nothing(tmp_path: Path, site: Path, sig: int) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        before = sorted(server.worker_pids())
        for _ in range(3):
            server.signal(sig)
            time.sleep(0.1)
        time.sleep(0.5)
        assert server.proc.poll() is None, "the master died"
        assert sorted(server.worker_pids()) == before, "a worker died or was replaced"
        for _ in range(4):
            assert server.get("/text..txt").content == b"double dot ok"
        assert "Traceback" not in server.stderr_path.read_text()


def test_usr1_reopens_the_access_log_in_every_worker(tmp_path: Path, site: Path) -> None:
    """What logrotate does: move the file away, send USR1, expect a fresh file at the path."""
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        session = requests.Session()
        for _ in range(6):
            assert session.get(server.url("/text..txt")).status_code == 200
        wait_for(lambda: server.access_log.exists() and server.access_log.read_text(), 5)
        rotated = tmp_path / "access.log.1"
        server.access_log.rename(rotated)
        server.signal(signal.SIGUSR1)
        workers = set(server.worker_pids())

        def reopened() -> set[int]:
            return {int(line.split("[")[1].split("]")[0]) for line in
                    server.stderr_path.read_text().splitlines() if "access log reopened" in line}

        wait_for(lambda: reopened() == workers, 10)  # every worker, not just one
        assert server.access_log.exists()
        for _ in range(20):  # new connections, spread over both workers
            assert requests.get(server.url("/text..txt?after"), timeout=5).status_code == 200
        wait_for(lambda: server.access_log.read_text().count("?after") == 20, 5)
        assert "?after" not in rotated.read_text()


# == a graceful stop begun in the middle of an epoll batch =====================================

class StandIn:
    """The worker's Application protocol, answering every request with ``answer()``."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def preflight(self, request: Any) -> int:
        return 1 << 20

    def handle(self, request: Any) -> Response:
        return self.answer(request)

    def error(self, status: int, message: str, request: Any) -> Response:
        return Response(status, message.encode(), content_type="text/plain")


def worker_settings(**overrides: Any) -> dict[str, Any]:
    settings = config.build({"apps": []}, {})
    settings.update(access_log="off", **overrides)
    return settings


def test_stop_signal_and_pending_accept_in_one_epoll_batch(tmp_path: Path) -> None:
    """The review's EBADF: TERM handled first in a batch closes the listener, and the same
    batch still holds an event for it. The worker must finish its stop, not crash."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    heartbeat = os.open(os.devnull, os.O_RDONLY)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            worker = Worker(listener, StandIn(lambda r: Response(200, b"ok")),
                            worker_settings(), heartbeat, os.getppid())
            real_poll = worker.epoll.poll

            def poll(timeout: float) -> list[tuple[int, int]]:
                # put the signal's wake-up first, as epoll may, ahead of the listener
                events = real_poll(timeout)
                return sorted(events, key=lambda e: e[0] != worker.wakeup_fd)

            worker.epoll = type("E", (), {"poll": staticmethod(poll),
                                          "register": worker.epoll.register,
                                          "unregister": worker.epoll.unregister,
                                          "modify": worker.epoll.modify})()
            worker.setup_signals()
            worker.setup_signals = lambda: None
            os.write(ready_w, b"r")
            os.read(go_r, 1)  # the parent has connected a client and sent TERM
            worker.run()
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 3
        os._exit(code)
    try:
        os.read(ready_r, 1)
        client = socket.create_connection(("127.0.0.1", port))  # pending in the backlog
        os.kill(pid, signal.SIGTERM)  # both are ready before the first poll
        time.sleep(0.2)
        os.write(go_w, b"g")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the worker crashed during its stop"
        client.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for fd in (heartbeat, ready_r, ready_w, go_r, go_w):
            os.close(fd)
        listener.close()


def test_hup_under_load_leaves_no_traceback(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        stop = time.monotonic() + 4
        failures = []
        import threading

        def load() -> None:
            # a new connection per request keeps the accept path busy, which is where the
            # review's crash was (a reused idle connection may race with its close instead,
            # as with every HTTP/1.1 server: RFC 9112 §9.3.1 lets clients retry those)
            while time.monotonic() < stop:
                try:
                    r = requests.get(server.url("/text..txt"), timeout=5,
                                     headers={"Connection": "close"})
                    if r.status_code != 200:
                        failures.append(r.status_code)
                except requests.RequestException as exc:
                    failures.append(repr(exc))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(6):
            time.sleep(0.5)
            server.signal(signal.SIGHUP)
        for t in threads:
            t.join()
        stderr = server.stderr_path.read_text()
        assert "Traceback" not in stderr and "crashed" not in stderr, stderr[-3000:]
        assert not failures, failures[:5]


# == the one response serializer ==============================================================

def test_a_header_value_with_crlf_becomes_a_500_not_a_split_head() -> None:
    injected = Response(200, b"hi", [("X-Echo", "a\r\nSet-Cookie: stolen=1")])
    app = StandIn(lambda r: injected if r.path == "/bad" else Response(200, b"fine"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    heartbeat = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            Worker(listener, app, worker_settings(), heartbeat, os.getppid()).run()
        finally:
            os._exit(0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(get("/bad") + get("/good"))
            data = b""
            while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"fine"):
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
        assert data.startswith(b"HTTP/1.1 500 ")
        assert b"stolen" not in data and b"Set-Cookie" not in data
        assert data.count(b"HTTP/1.1 200 OK") == 1  # the pipelined request after it is served
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(heartbeat)
        listener.close()


# == answers to what is not HTTP ===============================================================

def test_tls_client_hello_on_the_plain_port_is_400_at_once(tmp_path: Path, site: Path) -> None:
    hello = bytes.fromhex("16030100c4010000c00303") + os.urandom(32) + b"\x00" * 40
    with running_server(tmp_path, [], document_root=site, workers=1,
                        header_timeout=20.0) as server:
        started = time.monotonic()
        raw = server.exchange(hello, timeout=10)
        waited = time.monotonic() - started
        assert raw.startswith(b"HTTP/1.1 400 ")
        assert waited < 10, "the answer waited for header_timeout"


def test_unknown_method_on_an_api_path_is_json_501(tmp_path: Path) -> None:
    with running_server(tmp_path, ["scores"]) as server:
        raw = server.exchange(b"FOO /api/scores HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, headers, body = parse_response(raw)
        assert status == 501 and headers["content-type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "not_implemented"
        known = server.exchange(b"PUT /api/ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                b"Content-Length: 0\r\n\r\n")
        assert parse_response(known)[0] == 405  # a known method the route refuses


# == apps under bad input and heavy work =======================================================

def worker_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_million_bad_citizens_get_a_small_400(tmp_path: Path) -> None:
    body = b'{"citizens":[' + b",".join([b"0"] * 1_000_000) + b"]}"  # 1.9 MiB
    with running_server(tmp_path, ["citizens"], workers=1) as server:
        (worker,) = server.worker_pids()
        r = requests.post(server.url("/imports"), data=body, timeout=60,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert len(r.content) <= 64 * 1024, len(r.content)
        error = r.json()["error"]
        assert len(error["fields"]) == 100
        assert "999900 more problems not listed" in error["message"]
        assert error["fields"]["citizens[0]."] == ["must be an object"]
        assert worker_rss_kib(worker) < 200 * 1024, "validation memory is not bounded"
        assert server.worker_pids() == [worker]
        assert server.snapshot("imports", "citizens") == {"imports": [], "citizens": []}


def test_a_huge_interests_list_gets_a_small_400(tmp_path: Path) -> None:
    interests = [""] * 250_000  # ~1 MiB of invalid items
    with running_server(tmp_path, ["scores"], workers=1) as server:
        r = requests.put(server.url("/api/interests/7"), json={"interests": interests},
                         timeout=60)
        assert r.status_code == 400 and len(r.content) <= 64 * 1024
        messages = r.json()["error"]["fields"]["interests"]
        assert 1 <= len(messages) <= 10
        assert server.snapshot("client_interests") == {"client_interests": []}


def circulant_import(count: int, relatives: int) -> bytes:
    half = relatives // 2
    citizens = [{"citizen_id": i, "town": "T", "street": "S", "building": "1", "apartment": 1,
                 "name": "N", "birth_date": "01.02.1990", "gender": "male",
                 "relatives": [(i + d) % count for d in range(-half, half + 1) if d]}
                for i in range(count)]
    return json.dumps({"citizens": citizens}, separators=(",", ":")).encode()


def test_a_long_import_outlives_a_short_watchdog(tmp_path: Path) -> None:
    """Handler work that keeps making progress keeps beating: an import that takes several
    times worker_timeout completes, on the same worker. (A stopped worker is still killed:
    test_server.py::test_hung_worker_is_killed_and_replaced.)"""
    body = circulant_import(4000, 1000)  # 4 million relation rows: a few seconds of work
    with running_server(tmp_path, ["citizens"], workers=1, worker_timeout=1.0) as server:
        (worker,) = server.worker_pids()
        started = time.monotonic()
        r = requests.post(server.url("/imports"), data=body, timeout=300,
                          headers={"Content-Type": "application/json"})
        took = time.monotonic() - started
        assert r.status_code == 201, r.text[:300]
        assert server.worker_pids() == [worker], "the watchdog killed a working worker"
        assert took > 1.0, "too small to prove anything: the import beat no watchdog"
        with contextlib.closing(server.db()) as conn:
            assert conn.execute("SELECT count(*) FROM relations").fetchone() == (4_000_000,)


SCORE = {"client_id": 5, "phone": "79990001122", "email": "a@example.com"}


def test_lock_contention_is_503_with_retry_after_never_500(tmp_path: Path) -> None:
    with running_server(tmp_path, ["scores"], workers=1, sqlite_busy_timeout=300) as server:
        holder = sqlite3.connect(server.db_path, isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            r = requests.post(server.url("/api/scores"), json=SCORE, timeout=30)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            assert r.json()["error"]["code"] == "service_unavailable"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert server.snapshot("client_scores") == {"client_scores": []}
        r = requests.post(server.url("/api/scores"), json=SCORE, timeout=30)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("content_type,data", [
    ("text/plain; charset=utf-7", b"+2ADY-"),  # decodes to a lone surrogate
    ("text/plain; charset=no-such-charset", b"title"),
    ("text/plain; charset=unicode_escape", b"\\ud800"),
    ("text/plain; charset=idna", b"title"),
    ("text/plain; charset=utf-8", b"\xff\xfe"),
])
def test_multipart_text_in_a_bad_charset_is_400(tmp_path: Path, content_type: str,
                                                data: bytes) -> None:
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
           b"\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01"
           b"\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n"
        f"fine\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
        f"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + png + (
        f"\r\n--{boundary}--\r\n").encode()
    with running_server(tmp_path, ["memes"], workers=1) as server:
        r = requests.post(server.url("/memes"), data=body, timeout=30, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 400, r.text
        assert "'title'" in r.json()["error"]["message"], r.text
        assert server.snapshot("memes") == {"memes": []}
        assert "Traceback" not in server.stderr_path.read_text()


# == supervision ================================================================================

def crash_at_once(settings: dict[str, Any]) -> None:
    os._exit(1)


def test_a_crash_looping_service_does_not_delay_worker_replacement(tmp_path: Path) -> None:
    """A real Master with a service that dies at start, every time: its back-off grows to
    seconds, while a killed worker is replaced at once (back-off is per role)."""
    listener_probe = socket.socket()
    listener_probe.bind(("127.0.0.1", 0))
    port = listener_probe.getsockname()[1]
    listener_probe.close()
    settings = worker_settings(workers=1, port=port, host="127.0.0.1")
    plan = Plan(settings, StandIn(lambda r: Response(200, b"ok")),
                [Service("crashy", crash_at_once)])
    log_path = tmp_path / "master.log"
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 2)
            sys.stderr = open(fd, "w", buffering=1)  # noqa: SIM115 - the child's, until _exit
            setup_error_log("info")
            master = Master(plan, lambda: plan)
            master.bind()
            code = master.run()
        except BaseException:
            code = 3
        os._exit(code)
    try:
        def children() -> list[int]:
            return [int(p) for p in
                    Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

        wait_for(lambda: log_path.exists() and
                 log_path.read_text().count("crashy") >= 5, timeout=20)
        (victim,) = wait_for(lambda: [p for p in children() if alive(p)
                                      and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
                             or None, timeout=5)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: [p for p in children() if p != victim and alive(p)] or None,
                            timeout=1.5)
        assert replaced
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(get("/"))
            assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
    finally:
        os.kill(pid, signal.SIGQUIT)
        os.waitpid(pid, 0)
