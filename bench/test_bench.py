"""Unit tests for the wrk/ab parsers and the report (no server, no load tool).

Run: python3 -m unittest discover -s bench -p 'test_*.py'
"""

import http.server
import tempfile
import threading
import unittest
from pathlib import Path

import loadgen
import report
import run
import servers

WRK = """\
Running 2s test @ http://127.0.0.1:8080/index.html
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  312.40us   9.01ms   91.20%
    Req/Sec    65.12k     3.20k   70.01k    80.00%
  Latency Distribution
     50%    1.48ms
     75%    1.60ms
     90%    1.80ms
     99%    2.00s
  129612 requests in 2.00s, 150.51MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  64806.12
Transfer/sec:     75.25MB
"""

AB = """\
Concurrency Level:      100
Complete requests:      5000
Failed requests:        4
   (Connect: 0, Receive: 0, Length: 4, Exceptions: 0)
Non-2xx responses:      1
Requests per second:    12345.67 [#/sec] (mean)
Percentage of the requests served within a certain time (ms)
  50%      7
  66%      8
  99%     15
 100%     40 (longest request)
"""


class ParserTest(unittest.TestCase):
    def test_wrk(self):
        sample = loadgen.parse_wrk(WRK)
        self.assertEqual(sample.rps, 64806.12)
        self.assertEqual(sample.requests, 129612)
        self.assertAlmostEqual(sample.p50_ms, 1.48)
        self.assertAlmostEqual(sample.p99_ms, 2000.0)
        self.assertEqual(sample.errors, 12)

    def test_wrk_without_errors(self):
        text = "\n".join(line for line in WRK.splitlines() if "errors" not in line and "Non-2xx" not in line)
        self.assertEqual(loadgen.parse_wrk(text).errors, 0)

    def test_wrk_latency_in_microseconds(self):
        sample = loadgen.parse_wrk(WRK.replace("1.48ms", "880.00us"))
        self.assertAlmostEqual(sample.p50_ms, 0.88)

    def test_ab(self):
        sample = loadgen.parse_ab(AB)
        self.assertEqual((sample.rps, sample.requests, sample.failed, sample.errors), (12345.67, 5000, 4, 5))
        self.assertEqual((sample.p50_ms, sample.p99_ms), (7, 15))

    def test_truncated_output_is_an_error(self):
        with self.assertRaises(loadgen.ParseError):
            loadgen.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
        with self.assertRaises(loadgen.ParseError):
            loadgen.parse_ab(AB.replace("Requests per second", "Requests"))


def sample(rps, errors=0, failed=0, non_2xx=0):
    return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "requests": int(rps), "errors": errors,
            "non_2xx": non_2xx, "failed": failed, "log": ""}


def results(rows, idle_worker=16.0):
    memory = {"total": 30.0, "master": 14.0, "worker": idle_worker, "workers": 1}
    return {
        "date": "2026-01-01 00:00:00 UTC",
        "machine": {"nproc": 2, "cpu": "test CPU", "memory": "1 GiB", "kernel": "Linux"},
        "versions": {"python": "3"},
        "settings": {"runs": 3, "duration": "10s", "warmup": "2s", "connections": 100,
                     "ab_requests": 50000, "server_cpus": "0", "load_cpus": "1",
                     "scaling_workers": [1], "noise": 0.15, "servers": ""},
        "rows": [{"server": server, "kind": kind, "load": load, "status": status, "samples": samples}
                 for server, kind, load, status, samples in rows],
        "memory": {report.OURS: {"idle": memory, "load": memory}},
        "commands": ["wrk ..."],
        "notes": [],
    }


