"""Prometheus metrics summed over every worker, with no lock on the request path.

The master maps one anonymous shared memory block before it forks. Slot 0 is the master's
(workers alive, worker restarts); every worker gets a slot of its own and only ever adds to
it, so a request costs a few integer additions in memory the other processes merely read.
The worker that answers a scrape sums every slot in use. A slot outlives its worker: the
replacement keeps adding to the same counters, so totals never go backwards.
"""
from __future__ import annotations

import bisect
import mmap

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
METHOD_INDEX = {name: i for i, name in enumerate(METHODS)}
FIRST_STATUS, STATUS_COUNT = 100, 500  # status codes 100..599
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds; +Inf last

# a worker slot, in 64-bit integers
OPEN, SENT, DURATION_US = 0, 1, 2
BUCKET0 = 3
REQUESTS0 = BUCKET0 + len(BUCKETS) + 1
SLOT_LEN = REQUESTS0 + len(METHODS) * STATUS_COUNT
# the master's slot 0
ALIVE, RESTARTS, SLOTS_USED = 0, 1, 2
MAX_SLOTS = 256
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SharedMetrics:
    """The shared block: created by the master, inherited by every child through fork."""

    def __init__(self, slots: int = MAX_SLOTS) -> None:
        self.block = mmap.mmap(-1, 8 * SLOT_LEN * slots)  # MAP_SHARED | MAP_ANONYMOUS
        self.values = memoryview(self.block).cast("q")
        self.free = list(range(slots - 1, 0, -1))  # slot 0 is the master's

    def slot(self, index: int) -> memoryview:
        return self.values[index * SLOT_LEN:(index + 1) * SLOT_LEN]

    # -- in the master ----------------------------------------------------------------------

    def claim(self) -> int:
        """A slot for a new worker, or 0 (not counted) when all are taken."""
        if not self.free:
            return 0
        index = self.free.pop()
        master = self.slot(0)
        master[SLOTS_USED] = max(master[SLOTS_USED], index + 1)
        return index

    def release(self, index: int) -> None:
        """After the slot's worker exited: its connections are gone, its counts stay."""
        if index:
            self.slot(index)[OPEN] = 0
            self.free.append(index)

    def set_alive(self, count: int) -> None:
        self.values[ALIVE] = count

    def count_restart(self) -> None:
        self.values[RESTARTS] += 1

    # -- in the scraping worker -------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition format, summed over every slot ever used."""
        used = max(self.values[SLOTS_USED], 1)
        totals = [0] * SLOT_LEN
        for index in range(1, used):
            slot = self.slot(index).tolist()
            totals = [a + b for a, b in zip(totals, slot)]
        out = [
            "# HELP httpd_requests_total Requests answered, by method and status code.",
            "# TYPE httpd_requests_total counter",
        ]
        for m, method in enumerate(METHODS):
            base = REQUESTS0 + m * STATUS_COUNT
            for s in range(STATUS_COUNT):
                if totals[base + s]:
                    out.append(f'httpd_requests_total{{method="{method}",'
                               f'code="{FIRST_STATUS + s}"}} {totals[base + s]}')
        out += [("# HELP httpd_request_duration_seconds Time from the request's first bytes "
                 "to its answer being queued."),
                "# TYPE httpd_request_duration_seconds histogram"]
        cumulative = 0
        for i, bound in enumerate((*BUCKETS, "+Inf")):
            cumulative += totals[BUCKET0 + i]
            out.append(f'httpd_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
        out += [f"httpd_request_duration_seconds_sum {totals[DURATION_US] / 1e6:.6f}",
                f"httpd_request_duration_seconds_count {cumulative}",
                "# HELP httpd_connections_open Client connections open (sampled each second).",
                "# TYPE httpd_connections_open gauge",
                f"httpd_connections_open {totals[OPEN]}",
                "# HELP httpd_sent_bytes_total Response body bytes sent.",
                "# TYPE httpd_sent_bytes_total counter",
                f"httpd_sent_bytes_total {totals[SENT]}",
                ("# HELP httpd_worker_restarts_total Workers replaced after exiting on their "
                 "own (crash, timeout, max_requests)."),
                "# TYPE httpd_worker_restarts_total counter",
                f"httpd_worker_restarts_total {self.values[RESTARTS]}",
                "# HELP httpd_workers_alive Worker processes running.",
                "# TYPE httpd_workers_alive gauge",
                f"httpd_workers_alive {self.values[ALIVE]}", ""]
        return "\n".join(out).encode()


class WorkerMetrics:
    """A worker's writer over its own slot."""

    __slots__ = ("shared", "slot")

    def __init__(self, shared: SharedMetrics, index: int) -> None:
        self.shared = shared
        self.slot = shared.slot(index) if index else memoryview(bytearray(8 * SLOT_LEN)).cast("q")

    def observe(self, method: str, status: int, seconds: float, size: int) -> None:
        slot = self.slot
        slot[REQUESTS0 + METHOD_INDEX.get(method, 7) * STATUS_COUNT
             + (status - FIRST_STATUS) % STATUS_COUNT] += 1
        slot[BUCKET0 + bisect.bisect_left(BUCKETS, seconds)] += 1
        slot[DURATION_US] += int(seconds * 1e6)
        slot[SENT] += size

    def set_open(self, count: int) -> None:
        self.slot[OPEN] = count
