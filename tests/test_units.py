"""Between unit and process level: a real ``Worker`` driven over a socketpair, and the
``Master``'s decisions with a fake clock and fake children.

No process is forked here. The worker's loop methods are called directly, with a stand-in
application, so each protocol-to-socket rule is checked in microseconds; the master's fork,
wait, kill and heartbeat reads are replaced by fakes that record what it decided.
"""
from __future__ import annotations

import os
import signal
import socket
from typing import Any

import pytest

from framework.server import config
from framework.server.contract import Plan, Service
from framework.server.master import BACKOFF_MAX, Master
from framework.server.messages import Response
from framework.server.worker import IDLE, Connection, Worker


class StandIn:
    """The Application protocol: answers ``GET /x`` with ``x``; records what it saw."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self.limit = limit
        self.seen: list[tuple[str, str, bytes]] = []

    def preflight(self, request: Any) -> Response | int:
        if request.path == "/refuse":
            return Response(403, b"no", content_type="text/plain")
        return self.limit

    def handle(self, request: Any) -> Response:
        self.seen.append((request.method, request.path, request.body))
        if request.path == "/big":
            return Response(200, b"B" * 300_000, content_type="text/plain")
        if request.path == "/raw":  # fields serialized ahead, as the static cache does
            response = Response(200, b"r")
            response.raw = b"Content-Type: text/plain\r\n"
            return response
        return Response(200, request.path[1:].encode() or b"root", content_type="text/plain")

    def error(self, status: int, message: str, request: Any) -> Response:
        return Response(status, message.encode(), content_type="text/plain")


@pytest.fixture
def rig():
    """A worker with one connection; yields (worker, connection, client socket, app)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    heartbeat = os.open(os.devnull, os.O_RDONLY)
    app = StandIn()
    settings = config.build({"apps": []}, {"access_log": "off"})
    worker = Worker(listener, app, settings, heartbeat, os.getppid())
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(2)
    conn = Connection(ours, "peer")
    worker.conns[conn.fd] = conn
    worker.epoll.register(conn.fd, 1)
    yield worker, conn, theirs, app
    for c in list(worker.conns.values()):
        worker.close(c)
    theirs.close()
    listener.close()
    os.close(heartbeat)


def exchange(worker: Worker, conn: Connection, client: socket.socket, data: bytes) -> bytes:
    client.sendall(data)
    worker.on_readable(conn)
    out = b""
    client.settimeout(0.2)
    try:
        while True:
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    return out


