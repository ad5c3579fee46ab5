#!/usr/bin/env python3
"""Benchmark our prefork server against nginx, gunicorn, uvicorn and http.server.

The floor (bench/floor.py, the pure Python ceiling on this machine: an epoll
loop that sends fixed 1 KB answer bytes) runs the 1 KB loads as a peer, and
every row is reported as a fraction of it as well as of nginx.

Usage (from the repo root)::

    make bench                      # full run: RESULTS.md + results.png in bench/
    make bench-quick                # smoke run into bench/out/quick/
    RUNS=1 DURATION=2s python3 bench/run.py --servers "httpd -w1,nginx"
    python3 bench/run.py --report-only   # re-render from bench/out/results.json

Every server is started on its own loopback port, over the same generated
document root (1 KB ``index.html``, 100 KB and 1 MB files, a 20 KB stylesheet
asked for with ``Accept-Encoding: gzip``, in a temporary directory), and
checked to serve every URL with the right status and bytes (a gzip answer
decompressed first).
Then the runs are interleaved: run k of each load goes to every server in
turn before run k+1, so a slow minute on a shared machine hits all servers
alike. Loads are wrk (keep-alive) and ab (no keep-alive); at the end every
server is stopped with SIGTERM. The server is pinned to ``SERVER_CPUS`` and the load generator (and
this script) to ``LOAD_CPUS`` with taskset. Each load runs ``RUNS`` times;
the report shows medians and flags runs whose max/min spread exceeds
``NOISE``. Process-tree RSS is read from /proc at idle and under load.

Settings come from the environment or the matching flag: RUNS (3),
DURATION (10s), WARMUP (2s), CONNECTIONS (100), AB_REQUESTS (50000),
SERVER_CPUS (0), LOAD_CPUS (1), SCALING_WORKERS (1,2,4), NOISE (0.15),
OUT (bench), SERVERS (all).

Exit status: 1 when a server failed to start or to stop on SIGTERM, or
served a URL with the wrong status or bytes (that URL is then not loaded);
0 otherwise.
A load the tool gave up on (e.g. ab timing out on a server that drops
connections) is reported as "aborted", and a missing API route of ours as
"n/a (route missing)"; neither fails the run. The reports are always written.
"""

import argparse
import contextlib
import datetime
import gzip
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import loadgen
import report
import servers
from servers import LOADS, Memory, ServerError

RAW_DIR = servers.BENCH_DIR / "out"
NA_MISSING = "n/a (route missing)"
LOAD_TIMEOUT = 900  # seconds for one wrk/ab run before it counts as aborted


@dataclass
class Row:
    """All runs of one load against one server."""
    server: str
    kind: str
    load: str
    status: str = "ok"     # "ok", "n/a (...)", "aborted: ..." (load tool gave up) or "FAILED: ..."
    samples: list = field(default_factory=list)


class Recorder:
    """Collects rows, memory readings and the exact commands that were run."""

    def __init__(self):
        self.rows, self.memory, self.commands, self.notes, self.failures = [], {}, [], [], []

    def command(self, argv):
        line = shlex.join(argv)
        if line not in self.commands:
            self.commands.append(line)

    def log(self, message):
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------ settings

def parse_args(argv=None):
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=int(env("RUNS", "3")))
    parser.add_argument("--duration", default=env("DURATION", "10s"), help="wrk -d")
    parser.add_argument("--warmup", default=env("WARMUP", "2s"), help="wrk warm-up per server")
    parser.add_argument("--connections", type=int, default=int(env("CONNECTIONS", "100")))
    parser.add_argument("--ab-requests", type=int, default=int(env("AB_REQUESTS", "50000")))
    parser.add_argument("--server-cpus", default=env("SERVER_CPUS", "0"))
    parser.add_argument("--load-cpus", default=env("LOAD_CPUS", "1"))
    parser.add_argument("--scaling-workers", default=env("SCALING_WORKERS", "1,2,4"))
    parser.add_argument("--noise", type=float, default=float(env("NOISE", "0.15")))
    parser.add_argument("--out", default=env("OUT"),
                        help="directory for RESULTS.md and results.png (default: bench/, or "
                             "with --report-only the directory of the run being re-rendered)")
    parser.add_argument("--servers", default=env("SERVERS", ""),
                        help="comma-separated server names to run (default: all)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render the reports from bench/out/results.json")
    args = parser.parse_args(argv)
    args.scaling_workers = [int(n) for n in args.scaling_workers.split(",") if n.strip()]
    if not can_pin(args.server_cpus, args.load_cpus):
        args.server_cpus = args.load_cpus = ""
    return args


