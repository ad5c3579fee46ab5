"""Timings of the citizens API (API.md §A.8, issue 4) against their targets.

Starts httpd.py with one worker on a temporary database, builds the payloads with the
server's own generator (/generate), then times each handler from the client side, as the
task's grading robot did, and prints a markdown table. Exits 1 if a target is missed.

    python3 bench/citizens.py [--workers 1] [--runs 5] [--largest]
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class Timing:
    name: str
    seconds: list[float]
    target: float

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ok(self) -> bool:
        return self.median < self.target


class Client:
    """One keep-alive connection; every call returns (status, body, seconds)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=JSON_HEADERS if body else {})
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start

    def ok(self, method: str, path: str, body: bytes | None = None,
           status: int = 200) -> tuple[bytes, float]:
        got, data, seconds = self.call(method, path, body)
        if got != status:
            raise SystemExit(f"{method} {path}: expected {status}, got {got}: {data[:300]!r}")
        return data, seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "config.json"
    config.write_text(json.dumps({
        "apps": ["citizens"], "database": str(workdir / "bench.sqlite3"),
        "media_root": str(workdir / "media"), "document_root": str(REPO / "document_root"),
        "workers": workers, "access_log": "off", "log_level": "warning",
    }))
    proc = subprocess.Popen([sys.executable, str(REPO / "httpd.py"), "-c", str(config),
                             "-p", str(port)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            status, _, _ = Client(port).call("GET", "/api/ping")
            if status == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("httpd.py did not start")


def repeat(runs: int, action) -> list[float]:
    return [action(i) for i in range(runs)]


def measure(client: Client, runs: int) -> list[Timing]:
    ordinary = client.ok("GET", "/generate/10000?relations=1000&seed=1")[0]
    # the robot's worst case: sent with \\u escapes, which triples the size (~63 MB)
    worst = json.dumps(json.loads(client.ok("GET", "/generate/10000?worst=1&seed=2")[0])).encode()
    print(f"payloads: ordinary {len(ordinary) / 1e6:.1f} MB, worst {len(worst) / 1e6:.1f} MB",
          file=sys.stderr)

    def post(body: bytes) -> tuple[int, float]:
        data, seconds = client.ok("POST", "/imports", body, 201)
        return json.loads(data)["data"]["import_id"], seconds

    post_ordinary = [post(ordinary) for _ in range(runs)]
    post_worst = [post(worst) for _ in range(max(1, runs // 2))]
    small, big = post_ordinary[-1][0], post_worst[-1][0]

    def get(path: str) -> list[float]:
        return repeat(runs * 2, lambda _: client.ok("GET", path)[1])

    patches = (b'{"relatives": [3, 4, 5, 6, 7, 8, 9], "name": "A"}',
               b'{"relatives": [2, 10], "town": "B"}')
    patch_times = repeat(50, lambda i: client.ok(
        "PATCH", f"/imports/{small}/citizens/1", patches[i % 2])[1])
    return [
        Timing("POST /imports, 10,000 citizens, 1000 pairs", [s for _, s in post_ordinary], 1.0),
        Timing(f"POST /imports, worst case ({len(worst) / 1e6:.0f} MB)",
               [s for _, s in post_worst], 5.0),
        Timing("GET citizens, 10,000", get(f"/imports/{small}/citizens"), 0.5),
        Timing("GET citizens, 10,000 worst case (21 MB)", get(f"/imports/{big}/citizens"), 5.0),
        Timing("GET birthdays, 10,000", get(f"/imports/{small}/citizens/birthdays"), 0.2),
        Timing("GET percentiles, 10,000",
               get(f"/imports/{small}/towns/stat/percentile/age"), 0.2),
        Timing("PATCH citizen with relatives", patch_times, 0.02),
    ]


def densest_import(limit: int, count: int = 10_000) -> tuple[bytes, int]:
    """The import with the most relations whose body the limit still admits: every citizen
    related to its k nearest neighbours on a ring (k/2 each side), k as large as fits."""
    def body(k: int) -> bytes:
        half = k // 2
        citizens = [{"citizen_id": i, "town": "Town", "street": "Street", "building": "1",
                     "apartment": 1, "name": "Name", "birth_date": "01.02.1990",
                     "gender": "male",
                     "relatives": [(i + d) % count for d in range(-half, half + 1) if d]}
                    for i in range(count)]
        return json.dumps({"citizens": citizens}, separators=(",", ":")).encode()

    per_relative = len(body(1000)) / (count * 1000)  # bytes per relation, nearly constant
    k = int(limit / count / per_relative) // 2 * 2
    while k > 2:
        data = body(k)
        if len(data) <= limit:
            return data, k
        k -= 2
    raise SystemExit("no import fits the limit")


def hostile(client: Client, pid: int) -> list[str]:
    """The bounded 400 for a body that breaks a rule a million times, and the worker's peak."""
    bad = b'{"citizens":[' + b",".join([b"0"] * 1_000_000) + b"]}"
    status, data, seconds = client.call("POST", "/imports", bad)
    return [f"| POST /imports of {len(bad) / 2**20:.1f} MiB `[0,0,...]` | {status} | "
            f"{len(data) / 1024:.1f} KiB | {seconds * 1000:.0f} ms | "
            f"{peak_rss_mib(pid):.0f} MiB |"]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pid(proc: subprocess.Popen) -> int:
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0])


def table(timings: list[Timing]) -> str:
    lines = ["| handler | runs | median ms | max ms | target ms | |",
             "|---|---:|---:|---:|---:|---|"]
    for t in timings:
        lines.append(f"| {t.name} | {len(t.seconds)} | {t.median * 1000:.1f} | "
                     f"{max(t.seconds) * 1000:.1f} | {t.target * 1000:.0f} | "
                     f"{'ok' if t.ok else 'MISSED'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    parser.add_argument("--runs", type=int, default=3,
                        help="POSTs of each payload; GETs run twice as often (default 3)")
    parser.add_argument("--largest", action="store_true",
                        help="also POST the densest import the default body limit admits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-citizens-") as tmp:
        proc, port = start_server(Path(tmp), args.workers)
        try:
            client = Client(port)
            rows = hostile(client, worker_pid(proc))
            timings = measure(client, args.runs)
            if args.largest:
                data, k = densest_import(80 * 2**20)
                print(f"densest import: 10,000 citizens x {k} relatives, "
                      f"{len(data) / 2**20:.1f} MiB", file=sys.stderr)
                seconds = client.ok("POST", "/imports", data, 201)[1]
                timings.append(Timing(f"POST /imports, densest the 80 MiB limit admits "
                                      f"(10,000 x {k} relatives, {len(data) / 2**20:.0f} MiB)",
                                      [seconds], 120.0))
        finally:
            proc.terminate()
            proc.wait(30)
    print(table(timings))
    print()
    print("| hostile input | status | answer | time | worker peak RSS |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0 if all(t.ok for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
