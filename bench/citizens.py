"""Timings of the citizens API (API.md §A.8, issue 4) against their targets.

Starts httpd.py with one worker on a temporary database, builds the payloads with the
server's own generator (/generate), then times each handler from the client side, as the
task's grading robot did, and prints a markdown table. Exits 1 if a target is missed.

    python3 bench/citizens.py [--workers 1] [--runs 5]
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-citizens-") as tmp:
        proc, port = start_server(Path(tmp), args.workers)
        try:
            timings = measure(Client(port), args.runs)
        finally:
            proc.terminate()
            proc.wait(30)
    print(table(timings))
    return 0 if all(t.ok for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
