"""The server as processes and connections: keep-alive, pipelining, timeouts, limits, signals,
the command line and the logs. Every test runs a real ``httpd.py`` on a free port.

Timeouts are configured small (about a second) so that the tests stay fast; the worker checks
deadlines once a second, so "closed" is awaited with a few seconds of patience, never timed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
from conftest import build_docroot
from support import (
    HTTPD,
    ServerProcess,
    alive,
    free_port,
    parse_response,
    running_server,
    wait_for,
)

import httpd
from framework import __version__
from framework.server import config
from handlers import app_settings, every_app_setting

HUGE = 12 * 1024 * 1024  # larger than the kernel's socket buffers: a download stays in flight
SMALL_TIMEOUTS = {"header_timeout": 1.0, "keepalive_timeout": 1.0, "body_timeout": 1.0}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_docroot(tmp_path_factory.mktemp("server-site"))
    (root / "huge.bin").write_bytes(os.urandom(HUGE))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, site: Path):
    """One worker, so that anything blocking it would block every other client too."""
    with running_server(tmp_path_factory.mktemp("one-worker"), [], document_root=site,
                        workers=1, max_body_size=1000, max_request_line=256,
                        max_header_size=2048, max_header_count=20, **SMALL_TIMEOUTS) as s:
        yield s


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(path: str, version: str = "HTTP/1.1", extra: str = "") -> bytes:
    host = "Host: test\r\n" if version == "HTTP/1.1" else ""
    return f"GET {path} {version}\r\n{host}{extra}\r\n".encode()


def slow_socket(port: int) -> socket.socket:
    """A client with a tiny receive window, so the server must wait for it to read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def read_response_head(sock: socket.socket) -> tuple[dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(16384)
        assert chunk, "closed before the head"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return parse_response(head + b"\r\n\r\n")[1], rest


def read_all(sock: socket.socket, have: bytes, total: int) -> bytes:
    parts = [have]
    size = len(have)
    while size < total:
        chunk = sock.recv(262144)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)




# == keep-alive and pipelining ==============================================================

def test_http11_keeps_the_connection_by_default(server) -> None:
    with server.connect() as conn:
        for path, body in [("/text..txt", b"double dot ok"), ("/dir2/page.html", b"<html>page</html>"),
                           ("/missing", None), ("/text..txt", b"double dot ok")]:
            conn.send(get(path))
            status, headers, got = conn.response()
            assert headers["connection"] == "keep-alive"
            if body is not None:
                assert (status, got) == (200, body)
            else:
                assert status == 404


def test_http10_closes_unless_keep_alive_is_asked(server) -> None:
    with server.connect() as conn:
        conn.send(get("/text..txt", "HTTP/1.0"))
        status, headers, body = conn.response()
        assert (status, body, headers["connection"]) == (200, b"double dot ok", "close")
        assert conn.closed_by_server()
    with server.connect() as conn:
        for _ in range(3):
            conn.send(get("/text..txt", "HTTP/1.0", "Connection: keep-alive\r\n"))
            status, headers, body = conn.response()
            assert (status, headers["connection"]) == (200, "keep-alive")
        conn.send(get("/text..txt", "HTTP/1.0"))  # without keep-alive: the last one
        assert conn.response()[1]["connection"] == "close"
        assert conn.closed_by_server()


def test_client_connection_close_is_honoured(server) -> None:
    with server.connect() as conn:
        conn.send(get("/text..txt", extra="Connection: close\r\n"))
        status, headers, body = conn.response()
        assert (status, headers["connection"], body) == (200, "close", b"double dot ok")
        assert conn.closed_by_server()


def test_server_connection_close_after_an_error(server) -> None:
    with server.connect() as conn:
        conn.send(b"GET / HTTP/1.1\r\n\r\n" + get("/text..txt"))  # no Host: 400, then close
        status, headers, _ = conn.response()
        assert (status, headers["connection"]) == (400, "close")
        assert conn.closed_by_server()  # the request after the error is not answered