class ReportTest(unittest.TestCase):
    ROWS = [
        ("httpd -w1", "ours", "1k", "ok", [sample(700), sample(600), sample(720)]),
        ("nginx", "ceiling", "1k", "ok", [sample(1000)] * 3),
        ("floor", "floor", "1k", "ok", [sample(1400)] * 3),
        ("uvicorn", "python", "1k", "ok", [sample(100)] * 3),
        ("httpd -w1", "ours", "ab-1k", "ok", [sample(900, errors=2, failed=2)] * 3),
        ("nginx", "ceiling", "ab-1k", "ok", [sample(1000)] * 3),
        ("httpd -w1", "ours", "ping", "ok", [sample(500, errors=3, non_2xx=3)] * 3),
        ("uvicorn", "python", "ping", "ok", [sample(100)] * 3),
        ("httpd -w1", "ours", "scores", "n/a (route missing)", []),
    ]

    def render(self, existing=None, **kwargs):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "RESULTS.md"
            if existing is not None:
                path.write_text(existing)
            report.write_markdown(results(self.ROWS, **kwargs), path, "results.png")
            return path.read_text()

    def target_line(self, text, title):
        return next(line for line in text.splitlines() if line.startswith(f"| {title}"))

    def test_targets(self):
        text = self.render()
        self.assertIn("(#17) | >= 1x nginx | 700 vs 1,000 req/s = **0.70x** | **missed**",
                      self.target_line(text, "1 KB file, keep-alive, vs nginx"))
        self.assertIn("(#8) | >= 4x uvicorn | 700 vs 100 req/s = **7.00x** | **met**",
                      self.target_line(text, "1 KB file, keep-alive, vs uvicorn"))
        self.assertIn("n/a (not measured)", self.target_line(text, "1 MB file"))
        self.assertIn("6 failed | **missed**", self.target_line(text, "1 KB file, no keep-alive"))
        self.assertIn("9 non-2xx | **missed**", self.target_line(text, "JSON /api/ping"))
        self.assertIn("n/a (route missing)", self.target_line(text, "JSON + 1 sqlite row"))
        self.assertIn("16.0 MiB | **met**", self.target_line(text, "Idle worker RSS"))
        # every sample has p99 2.0 ms; two loads are measured by both (1k, ab-1k): 1.00x
        self.assertIn("= **1.00x** (2 loads) | **met**", self.target_line(text, "p99 latency"))

    def test_p99_target_is_missed_past_three_times_nginx(self):
        slow = [dict(sample(700), p99_ms=6.5)] * 3
        self.ROWS = [("httpd -w1", "ours", "1k", "ok", slow), *self.ROWS[1:]]
        line = self.target_line(self.render(), "p99 latency")
        self.assertIn("worst: 1 KB file, keep-alive, 6.50 vs 2.00 ms = **3.25x**", line)
        self.assertIn("**missed**", line)

    def result_line(self, text, server, title):
        return next(line for line in text.splitlines()
                    if line.startswith(f"| {server} | {title} |"))

    def test_fraction_of_the_floor(self):
        text = self.render()
        self.assertIn("| vs nginx | vs floor |", text)
        # 700 req/s (median) against nginx 1000 and the floor 1400
        self.assertIn("| 0.70x | 0.50x |", self.result_line(text, "**httpd -w1**", "1 KB file, keep-alive"))
        self.assertIn("| 1.40x | 1.00x |", self.result_line(text, "floor", "1 KB file, keep-alive"))
        # ping is compared with the floor's 1 KB keep-alive rate; ab has no floor row here
        self.assertIn("| 0.36x |", self.result_line(text, "**httpd -w1**", "JSON /api/ping, keep-alive"))
        self.assertIn("| 0.90x | - |", self.result_line(text, "**httpd -w1**", "1 KB file, no keep-alive (ab)"))

    def test_noisy_runs_are_flagged(self):
        self.assertIn("**noisy** (20%)", self.render())  # 600..720 req/s

    def test_hand_written_analysis_is_kept(self):
        analysis = f"{report.ANALYSIS_START}\nParsing takes 40%.\n{report.ANALYSIS_END}"
        text = self.render(existing=f"# old\n\n{analysis}\n\nold table\n")
        self.assertIn(analysis, text)
        self.assertNotIn("old table", text)
        self.assertIn(report.ANALYSIS_PLACEHOLDER, self.render())


