"""The servers under test: document root, command lines, start/stop, memory.

Every server gets the same generated document root and its own loopback
port. :func:`running` starts one (optionally pinned with ``taskset``), waits
until it answers HTTP, and stops it with SIGTERM when the block ends.
"""

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
HOST = "127.0.0.1"

# name -> size in bytes of the static files every server serves.
STATIC_FILES = {"index.html": 1024, "100k.html": 100 * 1024, "1m.html": 1024 * 1024,
                "20k.css": 20 * 1024}
GZIP = (("Accept-Encoding", "gzip"),)


@dataclass(frozen=True)
class Load:
    key: str
    title: str
    tool: str      # "wrk" (keep-alive) or "ab" (no keep-alive)
    path: str
    compare: str   # the peers' load this one is compared with (scores -> ping)
    headers: tuple = ()  # extra request fields, as (name, value) pairs
    floor: str = None    # the floor's load this one is compared with (None: no floor for it)


LOADS = {load.key: load for load in [
    Load("1k", "1 KB file, keep-alive", "wrk", "/index.html", "1k", floor="1k"),
    Load("100k", "100 KB file, keep-alive", "wrk", "/100k.html", "100k"),
    Load("1m", "1 MB file, keep-alive", "wrk", "/1m.html", "1m"),
    Load("ping", "JSON /api/ping, keep-alive", "wrk", "/api/ping", "ping", floor="1k"),
    Load("scores", "JSON + 1 sqlite row, keep-alive", "wrk", "/api/scores/1", "ping", floor="1k"),
    Load("ab-1k", "1 KB file, no keep-alive (ab)", "ab", "/index.html", "ab-1k", floor="ab-1k"),
    Load("gzip-css", "20 KB CSS with Accept-Encoding: gzip, keep-alive", "wrk", "/20k.css",
         "gzip-css", GZIP),
    Load("flask", "Flask JSON hello, keep-alive", "wrk", "/hello", "flask", floor="1k"),
]}
STATIC_LOADS = ("1k", "100k", "1m", "ab-1k")
SCORE_ROW = {"client_id": 1, "phone": "79175002040", "email": "a@b.c"}
FLASK_HELLO = {"message": "Hello, World!"}
FLASK_APP = "flask_hello:app"  # bench/flask_hello.py, the same for every WSGI server
BENCH_APPS = ("scores",)  # apps/ packages serving the bench's API routes (mounted if present)


class ServerError(RuntimeError):
    """A server did not start, or did not stop."""


# ---------------------------------------------------------------- workspace

@dataclass
class Workspace:
    """Temporary files shared by all servers of one bench run."""
    root: Path

    @property
    def docroot(self):
        return self.root / "docroot"

    def create(self):
        self.root.chmod(0o755)  # nginx workers run as "nobody" when started as root
        self.docroot.mkdir(mode=0o755)
        for name, size in STATIC_FILES.items():
            make = css_of_size if name.endswith(".css") else html_of_size
            (self.docroot / name).write_bytes(make(size))
            (self.docroot / name).chmod(0o644)
        return self

    def expected_file(self, url_path):
        return (self.docroot / url_path.lstrip("/")).read_bytes()