def test_pipelined_requests_are_answered_in_order(server, site: Path) -> None:
    paths = ["/text..txt", "/dir2/page.html", "/missing", "/big.bin", "/dir1", "/logo.v2.png",
             "/medium.bin", "/index.html"] * 3
    with server.connect() as conn:
        conn.send(b"".join(get(p) for p in paths))
        for path in paths:
            status, _, body = conn.response()
            file = site / path.lstrip("/")
            if file.is_file():
                assert status == 200 and body == file.read_bytes(), path
            else:
                assert status in (301, 404), path
        conn.send(get("/text..txt"))  # still open and in sync
        assert conn.response()[2] == b"double dot ok"


def test_many_pipelined_large_answers(server, site: Path) -> None:
    """More answers than fit the send buffers: the worker pauses and resumes in order."""
    medium = (site / "medium.bin").read_bytes()
    big = (site / "big.bin").read_bytes()
    paths = ["/medium.bin", "/text..txt", "/big.bin"] * 10
    with server.connect(timeout=10) as conn:
        conn.send(b"".join(get(f"{p}?n={n}") for n, p in enumerate(paths)))
        for path in paths:
            status, _, body = conn.response()
            expected = {"/medium.bin": medium, "/big.bin": big}.get(path, b"double dot ok")
            assert status == 200 and body == expected, path


def test_pipelined_requests_split_at_odd_places(server) -> None:
    data = b"".join(get(f"/text..txt?n={n}") for n in range(20))
    with server.connect() as conn:
        for start in range(0, len(data), 7):
            conn.send(data[start:start + 7])
        for _ in range(20):
            assert conn.response()[::2] == (200, b"double dot ok")


