#!/usr/bin/env python3
"""Uploads benchmark (app C): throughput of 1 MiB uploads, time until a burst of uploads is
processed, and the memory of a worker while it receives a 100 MiB upload.

    python3 bench/uploads.py                      # the numbers reported in docs/uploads.md
    python3 bench/uploads.py --duration 3 --burst 100 --big-mib 100

Starts its own httpd.py (default worker count, uploads app only) on a free port with a
temporary database and media root, and stops it at the end. The client is plain sockets
and threads, so it needs nothing beyond the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
BOUNDARY = "bench-boundary-7d1f0c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """httpd.py with the uploads app in a temporary directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.db_path = workdir / "bench.sqlite3"
        config = {"apps": ["uploads"], "database": str(self.db_path),
                  "media_root": str(workdir / "media"), "access_log": "off",
                  "document_root": str(REPO / "document_root"), "log_level": "warning"}
        (workdir / "config.json").write_text(json.dumps(config))
        with open(workdir / "stderr.log", "wb") as stderr:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, str(REPO / "httpd.py"), "-c", str(workdir / "config.json"),
                 "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.port, b"GET /files/ HTTP/1.1\r\nHost: b\r\n\r\n")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + (workdir / "stderr.log").read_text())

    def workers(self) -> list[int]:
        """The HTTP workers (children of the master other than the uploads processor)."""
        pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(p) for p in pids
                if Path(f"/proc/{p}/comm").read_text().strip() != "uploads-proc"]

    def done_count(self) -> int:
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return conn.execute("SELECT count(*) FROM files WHERE status = 'done'").fetchone()[0]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def request(port: int, head: bytes, body_parts=(), sock: socket.socket | None = None
            ) -> tuple[int, bytes]:
    """Send one request (head, then body pieces) and read one response with Content-Length."""
    own = sock is None
    sock = sock or socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head_bytes.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            rest += chunk
        return int(head_bytes.split(b" ", 2)[1]), rest[:length]
    finally:
        if own:
            sock.close()


def form_framing(name: str) -> tuple[bytes, bytes]:
    """The multipart bytes around the content of a one-file form."""
    opening = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return opening, f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_request(name: str, size: int, fill: bytes = b"x") -> tuple[bytes, list[bytes]]:
    """Head and body pieces of POST /upload/ carrying ``size`` bytes, generated in 1 MiB pieces
    so that even the 100 MiB upload never sits whole in the client's memory."""
    opening, closing = form_framing(name)
    head = (f"POST /upload/ HTTP/1.1\r\nHost: bench\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(opening) + size + len(closing)}\r\n\r\n").encode()
    piece = (fill * MiB)[:MiB]

    def pieces():
        yield opening
        left = size
        while left:
            n = min(left, MiB)
            yield piece[:n]
            left -= n
        yield closing

    return head, pieces()


def bench_throughput(server: Server, duration: float, concurrency: int) -> dict:
    """1 MiB uploads from ``concurrency`` keep-alive clients for ``duration`` seconds."""
    counts = [0] * concurrency
    errors = [0] * concurrency
    stop_at = time.monotonic() + duration

    def client(i: int) -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            n = 0
            while time.monotonic() < stop_at:
                head, body = upload_request(f"t{i}-{n}.bin", MiB, bytes([65 + i % 26]))
                status, _ = request(server.port, head, body, sock)
                if status == 201:
                    counts[i] += 1
                else:
                    errors[i] += 1
                n += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    total = sum(counts)
    return {"uploads": total, "errors": sum(errors), "seconds": round(elapsed, 2),
            "uploads_per_s": round(total / elapsed, 1)}


def bench_burst(server: Server, count: int, size: int, concurrency: int) -> dict:
    """``count`` uploads sent at once; time until all are answered, and until all processed."""
    before = server.done_count()
    started = time.monotonic()
    statuses: list[int] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def client() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            head, body = upload_request(f"burst-{i}.bin", size, b"b")
            status, _ = request(server.port, head, body)
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = time.monotonic() - started
    while server.done_count() < before + count:
        if time.monotonic() - started > 120:
            raise RuntimeError("burst not processed within 120 s")
        time.sleep(0.01)
    processed = time.monotonic() - started
    return {"uploads": count, "size_bytes": size, "created": statuses.count(201),
            "all_answered_s": round(answered, 2), "all_processed_s": round(processed, 2)}


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bench_big_upload(server: Server, size_mib: int) -> dict:
    """Worker memory while one upload of ``size_mib`` MiB (the whole body: the largest the
    default limit admits) is received, parsed and stored."""
    workers = server.workers()
    baseline = {pid: status_kib(pid, "VmRSS") for pid in workers}
    peak = dict(baseline)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in workers:
                peak[pid] = max(peak[pid], status_kib(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    framing = sum(map(len, form_framing("big.bin")))
    head, body = upload_request("big.bin", size_mib * MiB - framing, b"\x00\x01")
    status, _ = request(server.port, head, body)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    hwm = {pid: status_kib(pid, "VmHWM") for pid in workers}
    return {"status": status, "size_mib": size_mib, "seconds": round(elapsed, 2),
            "worker_rss_before_mib": round(max(baseline.values()) / 1024, 1),
            "worker_rss_peak_mib": round(max(peak.values()) / 1024, 1),
            "worker_vmhwm_mib": round(max(hwm.values()) / 1024, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=3.0, help="seconds of 1 MiB uploads")
    p.add_argument("--concurrency", type=int, default=4, help="clients for the throughput run")
    p.add_argument("--burst", type=int, default=100, help="uploads in the burst")
    p.add_argument("--burst-size", type=int, default=MiB, help="bytes per burst upload")
    p.add_argument("--big-mib", type=int, default=100, help="size of the big upload in MiB")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        server = Server(Path(tmp))
        try:
            results = {
                "workers": len(server.workers()),
                "cpus": os.cpu_count(),
                "big_upload": bench_big_upload(server, args.big_mib),
                "throughput_1mib": bench_throughput(server, args.duration, args.concurrency),
                "burst": bench_burst(server, args.burst, args.burst_size, 8),
            }
        finally:
            server.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