def html_of_size(size):
    """A valid HTML page of exactly ``size`` bytes."""
    head = b"<!doctype html>\n<html><head><title>bench</title></head><body>\n<pre>\n"
    tail = b"\n</pre>\n</body></html>\n"
    line = b"The quick brown fox jumps over the lazy dog 0123456789.\n"
    filler_size = size - len(head) - len(tail)
    filler = (line * (filler_size // len(line) + 1))[:filler_size]
    return head + filler + tail


def css_of_size(size):
    """A stylesheet of exactly ``size`` bytes: rules that differ, as a real one's do."""
    rules = [f".c{n} {{ margin: {n % 17}px {n % 5}px; color: #{n * 2654435761 % 0xFFFFFF:06x}; }}\n"
             for n in range(size // 30 + 1)]
    return "".join(rules).encode()[:size]


# ------------------------------------------------------------------ servers

@dataclass
class Server:
    """One server configuration to benchmark."""
    name: str
    kind: str                    # "ours", "scaling", "ceiling", "floor" or "python"
    loads: tuple
    argv: object                 # callable(workspace, port) -> list[str]
    cwd: Path = REPO_DIR
    env: dict = field(default_factory=dict)


OURS_WSGI = "httpd -w1 --wsgi"
FLOOR = "floor"  # bench/floor.py: the pure Python ceiling on this machine


def ours(workers, loads, kind="ours"):
    def argv(ws, port):
        config = ws.root / "httpd-config.json"
        if not config.exists():
            config.write_text(json.dumps(ours_config(ws)))
        return [sys.executable, "httpd.py", "-w", str(workers), "-r", str(ws.docroot),
                "-H", HOST, "-p", str(port), "--access-log", "off", "-c", str(config)]
    return Server(f"httpd -w{workers}", kind, loads, argv)


def ours_config(ws):
    """The repo's server_config.json, plus the apps the bench's routes need, with
    every writable path moved into the workspace: the bench never touches var/."""
    repo_config = REPO_DIR / "server_config.json"
    config = json.loads(repo_config.read_text()) if repo_config.exists() else {}
    present = [app for app in BENCH_APPS if (REPO_DIR / "apps" / app).is_dir()]
    config["apps"] = list(dict.fromkeys([*config.get("apps", []), *present]))
    config["database"] = str(ws.root / "bench.sqlite3")
    if "media_root" in config:
        config["media_root"] = str(ws.root / "media")
    return config


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; text/css css; application/json json; }}
    default_type application/octet-stream;
    gzip on;
    gzip_static on;
    gzip_types text/css;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {root}/nginx-client-body;
    proxy_temp_path {root}/nginx-proxy;
    fastcgi_temp_path {root}/nginx-fastcgi;
    uwsgi_temp_path {root}/nginx-uwsgi;
    scgi_temp_path {root}/nginx-scgi;
    server {{
        listen {host}:{port};
        root {docroot};
        location = /api/ping {{
            default_type application/json;
            return 200 '{{"status": "ok"}}';
        }}
    }}
}}
"""


def nginx_argv(ws, port):
    conf = ws.root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=ws.root, host=HOST, port=port, docroot=ws.docroot))
    return ["nginx", "-p", f"{ws.root}/", "-e", str(ws.root / "nginx-error.log"), "-c", str(conf)]


def gunicorn_argv(ws, port):
    return [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", f"{HOST}:{port}",
            "--chdir", str(BENCH_DIR), "--log-level", "warning", "peer_apps:wsgi_app"]


def uvicorn_argv(ws, port):
    return [sys.executable, "-m", "uvicorn", "peer_apps:asgi_app", "--app-dir", str(BENCH_DIR),
            "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning"]


def ours_wsgi_argv(ws, port):
    return [sys.executable, str(REPO_DIR / "httpd.py"), "--wsgi", FLASK_APP, "-w", "1",
            "-H", HOST, "-p", str(port), "--access-log", "off"]


def gunicorn_flask_argv(worker_class, threads=1):
    def argv(ws, port):
        return [sys.executable, "-m", "gunicorn", "-w", "1", "-k", worker_class,
                "--threads", str(threads), "-b", f"{HOST}:{port}", "--log-level", "warning",
                FLASK_APP]
    return argv


def waitress_argv(ws, port):
    return [sys.executable, "-m", "waitress", f"--listen={HOST}:{port}", "--threads=4",
            "--connection-limit=4096", FLASK_APP]


def floor_argv(ws, port):
    return [sys.executable, str(BENCH_DIR / "floor.py"), "--host", HOST, "--port", str(port),
            "--file", str(ws.docroot / "index.html")]


def http_server_argv(ws, port):
    return [sys.executable, "-m", "http.server", str(port), "--bind", HOST,
            "--directory", str(ws.docroot)]


def all_servers(docroot_env, scaling_workers):
    """The servers of a full bench run, in the order they are run and shown."""
    peer_env = {"BENCH_DOCROOT": docroot_env}
    servers = [
        ours(1, tuple(key for key in LOADS if key != "flask")),  # Flask: OURS_WSGI below
        Server("nginx", "ceiling", ("1k", "100k", "1m", "ping", "ab-1k", "gzip-css"), nginx_argv),
        Server(FLOOR, "floor", ("1k", "ab-1k"), floor_argv),
        Server("gunicorn", "python", ("1k", "100k", "1m", "ping", "ab-1k"), gunicorn_argv,
               env=peer_env),
        Server("uvicorn", "python", ("1k", "100k", "1m", "ping", "ab-1k"), uvicorn_argv,
               env=peer_env),
        Server("http.server", "python", STATIC_LOADS, http_server_argv),
    ]
    servers += [ours(n, ("1k",), kind="scaling") for n in scaling_workers if n != 1]
    # one Flask app under every WSGI server, one worker each; imported from bench/ (cwd)
    servers += [
        Server(OURS_WSGI, "ours", ("flask",), ours_wsgi_argv, cwd=BENCH_DIR),
        Server("gunicorn sync (Flask)", "python", ("flask",), gunicorn_flask_argv("sync"),
               cwd=BENCH_DIR),
        Server("gunicorn gthread x4 (Flask)", "python", ("flask",),
               gunicorn_flask_argv("gthread", 4), cwd=BENCH_DIR),
        Server("waitress (Flask)", "python", ("flask",), waitress_argv, cwd=BENCH_DIR),
    ]
    return servers


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pinned(cpus, argv):
    return ["taskset", "-c", cpus, *argv] if cpus else list(argv)


# --------------------------------------------------------- process control

@dataclass
class Started:
    """A running server; ``notes`` collects problems seen when stopping it."""
    proc: subprocess.Popen
    notes: list = field(default_factory=list)


@contextlib.contextmanager
def running(argv, cwd, env, log_path, port, timeout=20.0):
    """Start ``argv``, wait until it answers HTTP on ``port``, SIGTERM it on exit.

    Raises :class:`ServerError` if it does not come up; a server that does
    not stop cleanly is killed and the problem is added to ``notes``.
    """
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = Started(proc)
    try:
        _wait_ready(proc, port, timeout, log_path)
        yield started
    finally:
        problem = _stop(proc, log_path)
        if problem:
            started.notes.append(problem)


def _wait_ready(proc, port, timeout, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"exited with code {proc.returncode}: {_tail(log_path)}")
        try:
            request(port, "GET", "/index.html", timeout=1.0)
            return
        except OSError:
            time.sleep(0.1)
    raise ServerError(f"did not answer on port {port} within {timeout:.0f}s: {_tail(log_path)}")


def _stop(proc, log_path, timeout=15.0):
    """SIGTERM ``proc`` and wait; returns a description of any problem, else None."""
    problem = None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            problem = f"ignored SIGTERM for {timeout:.0f}s and was killed"
    leftovers = [pid for pid in _process_table() if _pgid(pid) == proc.pid]
    if leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own session's process group
        proc.wait()
        problem = problem or f"left processes {leftovers} running after SIGTERM; killed them"
    return problem


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _tail(path, lines=5):
    text = Path(path).read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(no output)"


def request(port, method, path, body=None, timeout=5.0):
    """One HTTP request on a fresh connection -> ``(status, body bytes)``."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, _, data = exchange(port, method, path, body, headers, timeout)
    return status, data


