"""The prefork master: binds the socket, forks workers and services, and supervises them.

Signal handlers only queue the signal and wake the loop through a pipe; the loop then calls
the method named after it (``handle_hup``, ``handle_term``, ...). Each pass of the loop reaps
dead children, kills workers whose heartbeat stopped, and brings the count back to target.
USR2 starts the next master generation on the same listening sockets (passed through the
environment) and stops this one once the new workers serve.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

from framework.server import listeners
from framework.server.config import user_ids
from framework.server.contract import Plan
from framework.server.log import reopen_error_log
from framework.server.metrics import SharedMetrics, WorkerMetrics
from framework.server.worker import Worker

log = logging.getLogger("httpd.master")

PR_SET_PDEATHSIG = 1
SIGNALS = {
    signal.SIGHUP: "hup", signal.SIGTERM: "term", signal.SIGINT: "int",
    signal.SIGQUIT: "quit", signal.SIGTTIN: "ttin", signal.SIGTTOU: "ttou",
    signal.SIGCHLD: "chld", signal.SIGUSR1: "usr1", signal.SIGUSR2: "usr2",
    signal.SIGWINCH: "winch",
}
# children ignore these until they install their own handlers: a signal forwarded to a
# child in its first instant must not kill it (the default action of USR1/USR2 is to die)
CHILD_IGNORED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGHUP,
                 signal.SIGTTIN, signal.SIGTTOU)
BACKOFF_MAX = 10.0  # seconds between spawns while children keep dying at start-up
EARLY_DEATH = 2.0  # a child that dies sooner than this after spawning counts as crash-looping
# USR2: the new master generation finds its listening sockets and the pipe on which it says
# "ready" in these variables
INHERIT_ENV = "HTTPD_INHERIT_FDS"
READY_ENV = "HTTPD_UPGRADE_READY_FD"


@dataclass
class Child:
    pid: int
    kind: str  # "worker" or a service name
    generation: int
    started: float
    heartbeat: Any = None  # temp file whose mtime the worker refreshes every second
    stopping: bool = False
    beat_mtime: float = 0.0  # the heartbeat mtime last seen ...
    beat_seen: float = 0.0  # ... and when it was seen to change, on the monotonic clock
    first_beat: float = 0.0  # the heartbeat mtime at spawn: a change means "serving"
    slot: int = 0  # its metrics slot (0: none)


class Master:
    def __init__(self, plan: Plan, reload: Callable[[], Plan]) -> None:
        self.plan = plan
        self.reload = reload
        self.target_workers = plan.settings["workers"]
        self.children: dict[int, Child] = {}
        self.signal_queue: list[int] = []
        self.generation = 0
        # crash-loop back-off per role ("worker" or a service name): a service that keeps
        # dying must not delay the replacement of a killed worker
        self.crash_streak: dict[str, int] = {}
        self.next_spawn: dict[str, float] = {}
        self.stopping = False
        self.listeners: list[socket.socket] = []
        self.unix_paths: list[str] = []  # socket files we bound, removed at exit
        self.tls = None
        self.pid = os.getpid()
        self.clock = time.monotonic
        self.metrics: SharedMetrics | None = None
        # USR2: the command that starts a new generation, the child running it, and the pipe
        # on which it reports ready; READY_ENV set means we are such a new generation
        self.command = [sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:]]
        self.upgrade_pid = 0
        self.upgrade_r = -1
        self.ready_fd = int(os.environ.pop(READY_ENV, "-1"))
        self.pidfile_written = False

    # -- start -----------------------------------------------------------------------------

    def bind(self) -> None:
        """Listen on every address (or take systemd's sockets); BindError names a failure."""
        try:
            self.tls = listeners.tls_context(self.plan.settings)
        except ValueError as exc:
            raise listeners.BindError(str(exc)) from None
        self.listeners, self.unix_paths = listeners.open_listeners(self.plan.settings)

    def listening_sockets(self) -> list[socket.socket]:
        return list(self.listeners)

    def adopt(self, sockets: list[socket.socket]) -> None:
        """Serve sockets inherited from the previous generation (USR2) instead of binding.

        The unix socket files become ours to remove at exit; the TLS context is built anew
        (certificates may have been renewed)."""
        try:
            self.tls = listeners.tls_context(self.plan.settings)
        except ValueError as exc:
            raise listeners.BindError(str(exc)) from None
        for sock in sockets:
            sock.setblocking(False)
        self.listeners = sockets
        self.unix_paths = [sock.getsockname() for sock in sockets
                           if sock.family == socket.AF_UNIX and sock.getsockname()]

    def run(self) -> int:
        if not self.listeners:
            self.bind()
        if self.ready_fd < 0:
            self.write_pidfile()
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r, self.wake_w = rfd, wfd
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        for signum in SIGNALS:
            signal.signal(signum, self.note_signal)
        scheme = "https" if self.tls else "http"
        log.info("listening on %s with %d workers (pid %d)",
                 ", ".join(f"{scheme}://{listeners.describe(sock)}" for sock in self.listeners),
                 self.target_workers, self.pid)
        try:
            self.manage_children()
            while True:
                self.wait()
                while self.signal_queue:
                    name = SIGNALS[self.signal_queue.pop(0)]
                    getattr(self, f"handle_{name}")()
                self.reap_children()
                if self.stopping:
                    if not self.children:
                        return 0
                    if self.clock() > self.stop_deadline:
                        self.kill_all(signal.SIGKILL)
                    continue
                self.murder_workers()
                self.manage_children()
                if self.ready_fd >= 0 and self.workers_serving():
                    self.report_ready()
        finally:
            self.kill_all(signal.SIGKILL)
            if os.getpid() == self.pid:
                listeners.remove_files(self.unix_paths)
            self.remove_pidfile()

    def note_signal(self, signum: int, frame: Any) -> None:
        self.signal_queue.append(signum)

    def wait(self) -> None:
        watched = [self.wake_r] if self.upgrade_r < 0 else [self.wake_r, self.upgrade_r]
        # a new generation looks often for its workers' first beats: the old one waits on it
        timeout = 0.05 if self.ready_fd >= 0 else 1.0
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
            if self.upgrade_r in readable:
                self.check_upgrade()
            while os.read(self.wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- signals ---------------------------------------------------------------------------

    def handle_chld(self) -> None:
        pass  # reaping happens on every pass of the loop

    def handle_term(self) -> None:
        self.stop(graceful=True)

    handle_int = handle_term

    def handle_quit(self) -> None:
        self.stop(graceful=False)

    def handle_usr1(self) -> None:
        """Reopen log files (logrotate's signal): here, and in every child."""
        reopen_error_log()
        log.info("USR1: reopening log files")
        for child in list(self.children.values()):
            self.send(child.pid, signal.SIGUSR1)

    def handle_usr2(self) -> None:
        """Start a new master generation on the same sockets; stop once it serves."""
        if self.upgrade_pid or self.stopping:
            log.warning("USR2: an upgrade is already under way or we are stopping; ignored")
            return
        sockets = self.listening_sockets()
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        env = {**os.environ, **pass_sockets(sockets), READY_ENV: str(ready_w)}
        os.set_inheritable(ready_w, True)
        try:
            pid = os.posix_spawn(self.command[0], self.command, env)
        except OSError as exc:
            log.error("USR2: cannot start a new master: %s; still serving", exc)
            os.close(ready_r)
            return
        finally:
            os.close(ready_w)
            for sock in sockets:
                os.set_inheritable(sock.fileno(), False)
        self.upgrade_pid, self.upgrade_r = pid, ready_r
        log.info("USR2: started new master %d; this one (%d) stops once it serves",
                 pid, self.pid)

    def check_upgrade(self) -> None:
        """The new generation wrote "ready" (stop gracefully) or closed the pipe (it failed)."""
        try:
            word = os.read(self.upgrade_r, 16)
        except OSError:
            word = b""
        os.close(self.upgrade_r)
        self.upgrade_r = -1
        if word.startswith(b"ready"):
            log.info("USR2: new master %d serves; stopping this one gracefully",
                     self.upgrade_pid)
            self.unix_paths = []  # the new generation serves on them now: leave the files
            self.stop(graceful=True)
        # otherwise it closed the pipe unready: reaping it reports how it ended

    def workers_serving(self) -> bool:
        """Every worker of the current generation is up and has beaten once."""
        current = [c for c in self.children.values()
                   if c.kind == "worker" and c.generation == self.generation and not c.stopping]
        return len(current) >= self.target_workers and all(
            self.heartbeat_mtime(c) != c.first_beat for c in current)

    def report_ready(self) -> None:
        """As a new generation (USR2): take over the pidfile, then tell the old master."""
        self.write_pidfile()
        try:
            os.write(self.ready_fd, b"ready")
        except OSError:
            pass
        os.close(self.ready_fd)
        self.ready_fd = -1
        log.info("serving; the previous master may stop")

    def write_pidfile(self) -> None:
        path = self.plan.settings["pidfile"]
        if not path:
            return
        temp = f"{path}.{self.pid}.tmp"
        with open(temp, "w") as f:
            f.write(f"{self.pid}\n")
        os.replace(temp, path)  # a reader never sees it half written
        self.pidfile_written = True

    def remove_pidfile(self) -> None:
        """Only while it names us: after USR2 it belongs to the new master."""
        path = self.plan.settings["pidfile"]
        if not self.pidfile_written:
            return
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            if int(f.read().strip()) == self.pid:
                os.unlink(path)

    def handle_winch(self) -> None:
        pass  # terminal resizes and nginx's "stop the workers" are not ours: ignored

    def handle_ttin(self) -> None:
        self.target_workers += 1
        log.info("TTIN: workers -> %d", self.target_workers)

    def handle_ttou(self) -> None:
        if self.target_workers > 1:
            self.target_workers -= 1
        log.info("TTOU: workers -> %d", self.target_workers)

    def handle_hup(self) -> None:
        """Reload the config; start fresh workers, then let the old ones finish and go."""
        try:
            plan = self.reload()
            tls = listeners.tls_context(plan.settings)  # renewed certificates take effect
        except Exception as exc:  # a bad config on reload keeps the running one
            log.error("reload failed, keeping the current config: %s", exc)
            return
        new = plan.settings
        cur = self.plan.settings
        if listeners.addresses(new) != listeners.addresses(cur):
            log.warning("bind/host/port changes need a restart; keeping %s",
                        ", ".join(map(str, listeners.addresses(cur))))
            for key in ("bind", "host", "port"):
                plan.settings[key] = cur[key]
        self.tls = tls
        self.plan = plan
        self.target_workers = plan.settings["workers"]
        self.generation += 1
        log.info("HUP: config reloaded, replacing workers (generation %d)", self.generation)
        self.crash_streak.clear()
        self.next_spawn.clear()
        self.manage_children()
        for child in list(self.children.values()):
            if child.generation < self.generation:
                self.signal_child(child, signal.SIGTERM)

    def stop(self, graceful: bool) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_deadline = self.clock() + self.plan.settings["graceful_timeout"] + 1
            listeners.close_listeners(self.listeners)
        if graceful:
            log.info("stopping gracefully")
            self.kill_all(signal.SIGTERM)
        else:
            log.info("stopping now")
            self.kill_all(signal.SIGQUIT)
            self.stop_deadline = min(self.stop_deadline, self.clock() + 1)

    # -- children --------------------------------------------------------------------------

    def manage_children(self) -> None:
        """Spawn what is missing: workers up to the target, one process per service."""
        current = [c for c in self.children.values()
                   if c.kind == "worker" and c.generation == self.generation and not c.stopping]
        for child in current[self.target_workers:]:
            self.signal_child(child, signal.SIGTERM)
        running = {c.kind for c in self.children.values() if not c.stopping}
        wanted = self.target_workers - min(len(current), self.target_workers)
        missing_services = [s for s in self.plan.services if s.name not in running]
        if not wanted and not missing_services:
            return
        now = self.clock()
        for service in missing_services:
            if now >= self.next_spawn.get(service.name, 0.0):
                self.spawn(service.name,
                           lambda s=service: serve(s, self.plan.settings, self.listeners))
        if now >= self.next_spawn.get("worker", 0.0):
            for _ in range(wanted):
                self.spawn_worker()

    def spawn_worker(self) -> None:
        heartbeat = tempfile.TemporaryFile(prefix="httpd-heartbeat-")
        plan = self.plan
        ids = user_ids(plan.settings)
        if ids is not None:
            os.fchown(heartbeat.fileno(), *ids)  # the worker touches it after dropping root
        if plan.settings["metrics_path"] and self.metrics is None:
            self.metrics = SharedMetrics()
        slot = self.metrics.claim() if self.metrics is not None else 0

        def work() -> None:
            metrics = WorkerMetrics(self.metrics, slot) if plan.settings["metrics_path"] \
                else None
            worker = Worker(self.listeners, plan.app, plan.settings, heartbeat.fileno(),
                            self.pid, self.tls, metrics)  # its logs are opened before dropping root
            drop_privileges(plan.settings)
            worker.run()

        self.spawn("worker", work, heartbeat)
        self.children[self.last_pid].first_beat = self.heartbeat_mtime(
            self.children[self.last_pid])
        self.children[self.last_pid].slot = slot

    def spawn(self, kind: str, body: Callable[[], None], heartbeat: Any = None) -> None:
        pid = self.fork(kind, body)
        self.children[pid] = Child(pid, kind, self.generation, self.clock(), heartbeat)
        self.last_pid = pid
        self.count_alive()

    # -- the process seams (tests replace these four, and ``clock``, with fakes) ------------

    def fork(self, kind: str, body: Callable[[], None]) -> int:
        """Start ``body`` in a child process; returns its pid (in the parent only)."""
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            self.become_child()
            body()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException:
            log.exception("%s %d crashed", kind, os.getpid())
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def wait_any(self) -> tuple[int, int] | None:
        """One exited child: (pid, wait status), or None when none has exited."""
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return None
        return (pid, status) if pid else None

    def send(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def heartbeat_mtime(self, child: Child) -> float:
        return os.fstat(child.heartbeat.fileno()).st_mtime

    def become_child(self) -> None:
        """Undo the master's signal setup and die with the master."""
        signal.set_wakeup_fd(-1)
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        for signum in CHILD_IGNORED:
            signal.signal(signum, signal.SIG_IGN)
        os.close(self.wake_r)
        os.close(self.wake_w)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass  # the worker's once-a-second parent check still catches an orphaning
        if os.getppid() != self.pid:
            raise SystemExit(0)

    def reap_children(self) -> None:
        while True:
            exited = self.wait_any()
            if exited is None:
                return
            pid, status = exited
            if pid == self.upgrade_pid:
                self.upgrade_ended(status)
                continue
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if child.heartbeat is not None:
                child.heartbeat.close()
            if self.metrics is not None:
                self.metrics.release(child.slot)
                self.count_alive()
            if child.stopping or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if child.kind == "worker" and self.metrics is not None:
                self.metrics.count_restart()
            if child.kind == "worker" and code == 0:
                log.info("worker %d retired (max_requests, or a TERM of its own); "
                         "replacing it", pid)
                continue  # a planned exit: no crash-loop back-off
            log.warning("%s %d exited with %s; replacing it", child.kind, pid,
                        f"signal {-code}" if code < 0 else f"code {code}")
            if self.clock() - child.started < EARLY_DEATH:
                streak = self.crash_streak.get(child.kind, 0) + 1
                self.crash_streak[child.kind] = streak
                delay = min(0.1 * 2 ** streak, BACKOFF_MAX)
                self.next_spawn[child.kind] = self.clock() + delay
            else:
                self.crash_streak.pop(child.kind, None)

    def upgrade_ended(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if not self.stopping:
            log.error("USR2: new master %d exited with code %d; still serving",
                      self.upgrade_pid, code)
        self.upgrade_pid = 0
        if self.upgrade_r >= 0:
            os.close(self.upgrade_r)
            self.upgrade_r = -1

    def count_alive(self) -> None:
        if self.metrics is not None:
            self.metrics.set_alive(sum(1 for c in self.children.values() if c.kind == "worker"))

    def murder_workers(self) -> None:
        """Kill workers that stopped sending heartbeats (stuck in a handler, or wedged)."""
        timeout = self.plan.settings["worker_timeout"]
        now = self.clock()
        for child in list(self.children.values()):
            if child.heartbeat is None or child.stopping:
                continue
            # only whether the mtime moves matters, so a wall-clock jump kills nobody
            mtime = self.heartbeat_mtime(child)
            if mtime != child.beat_mtime or not child.beat_seen:
                child.beat_mtime, child.beat_seen = mtime, now
            elif now - child.beat_seen > timeout:
                log.error("worker %d sent no heartbeat for %.0f s; killing it", child.pid, timeout)
                self.signal_child(child, signal.SIGKILL)
                child.stopping = False  # a murdered worker is replaced like a crashed one

    def signal_child(self, child: Child, signum: int) -> None:
        child.stopping = True
        self.send(child.pid, signum)

    def kill_all(self, signum: int) -> None:
        for child in list(self.children.values()):
            self.send(child.pid, signum)
        if signum == signal.SIGKILL:
            deadline = self.clock() + 2
            while self.children and self.clock() < deadline:
                self.reap_children()
                time.sleep(0.02)


def pass_sockets(sockets: list[socket.socket]) -> dict[str, str]:
    """Make the listening sockets survive exec; the variable that names them to the child."""
    for sock in sockets:
        os.set_inheritable(sock.fileno(), True)
    return {INHERIT_ENV: ",".join(str(sock.fileno()) for sock in sockets)}


def inherited_sockets(environ: dict[str, str]) -> list[socket.socket]:
    """The listening sockets a previous generation passed (USR2); removed from ``environ``
    so that our own children and later upgrades do not see a stale list."""
    text = environ.pop(INHERIT_ENV, "")
    return [socket.socket(fileno=int(fd)) for fd in text.split(",") if fd.strip()]


def serve(service: Any, settings: dict[str, Any], sockets: list[socket.socket]) -> None:
    """A service's process. It closes its copies of the listening sockets first: it never
    accepts, and a copy held through a graceful stop would keep the port open, so new
    clients would wait in the kernel's queue instead of being refused at once."""
    listeners.close_listeners(sockets)
    drop_privileges(settings)
    service.target(settings)


def drop_privileges(settings: dict[str, Any]) -> None:
    """In a child, after the master bound as root: become ``user`` and ``group`` for good."""
    ids = user_ids(settings)
    if ids is None or (os.getuid(), os.getgid()) == ids:
        return
    uid, gid = ids
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)


@contextlib.contextmanager
def acting_as(settings: dict[str, Any]) -> Iterator[None]:
    """Create files as ``user`` (the database, media directories), the master staying root."""
    ids = user_ids(settings)
    if ids is None or os.geteuid() != 0:
        yield
        return
    os.setegid(ids[1])
    os.seteuid(ids[0])
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
