"""Running a real httpd.py for tests: a free port, a temp database, raw-socket helpers.

The database is a temp sqlite file, or, while ``POSTGRES`` is set (the ``backend`` fixture
of conftest.py does that for the app suites), a fresh database of its own on the test
PostgreSQL cluster. ``ServerProcess.db()`` and ``snapshot()`` read either.
"""
from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
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


class PostgresCluster:
    """A throwaway PostgreSQL server: initdb and pg_ctl in a temp dir, listening on a unix
    socket only. Run as the ``postgres`` user when the tests run as root (initdb refuses
    root). ``new_database()`` gives each test server an empty database of its own."""

    def __init__(self, fsync: bool = False, options: str = "") -> None:
        self.fsync = fsync
        self.options = options  # more "-c name=value" for the server (the bench's)
        self.bindir = find_postgres_bindir()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL's initdb and pg_ctl are not installed "
                                    "(Debian: apt-get install postgresql)")
        # directly under /tmp: pytest's own temp dirs are private to root
        self.dir = Path(tempfile.mkdtemp(prefix="httpd-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.socket_dir.mkdir()
        self.log = self.dir / "postgres.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
            shutil.chown(self.socket_dir, self.user, self.user)
        self.names = itertools.count(1)
        self.by_workdir: dict[str, str] = {}

    def run(self, *args: str) -> None:
        command = [str(Path(self.bindir) / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, cwd=self.dir)

    def start(self) -> PostgresCluster:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                 "--no-locale", "-E", "UTF8", "--no-sync")
        self.start_server()
        return self

    def start_server(self) -> None:
        # durability is not what the tests are about: no fsync keeps them fast (the bench
        # asks for it)
        durability = "" if self.fsync else ("-c fsync=off -c synchronous_commit=off "
                                            "-c full_page_writes=off ")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                 "-o", f"-k {self.socket_dir} -c listen_addresses='' {durability}"
                       f"-c max_connections=400 {self.options}", "start")

    def stop_server(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={self.socket_dir}&user=postgres"

    def database_for(self, workdir: Path) -> str:
        """The database of the servers run in ``workdir``: a server started again in the
        same directory finds its data, as with the sqlite file there."""
        key = str(Path(workdir).resolve())
        if key not in self.by_workdir:
            self.by_workdir[key] = self.new_database()
        return self.by_workdir[key]

    def new_database(self) -> str:
        name = f"test{next(self.names)}"
        with contextlib.closing(pg_connect(self.url())) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def find_postgres_bindir() -> str | None:
    """Debian's binaries (/usr/lib/postgresql/<version>/bin), else initdb on the PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name)
                        if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return str(Path(candidates[-1]).parent)
    found = shutil.which("initdb")
    return str(Path(found).parent) if found and shutil.which("pg_ctl") else None


def pg_connect(url: str) -> Any:
    import psycopg  # a test dependency, imported only when PostgreSQL tests run
    return psycopg.connect(url, autocommit=True)


# the cluster new ServerProcesses put their database on; None: each gets a sqlite file
POSTGRES: PostgresCluster | None = None


class PgTestConnection:
    """A psycopg connection for the tests' direct checks, with sqlite3's ``?`` placeholders
    and ``with conn:`` (every statement commits at once anyway)."""

    def __init__(self, url: str) -> None:
        self.raw = pg_connect(url)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if params:
            return self.raw.execute(sql.replace("%", "%%").replace("?", "%s"), params)
        return self.raw.execute(sql)

    def commit(self) -> None:
        pass  # autocommit: every statement is committed already

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgTestConnection:  # noqa: PYI034 - no typing.Self on Python 3.10
        return self

    def __exit__(self, *exc: object) -> None:
        pass


# the credentials the tests' S3 server (moto) and its clients use
S3_ENV = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}


def s3_client(endpoint: str) -> Any:
    import boto3  # a test dependency, imported only when S3 tests run
    return boto3.session.Session(aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]).client(
        "s3", endpoint_url=endpoint, region_name="us-east-1")


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
        if "database" not in settings and POSTGRES is not None:
            settings["database"] = POSTGRES.database_for(workdir)
        self.database = settings.get("database", str(self.db_path))
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

    @property
    def postgres(self) -> bool:
        return self.database.startswith("postgresql://")

    def db(self) -> Any:
        """A separate connection to the server's database, for checking what was stored:
        sqlite3's, or a PgTestConnection with the same ``execute``."""
        if self.postgres:
            return PgTestConnection(self.database)
        return sqlite3.connect(self.database, timeout=10)

    def snapshot(self, *tables: str) -> dict[str, list[tuple]]:
        """Every row of the given tables, for 'nothing changed after a rejected write'.
        ``sqlite_sequence`` (the ids handed out) has no counterpart on PostgreSQL: there a
        sequence moves on even when the insert that took a number is rolled back (a gap,
        never a reused id), so it is left out."""
        with contextlib.closing(self.db()) as conn:
            return {t: sorted(conn.execute(self.snapshot_query(t)).fetchall(), key=repr)
                    for t in tables}

    @contextlib.contextmanager
    def refusing(self, table: str, event: str) -> Iterator[None]:
        """While the block runs, the database refuses every ``event`` (INSERT, UPDATE...)
        on ``table`` with an error of its own: a write that fails inside the server."""
        name = f"refuse_{table}_{event.lower()}"
        with contextlib.closing(self.db()) as conn:
            if self.postgres:
                conn.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$")
                conn.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                             f"FOR EACH ROW EXECUTE FUNCTION {name}()")
            else:
                conn.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                             "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
            conn.commit()
            try:
                yield
            finally:
                conn.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if self.postgres else ""))
                if self.postgres:
                    conn.execute(f"DROP FUNCTION {name}()")
                conn.commit()

    def snapshot_query(self, table: str) -> str:
        if table == "sqlite_sequence" and self.postgres:
            return "SELECT 1 WHERE false"
        return f"SELECT * FROM {table}"


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


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


BALANCER_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_max_body_size 10m;
    client_body_temp_path {root}/client-body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream httpd {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://httpd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


def write_balancer_conf(root: Path, port: int, upstream_ports: list[int],
                        server_options: str = "") -> Path:
    """An nginx.conf for round robin over loopback instances (the cluster test, the scaling
    bench); ``server_options`` follow each upstream server (e.g. max_fails)."""
    servers = "\n".join(f"        server 127.0.0.1:{p}{' ' + server_options if server_options else ''};"
                        for p in upstream_ports)
    conf = root / "nginx.conf"
    conf.write_text(BALANCER_CONF.format(root=root, port=port, servers=servers))
    return conf