def exchange(port, method, path, body=None, headers=None, timeout=5.0):
    """One HTTP request on a fresh connection -> ``(status, fields, body bytes)``, the body
    as sent (a gzip body stays compressed); field names lower-case."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        fields = {name.lower(): value for name, value in response.getheaders()}
        return response.status, fields, response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(f"bad HTTP response: {exc!r}") from exc
    finally:
        conn.close()


# ----------------------------------------------------------------- memory

@dataclass
class Memory:
    """RSS of a process tree in MiB: the root ("master") and its descendants."""
    total: float = 0.0
    master: float = 0.0
    worker: float = None    # the largest descendant; None for single-process servers
    workers: int = 0

    def max(self, other):
        worker = max((w for w in (self.worker, other.worker) if w is not None), default=None)
        return Memory(max(self.total, other.total), max(self.master, other.master),
                      worker, max(self.workers, other.workers))


def _process_table():
    """pid -> (ppid, RSS in KiB) of every live process, from /proc/PID/status."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE)
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        table[int(entry)] = (int(ppid.group(1)) if ppid else 0, int(rss.group(1)) if rss else 0)
    return table


def tree_memory(root_pid):
    table = _process_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    descendants, todo = [], list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        descendants.append(pid)
        todo.extend(children.get(pid, []))
    mib = lambda pid: table.get(pid, (0, 0))[1] / 1024
    worker_rss = [mib(pid) for pid in descendants]
    return Memory(total=mib(root_pid) + sum(worker_rss), master=mib(root_pid),
                  worker=max(worker_rss, default=None), workers=len(worker_rss))


class MemorySampler(threading.Thread):
    """Samples :func:`tree_memory` in the background; ``peak`` holds the maxima."""

    def __init__(self, root_pid, interval=0.25):
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.peak = Memory()
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(self.interval):
            self.peak = self.peak.max(tree_memory(self.root_pid))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self.join()