def test_pipelined_head_requests_and_bodies(server) -> None:
    with server.connect() as conn:
        conn.send(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /text..txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /dir2/page.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n"
                  b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _ = conn.response(head_only=True)
        assert status == 200 and headers["content-length"] == str(3 * 1024 * 1024)
        assert conn.response()[::2] == (200, b"double dot ok")
        assert conn.response()[::2] == (200, b"<html>page</html>")
        status, headers, _ = conn.response()
        assert (status, headers["connection"]) == (200, "close")
        assert conn.closed_by_server()


def test_expect_100_continue(server) -> None:
    with server.connect() as conn:
        conn.send(b"GET /text..txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert conn.response() == (100, {}, b"")
        conn.send(b"hello")
        assert conn.response()[::2] == (200, b"double dot ok")
        # a body over the limit is refused at once, without the 100 and without reading it
        conn.send(b"GET /text..txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        status, headers, _ = conn.response()
        assert (status, headers["connection"]) == (413, "close")


def test_body_limits(server) -> None:
    raw = server.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    chunked = b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        b"1f4\r\n" + b"a" * 500 + b"\r\n" + b"1f5\r\n" + b"b" * 501 + b"\r\n0\r\n\r\n"
    assert server.exchange(chunked).startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    at_limit = b"GET /text..txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n" \
        b"Connection: close\r\n\r\n" + b"x" * 1000
    assert parse_response(server.exchange(at_limit))[::2] == (200, b"double dot ok")


def test_configured_head_limits(server) -> None:
    def status(raw: bytes) -> int:
        return parse_response(server.exchange(raw))[0]

    line = "/text..txt?" + "q" * (256 - len("GET /text..txt? HTTP/1.1"))
    assert status(get(line, extra="Connection: close\r\n")) == 200  # exactly 256 bytes
    assert status(get(line + "q")) == 414
    fields = "".join(f"X-{n}: v\r\n" for n in range(18))  # with Host and Connection: 20
    assert status(get("/text..txt", extra=fields + "Connection: close\r\n")) == 200
    assert status(get("/text..txt", extra=fields + "X-One-More: v\r\nConnection: close\r\n")) == 431
    assert status(get("/text..txt", extra="X-Big: " + "b" * 2048 + "\r\n")) == 431


# == slow clients ===========================================================================

def test_slow_reader_does_not_block_others(server, site: Path) -> None:
    sock = slow_socket(server.port)
    try:
        sock.sendall(get("/huge.bin"))
        headers, rest = read_response_head(sock)
        assert headers["content-length"] == str(HUGE)
        # the only worker is now waiting for this client to read; others are still served
        for _ in range(10):
            assert server.get("/text..txt").content == b"double dot ok"
        assert sha256(server.get("/big.bin").content) == sha256((site / "big.bin").read_bytes())
        body = read_all(sock, rest, HUGE)
        assert sha256(body) == sha256((site / "huge.bin").read_bytes())
    finally:
        sock.close()


def test_keepalive_timeout_closes_idle_connections(server) -> None:
    with server.connect(timeout=6) as conn:
        conn.send(get("/text..txt"))
        assert conn.response()[0] == 200
        assert conn.closed_by_server()  # keepalive_timeout is 1 s here
    # (a connection that never sends a byte is not even accepted: the listener uses
    # TCP_DEFER_ACCEPT, so the kernel holds it until data arrives)


def test_header_timeout_closes_a_half_sent_head(server) -> None:
    with server.connect(timeout=6) as conn:
        conn.send(b"GET /text..txt HTTP/1.1\r\nHost: x\r\n")
        assert conn.closed_by_server()


def test_body_timeout_closes_a_half_sent_body(server) -> None:
    with server.connect(timeout=6) as conn:
        conn.send(b"GET /text..txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert conn.closed_by_server()


def test_slowloris_costs_a_descriptor_not_the_worker(server) -> None:
    """Clients that trickle a head byte by byte neither block others nor stay forever:
    the head timeout counts from the first byte, not from the last one."""
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
    line = b"GET /text..txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    closed = set()
    try:
        for i in range(len(line)):
            for n, sock in enumerate(socks):
                if n in closed:
                    continue
                try:
                    sock.sendall(line[i:i + 1])
                except OSError:
                    closed.add(n)
            if i % 10 == 0:
                assert server.get("/text..txt").content == b"double dot ok"
            if len(closed) == len(socks):
                break
            time.sleep(0.02)
        assert closed == set(range(len(socks))), "slow heads outlived header_timeout"
    finally:
        for sock in socks:
            sock.close()


def test_connection_cap_reclaims_the_oldest_idle_keepalive(tmp_path: Path, site: Path) -> None:
    """At max_connections, idle keep-alive connections make room for new clients (nginx's
    "reusing connections"): the newcomer is served at once, the oldest idle one is closed."""
    with running_server(tmp_path, [], document_root=site, workers=1, max_connections=3,
                        keepalive_timeout=30.0) as server:
        held = [server.connect() for _ in range(3)]
        try:
            for conn in held:  # make sure the worker has accepted each of them, in order
                conn.send(get("/text..txt"))
                assert conn.response()[0] == 200
                time.sleep(0.05)
            with server.connect(timeout=3) as newcomer:
                newcomer.send(get("/text..txt"))
                assert newcomer.response()[::2] == (200, b"double dot ok")
            held[0].sock.settimeout(3)
            assert held[0].sock.recv(1) == b"", "the oldest idle connection was not closed"
            held[2].send(get("/text..txt"))  # the newest idle one was kept
            assert held[2].response()[0] == 200
        finally:
            for conn in held:
                conn.close()


def test_connection_cap_waits_while_every_connection_is_busy(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=1, max_connections=3,
                        keepalive_timeout=30.0, header_timeout=30.0) as server:
        held = [server.connect() for _ in range(3)]
        try:
            for conn in held:  # each in the middle of a request head: none is idle
                conn.send(b"GET /text..txt HTTP/1.1\r\n")
            time.sleep(0.3)
            with server.connect(timeout=1) as waiting:
                waiting.send(get("/text..txt"))
                with pytest.raises(socket.timeout):
                    waiting.response()  # the worker is at its cap: not accepted yet
                held[0].send(b"Host: t\r\n\r\n")  # answered, so now idle: reclaimable
                assert held[0].response()[0] == 200
                waiting.sock.settimeout(5)
                assert waiting.response()[::2] == (200, b"double dot ok")
        finally:
            for conn in held:
                conn.close()


# == the master: supervision and signals =====================================================

def test_killed_worker_is_replaced(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        before = set(server.worker_pids())
        victim = min(before)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> set[int] | None:
            pids = set(server.worker_pids())
            return pids if len(pids) == 2 and victim not in pids else None

        after = wait_for(replaced, timeout=3)
        assert before - {victim} <= after
        for _ in range(10):
            assert server.get("/text..txt").content == b"double dot ok"
        wait_for(lambda: f"worker {victim} exited" in server.stderr_path.read_text(), timeout=3)
        stderr = server.stderr_path.read_text()
        # errors carry the pid of the process that logged them (here the master's)
        assert re.search(rf"\[{server.proc.pid}\] WARNING httpd\.master: worker {victim} "
                         rf"exited with signal {int(signal.SIGKILL)}", stderr)


def test_hung_worker_is_killed_and_replaced(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=1,
                        worker_timeout=2.0) as server:
        (victim,) = server.worker_pids()
        os.kill(victim, signal.SIGSTOP)  # stuck: no more heartbeats
        try:
            wait_for(lambda: server.worker_pids() not in ([], [victim]), timeout=8)
        finally:
            if alive(victim):
                os.kill(victim, signal.SIGKILL)
        assert server.get("/text..txt").content == b"double dot ok"
        assert "sent no heartbeat" in server.stderr_path.read_text()


def start_slow_download(server) -> tuple[socket.socket, bytes]:
    sock = slow_socket(server.port)
    sock.sendall(get("/huge.bin"))
    headers, rest = read_response_head(sock)
    assert headers["content-length"] == str(HUGE)
    return sock, rest


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_term_lets_an_inflight_download_finish(tmp_path: Path, site: Path) -> None:
    server = ServerProcess(tmp_path, [], document_root=site, workers=2).start()
    try:
        sock, rest = start_slow_download(server)
        idle = server.connect(timeout=5)
        idle.send(get("/text..txt"))
        assert idle.response()[0] == 200  # an idle keep-alive connection
        server.signal(signal.SIGTERM)
        assert idle.closed_by_server()  # idle connections are closed at once
        wait_for(lambda: refused(server.port), timeout=3)  # no new client is left hanging
        assert server.proc.poll() is None  # still running: a download is in flight
        body = read_all(sock, rest, HUGE)
        sock.close()
        assert len(body) == HUGE and sha256(body) == sha256((site / "huge.bin").read_bytes())
        assert server.proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2)
    finally:
        server.stop(signal.SIGKILL)


def test_int_stops_gracefully(tmp_path: Path, site: Path) -> None:
    server = ServerProcess(tmp_path, [], document_root=site, workers=2).start()
    try:
        workers = server.worker_pids()
        server.signal(signal.SIGINT)
        assert server.proc.wait(10) == 0
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=3)
    finally:
        server.stop(signal.SIGKILL)


def test_graceful_timeout_bounds_a_stop(tmp_path: Path, site: Path) -> None:
    """A client that never reads cannot hold a stopping server past graceful_timeout."""
    server = ServerProcess(tmp_path, [], document_root=site, workers=1,
                           graceful_timeout=1.0).start()
    try:
        sock, _ = start_slow_download(server)  # and never read again
        server.signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        sock.close()
    finally:
        server.stop(signal.SIGKILL)


def test_restart_on_the_same_port_right_away(tmp_path: Path, site: Path) -> None:
    """SO_REUSEADDR: the connections just closed (TIME_WAIT) do not block a new bind."""
    first = ServerProcess(tmp_path / "first", [], document_root=site, workers=1).start()
    for _ in range(5):
        first.exchange(get("/text..txt", "HTTP/1.0"))  # the server closes: TIME_WAIT on its side
    assert first.stop() == 0
    second = ServerProcess(tmp_path / "second", [], document_root=site, workers=1)
    second.port = first.port
    second.start()
    try:
        assert second.get("/text..txt").content == b"double dot ok"
    finally:
        second.stop()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_listen_backlog_is_somaxconn(server) -> None:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == "LISTEN"
    assert int(out[2]) == int(Path("/proc/sys/net/core/somaxconn").read_text())


def test_quit_stops_at_once(tmp_path: Path, site: Path) -> None:
    server = ServerProcess(tmp_path, [], document_root=site, workers=2).start()
    try:
        workers = server.worker_pids()
        sock, rest = start_slow_download(server)
        server.signal(signal.SIGQUIT)
        assert server.proc.wait(5) == 0
        body = read_all(sock, rest, HUGE)
        sock.close()
        assert len(body) < HUGE  # the download was cut, not finished
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=3)
    finally:
        server.stop(signal.SIGKILL)


def test_hup_replaces_workers_without_dropping_a_request(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        old = set(server.worker_pids())
        stop = threading.Event()
        results: list[object] = []

        def client() -> None:
            while not stop.is_set():
                try:
                    r = requests.get(server.url("/text..txt"), timeout=10,
                                     headers={"Connection": "close"})
                    results.append((r.status_code, r.content))
                except requests.RequestException as exc:
                    results.append(exc)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(results) > 20)
            current = json.loads(server.config_path.read_text())
            server.config_path.write_text(json.dumps({**current, "workers": 3}))
            server.signal(signal.SIGHUP)

            def replaced() -> set[int] | None:
                pids = set(server.worker_pids())
                return pids if len(pids) == 3 and not pids & old else None

            new = wait_for(replaced)
            count = len(results)
            wait_for(lambda: len(results) > count + 20)
        finally:
            stop.set()
            for t in threads:
                t.join()
        failures = [r for r in results if r != (200, b"double dot ok")]
        assert not failures, failures[:5]
        assert len(new) == 3  # the reloaded config took effect


def test_hup_with_a_broken_config_keeps_the_running_one(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        before = set(server.worker_pids())
        good = server.config_path.read_text()
        server.config_path.write_text(json.dumps({**json.loads(good), "no_such_key": 1}))
        server.signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in server.stderr_path.read_text(), timeout=5)
        assert "no_such_key" in server.stderr_path.read_text()
        assert set(server.worker_pids()) == before
        assert server.get("/text..txt").content == b"double dot ok"


def test_ttin_and_ttou_change_the_worker_count(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2) as server:
        server.signal(signal.SIGTTIN)
        wait_for(lambda: len(server.worker_pids()) == 3)
        server.signal(signal.SIGTTIN)
        wait_for(lambda: len(server.worker_pids()) == 4)
        server.signal(signal.SIGTTOU)
        wait_for(lambda: len(server.worker_pids()) == 3)
        # one signal at a time: the kernel merges a signal sent while the same one is pending
        server.signal(signal.SIGTTOU)
        wait_for(lambda: len(server.worker_pids()) == 2)
        server.signal(signal.SIGTTOU)
        wait_for(lambda: len(server.worker_pids()) == 1)
        server.signal(signal.SIGTTOU)  # never below one worker
        time.sleep(1.5)
        assert len(server.worker_pids()) == 1
        assert server.get("/text..txt").content == b"double dot ok"


def test_no_orphans_when_the_master_is_killed(tmp_path: Path, site: Path) -> None:
    server = ServerProcess(tmp_path, [], document_root=site, workers=3).start()
    workers = server.worker_pids()
    assert len(workers) == 3
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5)
    server.stderr.close()


# == command line and config =================================================================

def run_httpd(args: list[str], cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HTTPD), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def write_config(path: Path, **values) -> Path:
    base = {"apps": [], "database": str(path.parent / "db.sqlite3"),
            "media_root": str(path.parent / "media"), "access_log": "off"}
    path.write_text(json.dumps({**base, **values}))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("httpd.py: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("values,fragments", [
    ({"no_such_key": 1}, ["unknown config key", "no_such_key"]),
    ({"workers": "4"}, ["workers", "int"]),
    ({"workers": 2.5}, ["workers", "int"]),
    ({"workers": True}, ["workers", "int"]),
    ({"keepalive_timeout": "5"}, ["keepalive_timeout", "float"]),
    ({"apps": "citizens"}, ["apps", "list"]),
    ({"port": 70000}, ["port"]),
    ({"workers": -1}, ["workers"]),
    ({"log_level": "loud"}, ["log_level"]),
    ({"max_connections": 0}, ["max_connections"]),
    ({"document_root": "/no/such/dir"}, ["document root", "/no/such/dir"]),
    ({"access_log": "/no/such/dir/access.log"}, ["access", "/no/such/dir/access.log"]),
])
def test_bad_config_stops_with_one_line(tmp_path: Path, site: Path, values, fragments) -> None:
    config_file = write_config(tmp_path / "config.json",
                               **{"document_root": str(site), "port": free_port(), **values})
    result = run_httpd(["-c", str(config_file)], tmp_path)
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize("content,fragments", [
    ("{not json", ["not valid JSON"]), ("[1, 2]", ["JSON object"]),
])
def test_unreadable_config_file(tmp_path: Path, content: str, fragments) -> None:
    (tmp_path / "config.json").write_text(content)
    result = run_httpd(["-c", str(tmp_path / "config.json")], tmp_path)
    assert_one_line_error(result, *fragments)


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_httpd(["-c", str(tmp_path / "nope.json")], tmp_path)
    assert_one_line_error(result, "config file not found", "nope.json")


