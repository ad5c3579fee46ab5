"""Throughput of the sales API on each backend, and of two instances behind nginx.

Three setups, in one run, each measured with wrk for ``POST /sales/`` (bench/sales_post.lua:
a random item and store of the demo set) and ``GET /stores/top/`` (this month's top 10):

1. one instance on sqlite (the default configuration);
2. one instance on PostgreSQL;
3. two instances on the same PostgreSQL database behind nginx round robin.

PostgreSQL is a throwaway server started here (initdb + pg_ctl on a unix socket, as the
tests do, with fsync on: these numbers include commits reaching the disk), unless
``--database URL`` names one to use (its ``sales`` tables are replaced). Every instance
runs the default worker count. Everything shares this machine, so setup 3 measures the
cost of the extra hop and of contention, not the capacity of two hosts: docs/scaling.md
turns the numbers into a capacity model.

Beside each rate: the CPU time per request spent by the httpd.py processes and by the
PostgreSQL server processes (from /proc), the inputs of the capacity model.

Prints a markdown table.

    python3 bench/scaling.py [--duration 5s] [--connections 32] [--database URL]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from loadgen import parse_wrk
from servers import HOST, REPO_DIR, free_port, running

sys.path.insert(0, str(REPO_DIR / "tests"))
from support import (  # noqa: E402 - the tests' throwaway PostgreSQL and nginx balancer
    PostgresCluster,
    write_balancer_conf,
)

LUA = Path(__file__).resolve().parent / "sales_post.lua"
TOKEN = "bench-token"

@contextlib.contextmanager
def instance(workdir: Path, database: str):
    """httpd.py with only the sales app, default workers; yields its port."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.json"
    config.write_text(json.dumps({
        "apps": ["sales"], "database": database, "access_log": "off", "admin_token": TOKEN,
        "document_root": str(REPO_DIR / "document_root"), "log_level": "warning",
    }))
    port = free_port()
    argv = [sys.executable, "httpd.py", "-c", str(config), "-p", str(port)]
    with running(argv, REPO_DIR, {}, workdir / "httpd.log", port, timeout=60):
        yield port


@contextlib.contextmanager
def nginx(workdir: Path, ports: list[int]):
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    port = free_port()
    conf = write_balancer_conf(workdir, port, ports)
    argv = ["nginx", "-p", f"{workdir}/", "-e", str(workdir / "nginx-error.log"), "-c", str(conf)]
    with running(argv, workdir, {}, workdir / "nginx.log", port):
        yield port


def demo_data(port: int) -> None:
    """The demo set (50 items, 50 stores, 3,600 sales this year), ids from 1."""
    request = urllib.request.Request(f"http://{HOST}:{port}/create/", method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def cpu_seconds() -> dict[str, float]:
    """CPU time used so far by the processes of httpd.py and of PostgreSQL, by kind."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {"httpd": 0.0, "postgres": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        kind = ("httpd" if b"httpd.py" in cmdline
                else "postgres" if cmdline.startswith((b"postgres", b"/usr/lib/postgresql"))
                else None)
        if kind:
            totals[kind] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return totals


def wrk(port: int, path: str, duration: str, connections: int, post: bool) -> str:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency"]
    if post:
        argv += ["-s", str(LUA)]
    argv.append(f"http://{HOST}:{port}{path}")
    before = cpu_seconds()
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    after = cpu_seconds()
    sample = parse_wrk(output)
    cpu = {kind: 1000 * (after[kind] - before[kind]) / max(sample.requests, 1)
           for kind in after}
    errors = sample.errors
    if post:
        summary = next(line for line in output.splitlines() if line.startswith("sales_post:"))
        errors += int(dict(p.split("=", 1) for p in summary.split()[1:])["other"])
    return (f"{sample.rps:,.0f} req/s (p50 {sample.p50_ms:.1f} ms, p99 {sample.p99_ms:.1f} ms; "
            f"CPU/req: httpd {cpu['httpd']:.2f} ms, postgres {cpu['postgres']:.2f} ms"
            f"{f'; {errors} not 2xx' if errors else ''})")


def measure(name: str, port: int, args: argparse.Namespace) -> list[str]:
    demo_data(port)
    post = wrk(port, "/sales/", args.duration, args.connections, post=True)
    top = wrk(port, "/stores/top/", args.duration, args.connections, post=False)
    print(f"{name}: POST {post}; GET {top}", file=sys.stderr)
    return [name, post, top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="5s", help="wrk duration per load (5s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--database", help="a PostgreSQL URL to use instead of a throwaway one")
    parser.add_argument("--synchronous-commit", default="on", choices=("on", "off"),
                        help="the throwaway PostgreSQL's synchronous_commit (on; off is "
                             "sqlite's synchronous=NORMAL: a crash may lose the last commits)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only the PostgreSQL setups")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y {tool})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as "nobody" when started as root
        if not args.skip_sqlite:
            with instance(work / "sqlite", str(work / "sales.sqlite3")) as port:
                rows.append(measure("1 instance, sqlite", port, args))
        cluster = None
        label = " (synchronous_commit off)" if args.synchronous_commit == "off" else ""
        if args.database:
            database = args.database
        else:
            cluster = PostgresCluster(
                fsync=True, options=f"-c synchronous_commit={args.synchronous_commit}").start()
            database = cluster.new_database()
        try:
            with instance(work / "pg1", database) as port:
                rows.append(measure(f"1 instance, PostgreSQL{label}", port, args))
            with instance(work / "pg-a", database) as port_a, \
                    instance(work / "pg-b", database) as port_b, \
                    nginx(work / "nginx", [port_a, port_b]) as port:
                rows.append(measure(f"2 instances, PostgreSQL{label}, nginx", port, args))
        finally:
            if cluster is not None:
                cluster.stop()
    print("| setup | POST /sales/ | GET /stores/top/ |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