def test_pipelined_requests_are_answered_in_order(rig) -> None:
    worker, conn, client, app = rig
    out = exchange(worker, conn, client, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /b HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n")
    bodies = [part.split(b"\r\n\r\n", 1)[1][:1] for part in out.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"a", b"b", b"c"]
    assert conn.state == IDLE and conn.fd in worker.conns  # kept alive


def test_a_partial_head_waits_and_completes(rig) -> None:
    worker, conn, client, app = rig
    assert exchange(worker, conn, client, b"GET /slow HTTP/1.1\r\nHo") == b""
    out = exchange(worker, conn, client, b"st: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"slow")


def test_a_body_is_collected_before_the_handler_runs(rig) -> None:
    worker, conn, client, app = rig
    exchange(worker, conn, client, b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
    assert app.seen == []
    out = exchange(worker, conn, client, b"56789")
    assert app.seen == [("POST", "/p", b"0123456789")]
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")


def test_expect_100_continue_then_the_answer(rig) -> None:
    worker, conn, client, app = rig
    out = exchange(worker, conn, client, b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                   b"Expect: 100-continue\r\n\r\n")
    assert out == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert exchange(worker, conn, client, b"abc").startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_refusal_before_the_body_closes_the_connection(rig) -> None:
    worker, conn, client, app = rig
    out = exchange(worker, conn, client, b"POST /refuse HTTP/1.1\r\nHost: t\r\n"
                   b"Content-Length: 5\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"Connection: close" in out
    assert app.seen == []  # the unread body was never taken for a request


def test_a_framing_error_answers_400_and_closes(rig) -> None:
    worker, conn, client, app = rig
    out = exchange(worker, conn, client, b"GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in out


def test_a_slow_reader_stops_further_parsing_until_it_drains(rig) -> None:
    """Past the high-water mark, pipelined requests wait; EPOLLOUT resumes them."""
    worker, conn, client, app = rig
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n" * 3 + b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
    worker.on_readable(conn)
    assert len(app.seen) < 4 and conn.out  # answers queued, the rest not parsed yet
    received = b""
    client.settimeout(0.5)
    while b"last" not in received:
        received += client.recv(1 << 20)
        worker.on_writable(conn)
    assert [path for _, path, _ in app.seen] == ["/big", "/big", "/big", "/last"]
    assert received.count(b"HTTP/1.1 200 OK") == 4


def test_head_answers_have_the_get_length_and_no_body(rig) -> None:
    worker, conn, client, app = rig
    out = exchange(worker, conn, client, b"HEAD /abc HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"Content-Length: 3\r\n" in out and out.endswith(b"\r\n\r\n")


# == the master's decisions ===================================================================

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMaster(Master):
    """Forks nothing: children are numbers, exits are fed in, signals are recorded."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan, lambda: plan)
        self.clock = FakeClock()
        self.next_pid = 100
        self.exits: list[tuple[int, int]] = []
        self.sent: list[tuple[int, int]] = []
        self.beats: dict[int, float] = {}

    def fork(self, kind: str, body: Any) -> int:
        self.next_pid += 1
        self.beats[self.next_pid] = 0.0
        return self.next_pid

    def wait_any(self) -> tuple[int, int] | None:
        return self.exits.pop(0) if self.exits else None

    def send(self, pid: int, signum: int) -> None:
        self.sent.append((pid, signum))

    def heartbeat_mtime(self, child: Any) -> float:
        return self.beats[child.pid]

    def kinds(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for child in self.children.values():
            if not child.stopping:
                out.setdefault(child.kind, []).append(child.pid)
        return out

    def die(self, pid: int, code: int = 1) -> None:
        self.exits.append((pid, code << 8))
        self.reap_children()


def fake_master(workers: int = 2, services: tuple[str, ...] = ()) -> FakeMaster:
    settings = config.build({"apps": []}, {"workers": workers})
    return FakeMaster(Plan(settings, None, [Service(name, lambda s: None) for name in services]))


def test_spawns_the_workers_and_services_it_is_told_to() -> None:
    master = fake_master(workers=3, services=("proc",))
    master.manage_children()
    kinds = master.kinds()
    assert len(kinds["worker"]) == 3 and len(kinds["proc"]) == 1


def test_a_crash_loop_backs_off_per_role() -> None:
    master = fake_master(workers=1, services=("proc",))
    master.manage_children()
    for _ in range(5):  # the service dies right after each start
        (pid,) = master.kinds()["proc"]
        master.clock.now += 0.01
        master.die(pid)
        master.clock.now = master.next_spawn["proc"]
        master.manage_children()
    assert master.crash_streak["proc"] == 5
    (worker,) = master.kinds()["worker"]
    master.clock.now += 5.0  # a long-lived worker is killed
    master.die(worker, code=0)
    master.manage_children()  # replaced at once: the service's streak is not the worker's
    assert len(master.kinds()["worker"]) == 1 and master.kinds()["worker"] != [worker]
    assert "worker" not in master.crash_streak


def test_back_off_doubles_up_to_its_cap() -> None:
    master = fake_master(workers=1)
    master.manage_children()
    delays = []
    for _ in range(10):
        (pid,) = master.kinds()["worker"]
        master.die(pid)
        delays.append(round(master.next_spawn["worker"] - master.clock.now, 3))
        master.clock.now = master.next_spawn["worker"]
        master.manage_children()
    assert delays[:4] == [0.2, 0.4, 0.8, 1.6] and delays[-1] == BACKOFF_MAX


def test_a_worker_without_heartbeats_is_killed_after_worker_timeout() -> None:
    master = fake_master(workers=1)
    master.manage_children()
    (pid,) = master.kinds()["worker"]
    timeout = master.plan.settings["worker_timeout"]
    master.murder_workers()  # first look at the heartbeat
    master.clock.now += timeout - 1
    master.murder_workers()
    assert (pid, signal.SIGKILL) not in master.sent
    master.beats[pid] = 1.0  # it beat: the clock starts again when the master sees it
    master.clock.now += 1
    master.murder_workers()
    master.clock.now += timeout - 0.5
    master.murder_workers()
    assert (pid, signal.SIGKILL) not in master.sent
    master.clock.now += 1
    master.murder_workers()
    assert (pid, signal.SIGKILL) in master.sent


def test_hup_starts_a_new_generation_before_stopping_the_old() -> None:
    master = fake_master(workers=2)
    master.manage_children()
    old = set(master.kinds()["worker"])
    master.handle_hup()
    new = set(master.kinds()["worker"])
    assert len(new) == 2 and not new & old
    assert {(pid, signal.SIGTERM) for pid in old} <= set(master.sent)


def test_ttin_and_ttou_change_the_count_never_below_one() -> None:
    master = fake_master(workers=1)
    master.manage_children()
    master.handle_ttin()
    master.manage_children()
    assert len(master.kinds()["worker"]) == 2
    for _ in range(3):
        master.handle_ttou()
        master.manage_children()
    assert len(master.kinds()["worker"]) == 1 and master.target_workers == 1


def test_usr1_is_forwarded_to_every_child() -> None:
    master = fake_master(workers=2, services=("proc",))
    master.manage_children()
    master.handle_usr1()
    assert {pid for pid, sig in master.sent if sig == signal.SIGUSR1} == set(master.children)


def test_answer_heads_are_built_once_a_second_and_renewed_with_the_date(rig, monkeypatch) -> None:
    """Heads without per-answer fields are remembered per (status, fields, length,
    keep-alive) until the wall clock's second turns; renewing the Date forgets them."""
    from framework.server import worker as worker_module

    worker, conn, client, app = rig
    now = worker_module.time.time()
    monkeypatch.setattr(worker_module.time, "time", lambda: now)  # both clocks stand still
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: 1000.0)
    worker.renew_date(1000.0)  # this second ends at 1000 + (the rest of it)
    get = b"GET /raw HTTP/1.1\r\nHost: t\r\n\r\n"
    first = exchange(worker, conn, client, get)
    assert first.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: ")
    assert first.endswith(b"Content-Length: 1\r\nConnection: keep-alive\r\n\r\nr")
    assert exchange(worker, conn, client, get) == first
    assert list(worker.heads.values()) == [first[:-1]]

    later = now + 3600
    monkeypatch.setattr(worker_module.time, "time", lambda: later)
    expires = worker.date_expires
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: expires)  # the second ends
    again = exchange(worker, conn, client, get)
    date = worker_module.http_date(later).encode()
    assert again != first and b"Date: " + date + b"\r\n" in again
    assert list(worker.heads.values()) == [again[:-1]]  # the old second's head is forgotten

    closing = exchange(worker, conn, client, b"GET /raw HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"Connection: close\r\n\r\nr" in closing and len(worker.heads) == 2