def test_missing_document_root_flag(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "config.json")
    result = run_httpd(["-c", str(config_file), "-r", "no_such_root", "-p", str(free_port())], tmp_path)
    assert_one_line_error(result, "document root", "no_such_root")


def test_port_in_use(tmp_path: Path, site: Path) -> None:
    config_file = write_config(tmp_path / "config.json", document_root=str(site))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_httpd(["-c", str(config_file), "-p", str(port)], tmp_path)
    assert_one_line_error(result, str(port), "in use")


def test_flags_override_the_config_file(tmp_path: Path, site: Path) -> None:
    other = tmp_path / "other-root"
    other.mkdir()
    (other / "index.html").write_bytes(b"flag root")
    port = free_port()
    config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=1,
                          port=free_port(), access_log=str(tmp_path / "file.log"))
    with httpd_process(tmp_path, "-c", str(config_file), "-p", str(port), "-r", str(other),
                       "-w", "3", "--access-log", str(tmp_path / "flag.log")) as proc:
        r = wait_for(lambda: try_get(f"http://127.0.0.1:{port}/"))
        assert r.content == b"flag root"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        # the first worker may answer before the master has forked the third
        wait_for(lambda: len(children.read_text().split()) == 3, timeout=5)
        wait_for(lambda: (tmp_path / "flag.log").exists()
                 and "GET / HTTP/1.1" in (tmp_path / "flag.log").read_text(), timeout=5)
        assert not (tmp_path / "file.log").exists()