def can_pin(*cpu_lists):
    """True when taskset exists and every CPU named is available to us."""
    wanted = set()
    for cpus in cpu_lists:
        wanted |= set(parse_cpu_list(cpus))
    return bool(wanted) and shutil.which("taskset") and wanted <= os.sched_getaffinity(0)


def parse_cpu_list(cpus):
    result = []
    for part in filter(None, cpus.split(",")):
        low, _, high = part.partition("-")
        result.extend(range(int(low), int(high or low) + 1))
    return result


# --------------------------------------------------------------- benchmarking

@dataclass
class Live:
    """A started server with its rows (one per load) and its memory readings."""
    server: object
    port: int
    pid: int
    rows: dict
    idle: Memory
    peak: Memory = field(default_factory=Memory)


def bench_servers(selected, args, ws, rec):
    """Start every server, verify each URL, then interleave the runs.

    Run k of a load goes to every server in turn before run k+1 starts, so a slow minute of
    a shared machine lands on all servers alike instead of on whichever ran then; the
    ratios compare servers measured side by side in time.
    """
    with contextlib.ExitStack() as stack:
        live = [entry for entry in (start_server(server, args, ws, rec, stack)
                                    for server in selected) if entry is not None]
        for entry in live:
            warm_up(args, entry.port, rec, LOADS[entry.server.loads[0]].path)
        for run in range(1, args.runs + 1):
            for load_key in LOADS:
                for entry in live:
                    row = entry.rows.get(load_key)
                    if row is not None and row.status == "ok":
                        entry.peak = entry.peak.max(
                            run_load(row, args, entry.port, entry.pid, run, rec))
        for entry in live:
            rec.memory[entry.server.name] = {"idle": asdict(entry.idle),
                                             "load": asdict(entry.peak)}


def start_server(server, args, ws, rec, stack):
    """Start ``server`` (stopped when ``stack`` closes) and verify its URLs; None if it failed."""
    rows = {key: Row(server.name, server.kind, key) for key in server.loads}
    rec.rows.extend(rows.values())
    port = servers.free_port()
    argv = servers.pinned(args.server_cpus, server.argv(ws, port))
    rec.command(argv)
    rec.log(f"{server.name}: starting on port {port}")
    log_path = RAW_DIR / "logs" / f"{slug(server.name)}.log"
    try:
        started = stack.enter_context(servers.running(argv, server.cwd, server.env, log_path, port))
    except ServerError as exc:
        for row in rows.values():
            row.status = f"FAILED: server {exc}"
        rec.log(f"{server.name}: FAILED: {exc}")
        return None
    stack.callback(report_stop_problems, server, started, rec)
    for row in rows.values():
        row.status = verify(LOADS[row.load], port, ws)
        if row.status != "ok":
            rec.log(f"{server.name}: {row.load}: {row.status}")
    return Live(server, port, started.proc.pid, rows, servers.tree_memory(started.proc.pid))


def report_stop_problems(server, started, rec):
    for note in started.notes:
        rec.failures.append(f"{server.name}: did not stop cleanly: {note}")
        rec.notes.append(rec.failures[-1])
        rec.log(rec.failures[-1])


