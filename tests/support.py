"""Running a real httpd.py for tests: a free port, a temp database, raw-socket helpers."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
HTTPD = REPO / "httpd.py"


def wait_for(condition: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``condition()`` is truthy and return its value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One httpd.py master with its workers, on 127.0.0.1 and a free port."""

    def __init__(self, workdir: Path, apps: list[str], document_root: Path | None = None,
                 workers: int = 2, ready_path: str = "/api/ping",
                 env: dict[str, str] | None = None, **settings: Any) -> None:
        self.workdir = workdir
        self.ready_path = ready_path  # answers 200 once the workers serve
        self.env = {**os.environ, **env} if env else None
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db_path = workdir / "test.sqlite3"
        self.media_root = workdir / "media"
        self.access_log = workdir / "access.log"
        self.stderr_path = workdir / "stderr.log"
        config = {
            "apps": apps,
            "database": str(self.db_path),
            "media_root": str(self.media_root),
            "document_root": str(document_root or REPO / "document_root"),
            "access_log": str(self.access_log),
            "workers": workers,
            "log_level": "info",
            **settings,
        }
        self.config_path = workdir / "config.json"
        self.config_path.write_text(json.dumps(config))
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, timeout: float = 10.0) -> ServerProcess:
        self.stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - the server's, closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(HTTPD), "-c", str(self.config_path), "-p", str(self.port)],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=self.stderr, env=self.env)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"httpd.py exited with {self.proc.returncode}: "
                                   f"{self.stderr_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                              % self.ready_path.encode())
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("httpd.py did not start in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.stderr.close()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def worker_pids(self) -> list[int]:
        """Children of the master (workers and services)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url(path), timeout=10, **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url(path), **kw)

    def raw(self, data: bytes, timeout: float = 5.0, shutdown: bool = False) -> bytes:
        """Send bytes on a fresh connection; return everything received until the close."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except TimeoutError:
                pass
            return b"".join(chunks)

    def exchange(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send bytes on a fresh connection and read until the server closes it.

        Unlike ``raw`` this fails when the server keeps the connection open past ``timeout``,
        so a test using it also checks that the server closed the connection.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def connect(self, timeout: float = 5.0) -> RawConnection:
        return RawConnection(self.port, timeout)

    def db(self) -> sqlite3.Connection:
        """A separate connection to the server's database, for checking what was stored."""
        return sqlite3.connect(self.db_path, timeout=10)

    def snapshot(self, *tables: str) -> dict[str, list[tuple]]:
        """Every row of the given tables, for 'nothing changed after a rejected write'."""
        with contextlib.closing(self.db()) as conn:
            return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                    for t in tables}


class RawConnection:
    """A client socket that reads responses one at a time, framed by Content-Length."""

    def __init__(self, port: int, timeout: float = 5.0, source: str | None = None) -> None:
        """``source``: the local address to connect from (127.0.0.2 is loopback, but not
        a trusted proxy by default)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def __enter__(self) -> RawConnection:  # noqa: PYI034 - no typing.Self on Python 3.10
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def fill(self) -> bool:
        """Read more bytes into the buffer; False at end of stream."""
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body.

        ``head_only`` for the answer to a HEAD request, whose Content-Length has no body.
        """
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                raise ConnectionError(f"connection closed before a response head: {self.buf!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, headers, _ = parse_response(head + b"\r\n\r\n")
        length = int(headers.get("content-length", "0"))
        if head_only or status < 200 or status in (204, 304):
            length = 0
        while len(self.buf) < length:
            if not self.fill():
                raise ConnectionError(f"connection closed after {len(self.buf)} of {length} "
                                      "body bytes")
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        """True when the server has closed the connection (EOF or reset) with nothing more
        to read; False when the read times out with the connection still open."""
        try:
            return not self.fill() and not self.buf
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


@contextlib.contextmanager
def running_server(workdir: Path, apps: list[str], **kw: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(workdir, apps, **kw).start()
    try:
        yield server
    finally:
        server.stop()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Split one raw response into status, headers (lower-case names) and the rest."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def split_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split several pipelined responses that carry Content-Length."""
    out = []
    while raw:
        status, headers, rest = parse_response(raw)
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        raw = rest[length:]
    return out


def png(width: int, height: int, pixels: bytes) -> bytes:
    """An RGB PNG from raw pixel bytes (width * height * 3)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