def test_host_flag(tmp_path: Path, site: Path) -> None:
    port = free_port()
    config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=1)
    with httpd_process(tmp_path, "-c", str(config_file), "-p", str(port), "-H", "127.0.0.2"):
        r = wait_for(lambda: try_get(f"http://127.0.0.2:{port}/text..txt"))
        assert r.content == b"double dot ok"
        assert refused(port)  # not listening on 127.0.0.1


def settings_from(argv: list[str]) -> dict:
    return httpd.load_settings(httpd.parse_args(argv))


def test_precedence_defaults_file_flags(tmp_path: Path, site: Path) -> None:
    config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=3,
                               keepalive_timeout=2, port=9001)
    s = settings_from(["-c", str(config_file), "-p", "9002"])
    assert s["port"] == 9002  # flag over file
    assert s["workers"] == 3  # file over default
    assert s["keepalive_timeout"] == 2.0 and type(s["keepalive_timeout"]) is float
    assert s["header_timeout"] == config.CORE_SETTINGS["header_timeout"][0]  # default
    assert s["access_log"] == "off"
    s = settings_from(["-c", str(config_file), "-w", "5", "--access-log", "-",
                       "--log-level", "error", "-H", "0.0.0.0"])
    assert (s["workers"], s["access_log"], s["log_level"], s["host"]) == (5, "-", "error",
                                                                          "0.0.0.0")