def verify(load, port, ws):
    """Check one URL before loading it: "ok", "n/a (...)" or "FAILED: ..."."""
    try:
        if load.key == "scores":
            status, body = servers.request(port, "POST", "/api/scores",
                                           json.dumps(servers.SCORE_ROW).encode())
            if status in (404, 405):
                return NA_MISSING
            if status not in (200, 201, 409):
                return f"FAILED: POST /api/scores -> {status} {body[:80]!r}"
        status, fields, body = servers.exchange(port, "GET", load.path, headers=dict(load.headers))
    except OSError as exc:
        return f"FAILED: GET {load.path}: {exc}"
    if load.key in ("ping", "scores") and status == 404:
        return NA_MISSING
    if status != 200:
        return f"FAILED: GET {load.path} -> {status}, {len(body)} bytes"
    if load.key == "flask":
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if document != servers.FLASK_HELLO:
            return f"FAILED: GET {load.path} -> {body[:80]!r}, expected {servers.FLASK_HELLO}"
        return "ok"
    if load.key in ("ping", "scores"):
        try:
            document = json.loads(body)
        except ValueError:
            return f"FAILED: GET {load.path} is not JSON: {body[:80]!r}"
        if load.key == "ping" and document != {"status": "ok"}:
            return f"FAILED: GET {load.path} -> {body[:80]!r}, expected {{\"status\": \"ok\"}}"
        if load.key == "scores" and not (isinstance(document, dict) and all(
                document.get(key) == value for key, value in servers.SCORE_ROW.items())):
            return f"FAILED: GET {load.path} -> {body[:80]!r}, expected the row posted"
        return "ok"
    expected = ws.expected_file(load.path)
    if dict(load.headers).get("Accept-Encoding") == "gzip":
        if fields.get("content-encoding") != "gzip":
            return f"FAILED: GET {load.path} with Accept-Encoding: gzip was not gzip-encoded"
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            return f"FAILED: GET {load.path}: the gzip body does not decompress: {exc}"
    if body != expected:
        return f"FAILED: GET {load.path} -> {len(body)} bytes, expected {len(expected)} (content differs)"
    return "ok"


def warm_up(args, port, rec, path):
    if args.warmup in ("", "0", "0s"):
        return
    argv = servers.pinned(args.load_cpus, loadgen.wrk_command(
        f"http://{servers.HOST}:{port}{path}", args.connections, args.warmup))
    rec.command(argv)
    subprocess.run(argv, capture_output=True, check=False)


def run_load(row, args, port, server_pid, run, rec):
    """Run ``row``'s load once (run number ``run``); returns the server's peak RSS meanwhile."""
    load = LOADS[row.load]
    url = f"http://{servers.HOST}:{port}{load.path}"
    if load.tool == "wrk":
        command = loadgen.wrk_command(url, args.connections, args.duration, headers=load.headers)
    else:
        command = loadgen.ab_command(url, args.ab_requests, args.connections)
    argv = servers.pinned(args.load_cpus, command)
    if run == 1:
        rec.command(argv)
    log_name = f"raw/{slug(row.server)}-{row.load}-{run}.txt"
    with servers.MemorySampler(server_pid) as sampler:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                    timeout=LOAD_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            result = subprocess.CompletedProcess(argv, "timeout", exc.stdout or "",
                                                 f"killed after {LOAD_TIMEOUT}s")
    stdout, stderr = (_text(stream) for stream in (result.stdout, result.stderr))
    (RAW_DIR / log_name).write_text(f"$ {shlex.join(argv)}\n{stdout}\n{stderr}")
    try:
        sample = loadgen.TOOLS[load.tool](stdout)
    except loadgen.ParseError as exc:
        row.status = (f"aborted: {loadgen.describe_abort(stdout, stderr, exc)} "
                      f"(bench/out/{log_name})")
        rec.log(f"{row.server}: {row.load}: {row.status}")
        return sampler.peak
    sample.log = log_name
    row.samples.append(asdict(sample))
    rec.log(f"{row.server}: {row.load} run {run}/{args.runs}: {sample.rps:,.0f} req/s, "
            f"p99 {sample.p99_ms:.2f} ms, errors {sample.errors}")
    return sampler.peak


def _text(stream):
    return stream.decode(errors="replace") if isinstance(stream, bytes) else stream


def slug(name):
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


# ----------------------------------------------------------------- metadata