class VerifyTest(unittest.TestCase):
    """A server that answers with the wrong bytes must fail the check, not be loaded."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ws = servers.Workspace(Path(cls.tmp.name)).create()
        pages = cls.pages = {"/index.html": (200, servers.html_of_size(1000)),   # 24 bytes short
                 "/100k.html": (200, cls.ws.expected_file("/100k.html")),
                 "/1m.html": (500, b"oops"),
                 "/api/ping": (200, b'{"status": "ok"}')}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = pages.get(self.path, (404, b"missing"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        cls.httpd = http.server.ThreadingHTTPServer((servers.HOST, 0), Handler)
        cls.port = cls.httpd.server_address[1]
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()
        cls.tmp.cleanup()

    def check(self, load):
        return run.verify(servers.LOADS[load], self.port, self.ws)

    def test_statuses(self):
        self.assertEqual(self.check("100k"), "ok")
        self.assertEqual(self.check("ping"), "ok")
        self.assertRegex(self.check("1k"), r"^FAILED: .*1000 bytes, expected 1024")
        self.assertRegex(self.check("1m"), r"^FAILED: .*-> 500")
        self.assertEqual(self.check("scores"), run.NA_MISSING)

    def test_gzip_row_must_be_gzip_encoded(self):
        self.pages["/20k.css"] = (200, self.ws.expected_file("/20k.css"))  # sent as it is
        try:
            self.assertRegex(self.check("gzip-css"), r"^FAILED: .*was not gzip-encoded")
        finally:
            del self.pages["/20k.css"]

    def test_scores_must_return_the_row_posted(self):
        self.pages["/api/scores"] = (201, b"{}")
        self.pages["/api/scores/1"] = (200, b'{"client_id": 1, "phone": "1", "email": "a@b.c"}')
        try:
            self.assertRegex(self.check("scores"), r"^FAILED: .*expected the row posted")
        finally:
            del self.pages["/api/scores"], self.pages["/api/scores/1"]

    def test_generated_files_have_exact_sizes(self):
        for name, size in servers.STATIC_FILES.items():
            self.assertEqual(len(self.ws.expected_file("/" + name)), size)


class FloorTest(unittest.TestCase):
    """bench/floor.py, started as the bench starts it, passes the bench's URL check."""

    def test_floor_serves_the_file_with_and_without_keep_alive(self):
        import socket
        with tempfile.TemporaryDirectory() as tmp:
            ws = servers.Workspace(Path(tmp)).create()
            port = servers.free_port()
            floor = next(s for s in servers.all_servers(str(ws.docroot), [1])
                         if s.name == servers.FLOOR)
            with servers.running(floor.argv(ws, port), floor.cwd, floor.env,
                                 Path(tmp) / "floor.log", port) as started:
                self.assertEqual(run.verify(servers.LOADS["1k"], port, ws), "ok")
                body = ws.expected_file("/index.html")
                with socket.create_connection((servers.HOST, port), timeout=5) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)  # pipelined
                    data = b""
                    while data.count(body) < 2:
                        chunk = sock.recv(65536)
                        self.assertTrue(chunk, "closed a keep-alive connection")
                        data += chunk
                with socket.create_connection((servers.HOST, port), timeout=5) as sock:
                    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := sock.recv(65536):  # the floor closes after it
                        data += chunk
                self.assertIn(b"Connection: close", data)
                self.assertTrue(data.endswith(body))
            self.assertEqual(started.notes, [])


if __name__ == "__main__":
    unittest.main()


class AbReportTest(unittest.TestCase):
    """bench/ab.py's table: medians per URL and build, and the new/base ratio."""

    def test_medians_and_ratio(self):
        import ab
        results = {("/x", "base"): [(100.0, 10.0, 5.0), (300.0, 12.0, 6.0), (200.0, 30.0, 9.0)],
                   ("/x", "new"): [(250.0, 8.0, 4.0), (150.0, 9.0, 4.5), (900.0, 7.0, 3.0)]}
        table = ab.report(results, ["/x"], ["base", "new"])
        self.assertIn("| /x | 200 | 250 | 1.25x | 12.00 -> 8.00 | 6.00 -> 4.00 |", table)