def test_relative_paths_follow_their_source(tmp_path: Path, site: Path, monkeypatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "www").mkdir()
    (tmp_path / "cwd" / "flag-root").mkdir(parents=True)
    config_file = write_config(tmp_path / "conf" / "config.json", document_root="www",
                               access_log="logs.txt")
    monkeypatch.chdir(tmp_path / "cwd")
    s = settings_from(["-c", str(config_file)])
    assert s["document_root"] == str(tmp_path / "conf" / "www")  # from the file's directory
    assert s["access_log"] == str(tmp_path / "conf" / "logs.txt")
    s = settings_from(["-c", str(config_file), "-r", "flag-root"])
    assert s["document_root"] == str(tmp_path / "cwd" / "flag-root")  # from the cwd


def test_automatic_values() -> None:
    s = config.build({"workers": 0, "backlog": 0}, {})
    assert s["workers"] == (os.cpu_count() or 1)
    assert s["backlog"] == int(Path("/proc/sys/net/core/somaxconn").read_text())


def test_server_config_json_lists_every_setting_with_its_default() -> None:
    """The shipped file documents every key, the enabled apps' keys included."""
    shipped = json.loads((Path(httpd.HERE) / "server_config.json").read_text())
    schema = {**config.CORE_SETTINGS, **app_settings(shipped["apps"])}
    assert sorted(set(schema) - set(shipped)) == [], "keys missing from server_config.json"
    assert sorted(set(shipped) - set(schema)) == [], "unknown keys in server_config.json"
    for key, spec in schema.items():
        assert shipped[key] == spec.default, key
        assert config.check_type(key, shipped[key], spec.type) == spec.default


