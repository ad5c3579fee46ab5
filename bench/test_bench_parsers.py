"""Unit tests for the wrk/ab output parsers and report helpers (stdlib only)."""

import unittest

import loadgen

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


if __name__ == "__main__":
    unittest.main()
