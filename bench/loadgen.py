"""Load generators (wrk, ab): command lines and parsers for their reports.

The parsers take the tool's text output and return a :class:`Sample`; they
raise :class:`ParseError` when a number the report must contain is missing,
so a broken run is never recorded as a fast one.
"""

import re
from dataclasses import dataclass

_UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


class ParseError(ValueError):
    """The load generator's output lacks a figure the bench needs."""


@dataclass
class Sample:
    """One run of one load against one server."""
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int         # non-2xx/3xx responses + socket errors (wrk) or failed + non-2xx (ab)
    non_2xx: int = 0    # responses with a status other than 2xx (wrk: other than 2xx/3xx)
    failed: int = 0     # ab's "Failed requests" (0 for wrk)
    log: str = ""       # path of the raw output, relative to the output dir


def wrk_command(url, connections, duration, threads=1, headers=()):
    fields = [arg for name, value in headers for arg in ("-H", f"{name}: {value}")]
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", *fields, url]


def ab_command(url, requests, concurrency):
    return ["ab", "-n", str(requests), "-c", str(concurrency), "-r", url]


def _number(pattern, text, what, cast=float, default=None):
    match = re.search(pattern, text, re.MULTILINE)
    if match:
        return cast(match.group(1))
    if default is not None:
        return default
    raise ParseError(f"no {what} in output")


def _wrk_duration_ms(value):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not match:
        raise ParseError(f"bad wrk latency {value!r}")
    return float(match.group(1)) * _UNIT_TO_MS[match.group(2)]


def parse_wrk(text):
    """Parse ``wrk --latency`` output."""
    rps = _number(r"^Requests/sec:\s+([\d.]+)", text, "Requests/sec")
    requests = _number(r"^\s*(\d+) requests in ", text, "request count", int)
    p50 = _number(r"^\s+50%\s+(\S+)", text, "50% latency", _wrk_duration_ms)
    p99 = _number(r"^\s+99%\s+(\S+)", text, "99% latency", _wrk_duration_ms)
    non_2xx = _number(r"Non-2xx or 3xx responses:\s+(\d+)", text, "", int, default=0)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    socket_errors = sum(int(n) for n in socket.groups()) if socket else 0
    return Sample(rps=rps, p50_ms=p50, p99_ms=p99, requests=requests,
                  errors=non_2xx + socket_errors, non_2xx=non_2xx)


def parse_ab(text):
    """Parse ApacheBench output (percentiles are whole milliseconds)."""
    rps = _number(r"^Requests per second:\s+([\d.]+)", text, "Requests per second")
    requests = _number(r"^Complete requests:\s+(\d+)", text, "Complete requests", int)
    failed = _number(r"^Failed requests:\s+(\d+)", text, "Failed requests", int)
    non_2xx = _number(r"^Non-2xx responses:\s+(\d+)", text, "", int, default=0)
    p50 = _number(r"^\s+50%\s+(\d+)", text, "50% latency")
    p99 = _number(r"^\s+99%\s+(\d+)", text, "99% latency")
    return Sample(rps=rps, p50_ms=p50, p99_ms=p99, requests=requests,
                  errors=failed + non_2xx, non_2xx=non_2xx, failed=failed)


def describe_abort(stdout, stderr, parse_error):
    """One line saying why a run produced no report, e.g. ab's poll timeout."""
    lines = (stderr.strip() or stdout.strip()).splitlines()
    reason = lines[-1] if lines else str(parse_error)
    done = re.search(r"Total of (\d+) requests completed", stdout + stderr)
    return f"{reason}, after {done.group(1)} requests" if done else reason


TOOLS = {"wrk": parse_wrk, "ab": parse_ab}