def test_every_key_is_a_flag_and_an_environment_variable(monkeypatch) -> None:
    """Generated from the one settings table: a flag and HTTPD_<KEY> for each key, typed."""
    schema = {**config.CORE_SETTINGS, **every_app_setting()}
    samples = {int: ("7", 7), float: ("2.5", 2.5), str: ("x", "x"), bool: ("off", False),
               list: ('["a", "b"]', ["a", "b"]), dict: ('{"k": "v"}', {"k": "v"})}
    parsed = vars(httpd.parse_args([]))
    for key, spec in schema.items():
        assert key in parsed, f"no flag for {key}"
        text, value = samples[spec.type]
        assert config.parse_text(key, text, spec.type) == value
        env = config.env_values({key: spec}, {config.env_name(key): text})
        assert env == {key: value}, key


def test_precedence_file_environment_flags(tmp_path: Path, site: Path) -> None:
    config_file = write_config(tmp_path / "config.json", document_root=str(site), port=9001,
                               workers=3, keepalive_timeout=2, gzip=True)
    environ = {"HTTPD_PORT": "9002", "HTTPD_WORKERS": "4", "HTTPD_GZIP": "false",
               "HTTPD_GZIP_TYPES": "text/css, text/html"}
    s = httpd.load_settings(httpd.parse_args(["-c", str(config_file), "-w", "6"]), environ)
    assert s["port"] == 9002  # environment over file
    assert s["workers"] == 6  # flag over environment
    assert s["keepalive_timeout"] == 2.0  # file over default
    assert s["gzip"] is False and s["gzip_types"] == ["text/css", "text/html"]
    s = httpd.load_settings(httpd.parse_args(["-c", str(config_file), "--gzip"]), environ)
    assert s["gzip"] is True


def test_bad_text_values_are_one_line_config_errors(tmp_path: Path, site: Path) -> None:
    config_file = write_config(tmp_path / "config.json", document_root=str(site))
    for environ in ({"HTTPD_PORT": "eighty"}, {"HTTPD_GZIP": "maybe"},
                    {"HTTPD_CACHE_CONTROL": "[1]"}, {"HTTPD_LOG_LEVEL": "loud"}):
        with pytest.raises(config.ConfigError) as info:
            httpd.load_settings(httpd.parse_args(["-c", str(config_file)]), environ)
        assert "\n" not in str(info.value)


def test_print_config_shows_every_key(tmp_path: Path, site: Path) -> None:
    config_file = write_config(tmp_path / "config.json", document_root=str(site))
    result = run_httpd(["-c", str(config_file), "--print-config", "-p", "1234"], tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == set(config.CORE_SETTINGS) | set(app_settings(shown["apps"]))
    assert shown["port"] == 1234 and shown["workers"] >= 1  # automatic values resolved


def test_validate_only_validates() -> None:
    settings = config.defaults(config.CORE_SETTINGS)
    before = dict(settings)
    config.validate(settings)
    assert settings == before and settings["workers"] == 0
    config.resolve_automatic(settings)
    assert settings["workers"] == (os.cpu_count() or 1)


def test_docs_table_is_generated_from_the_settings_table() -> None:
    """docs/server.md holds the table `make docs` writes; regenerate it after adding a key."""
    text = (Path(httpd.HERE) / "docs" / "server.md").read_text()
    start, end = "<!-- settings:start -->\n", "\n<!-- settings:end -->"
    documented = text[text.index(start) + len(start):text.index(end)]
    assert documented == config.markdown_table({**config.CORE_SETTINGS, **every_app_setting()})


def test_config_errors_are_config_errors() -> None:
    for values in ({"nope": 1}, {"port": "80"}, {"workers": -2}, {"apps": [1]},
                   {"sqlite_synchronous": "SOMETIMES"}, {"max_header_count": 0}):
        with pytest.raises(config.ConfigError):
            config.build(values, {})


def try_get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=2)
    except requests.ConnectionError:
        return None