def tool_version(argv, pattern=r"(.+)"):
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    match = re.search(pattern, result.stdout + result.stderr)
    return match.group(1).strip() if match else "unknown"


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe_machine_and_versions():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu_model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model.group(1) if cpu_model else platform.processor() or "unknown",
            "memory": f"{int(meminfo.group(1)) / 1024 / 1024:.1f} GiB" if meminfo else "unknown",
            "kernel": f"{platform.system()} {platform.release()}",
        },
        "versions": {
            "python": platform.python_version(),
            "httpd.py (git)": tool_version(["git", "-C", str(servers.REPO_DIR), "describe",
                                            "--always", "--dirty"], r"^(\S+)$"),
            "nginx": tool_version(["nginx", "-v"], r"nginx/(\S+)"),
            "wrk": tool_version(["wrk", "-v"], r"^wrk (\S+)"),
            "ab": tool_version(["ab", "-V"], r"Version (\S+)"),
            "gunicorn": package_version("gunicorn"),
            "waitress": package_version("waitress"),
            "flask": package_version("flask"),
            "uvicorn": package_version("uvicorn"),
            "uvloop": package_version("uvloop"),
            "httptools": package_version("httptools"),
            "matplotlib": package_version("matplotlib"),
        },
    }


def check_tools(selected):
    missing = [tool for tool in ("wrk", "ab") if not shutil.which(tool)]
    if any(s.name == "nginx" for s in selected) and not shutil.which("nginx"):
        missing.append("nginx")
    for module, server in (("gunicorn", "gunicorn"), ("uvicorn", "uvicorn")):
        if any(s.name == server for s in selected) and package_version(module) == "not installed":
            missing.append(module)
    if any("flask" in s.loads for s in selected):
        missing += [module for module in ("flask", "gunicorn", "waitress")
                    if package_version(module) == "not installed" and module not in missing]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; run `make bench-deps` "
                 "(apt-get install -y nginx wrk apache2-utils && pip install -r bench/requirements.txt)")


# --------------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(argv)
    results_json = RAW_DIR / "results.json"
    if args.report_only:
        results = json.loads(results_json.read_text())
    else:
        results = run_all(args)
        results["out"] = str(Path(args.out or servers.BENCH_DIR).resolve())
        results_json.write_text(json.dumps(results, indent=2))
    out = Path(args.out or results.get("out") or servers.BENCH_DIR)
    out.mkdir(parents=True, exist_ok=True)
    report.write_markdown(results, out / "RESULTS.md", chart_name="results.png")
    report.write_chart(results, out / "results.png")
    print(f"bench: wrote {out / 'RESULTS.md'} and {out / 'results.png'}")
    failed = [f"{r['server']} / {r['load']}: {r['status']}" for r in results["rows"]
              if r["status"].startswith("FAILED")] + results.get("failures", [])
    if failed:
        print("bench: FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def run_all(args):
    rec = Recorder()
    for sub in ("raw", "logs"):
        shutil.rmtree(RAW_DIR / sub, ignore_errors=True)
        (RAW_DIR / sub).mkdir(parents=True)
    if args.load_cpus:
        os.sched_setaffinity(0, parse_cpu_list(args.load_cpus))  # keep this script off the server's core
    else:
        rec.notes.append("CPU pinning disabled: taskset missing or the CPUs asked for are not available")
    with tempfile.TemporaryDirectory(prefix="httpd-bench-") as tmp:
        ws = servers.Workspace(Path(tmp)).create()
        selected = servers.all_servers(str(ws.docroot), args.scaling_workers)
        if args.servers:
            wanted = {name.strip() for name in args.servers.split(",")}
            selected = [s for s in selected if s.name in wanted]
        check_tools(selected)
        if not (servers.REPO_DIR / "httpd.py").exists():
            rec.notes.append("httpd.py not found: our server was not measured")
            selected = [s for s in selected if s.kind not in ("ours", "scaling")]
        bench_servers(selected, args, ws, rec)
    return {
        **describe_machine_and_versions(),
        "settings": {key: value for key, value in vars(args).items()
                     if key not in ("out", "report_only")},
        "rows": [asdict(row) for row in rec.rows],
        "memory": rec.memory,
        "commands": rec.commands,
        "notes": rec.notes,
        "failures": rec.failures,
    }


if __name__ == "__main__":
    sys.exit(main())