@contextlib.contextmanager
def httpd_process(cwd: Path, *args: str):
    """Run ``httpd.py args`` until the block ends; then ``proc.output`` is (stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, str(HTTPD), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.output = proc.communicate(timeout=15)


def test_seed_spelling_of_the_config_flag(tmp_path: Path, site: Path) -> None:
    port = free_port()
    config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=1, port=port)
    with httpd_process(tmp_path, "-config", str(config_file)):
        r = wait_for(lambda: try_get(f"http://127.0.0.1:{port}/text..txt"))
        assert r.content == b"double dot ok"


def test_version(tmp_path: Path) -> None:
    result = run_httpd(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"httpd.py {__version__}"


def test_help_lists_every_flag(tmp_path: Path) -> None:
    result = run_httpd(["--help"], tmp_path)
    assert result.returncode == 0
    for flag in ("-w", "--workers", "-r", "--document-root", "-H", "--host", "-p", "--port",
                 "-c", "--config", "--log-level", "--access-log", "--version", "--help"):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", result.stdout), flag


def test_log_level_flag(tmp_path: Path, site: Path) -> None:
    for level, expect_info in (("info", True), ("warning", False)):
        port = free_port()
        config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=1)
        with httpd_process(tmp_path, "-c", str(config_file), "-p", str(port),
                           "--log-level", level) as proc:
            wait_for(lambda url=f"http://127.0.0.1:{port}/": try_get(url))
        stderr = proc.output[1]
        assert ("listening on" in stderr) is expect_info, stderr


# == logs ====================================================================================

CLF = re.compile(r'^(?P<host>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} '
                 r'[+-]\d{4})\] "(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\d{3}) '
                 r'(?P<size>\d+|-) "(?P<referer>[^"\\]*(?:\\.[^"\\]*)*)" '
                 r'"(?P<agent>[^"\\]*(?:\\.[^"\\]*)*)"$')


def test_access_log_in_combined_log_format(server) -> None:
    marker = f"m{time.time_ns()}"
    server.get(f"/text..txt?{marker}", headers={"Referer": "http://ref.example/page",
                                               "User-Agent": "test-agent/1.0"})
    server.get(f"/missing?{marker}", headers={"User-Agent": 'quote " and \\ backslash'})
    server.request("HEAD", f"/text..txt?{marker}")

    def logged() -> list[str] | None:
        lines = [line for line in server.access_log.read_text().splitlines() if marker in line]
        return lines if len(lines) >= 3 else None

    lines = wait_for(logged, timeout=5)
    parsed = [CLF.match(line) for line in lines]
    assert all(parsed), lines
    first, missing, head = (m.groupdict() for m in parsed)
    assert first["host"] == "127.0.0.1"
    assert first["request"] == f"GET /text..txt?{marker} HTTP/1.1"
    assert (first["status"], first["size"]) == ("200", "13")
    assert (first["referer"], first["agent"]) == ("http://ref.example/page", "test-agent/1.0")
    assert (missing["status"], missing["referer"]) == ("404", "-")
    assert missing["agent"] == 'quote \\" and \\\\ backslash'
    assert (head["request"], head["status"], head["size"]) == (
        f"HEAD /text..txt?{marker} HTTP/1.1", "200", "-")
    stamp = datetime.strptime(first["time"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs(stamp.timestamp() - time.time()) < 120


def test_access_log_to_stdout_and_off(tmp_path: Path, site: Path) -> None:
    for target in ("-", "off"):
        port = free_port()
        config_file = write_config(tmp_path / "config.json", document_root=str(site), workers=1)
        with httpd_process(tmp_path, "-c", str(config_file), "-p", str(port),
                           "--access-log", target) as proc:
            wait_for(lambda url=f"http://127.0.0.1:{port}/text..txt?stdout-check": try_get(url))
        stdout = proc.output[0]
        logged = [line for line in stdout.splitlines() if "stdout-check" in line]
        if target == "-":
            assert len(logged) == 1 and CLF.match(logged[0]), stdout
        else:
            assert logged == []
