"""The prefork master: binds the socket, forks workers and services, and supervises them.

Signal handlers only queue the signal and wake the loop through a pipe; the loop then calls
the method named after it (``handle_hup``, ``handle_term``, ...). Each pass of the loop reaps
dead children, kills workers whose heartbeat stopped, and brings the count back to target.
"""
from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

from framework.server import listeners
from framework.server.contract import Plan
from framework.server.log import reopen_error_log
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

    # -- start -----------------------------------------------------------------------------

    def bind(self) -> None:
        """Listen on every address (or take systemd's sockets); BindError names a failure."""
        try:
            self.tls = listeners.tls_context(self.plan.settings)
        except ValueError as exc:
            raise listeners.BindError(str(exc)) from None
        self.listeners, self.unix_paths = listeners.open_listeners(self.plan.settings)

    def run(self) -> int:
        if not self.listeners:
            self.bind()
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
        finally:
            self.kill_all(signal.SIGKILL)
            if os.getpid() == self.pid:
                listeners.remove_files(self.unix_paths)

    def note_signal(self, signum: int, frame: Any) -> None:
        self.signal_queue.append(signum)

    def wait(self) -> None:
        try:
            select.select([self.wake_r], [], [], 1.0)
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
        log.warning("USR2 (binary upgrade) is not supported by this version; ignored")

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
                self.spawn(service.name, lambda s=service: s.target(self.plan.settings))
        if now >= self.next_spawn.get("worker", 0.0):
            for _ in range(wanted):
                self.spawn_worker()

    def spawn_worker(self) -> None:
        heartbeat = tempfile.TemporaryFile(prefix="httpd-heartbeat-")
        plan = self.plan

        def work() -> None:
            Worker(self.listeners, plan.app, plan.settings, heartbeat.fileno(), self.pid,
                   self.tls).run()

        self.spawn("worker", work, heartbeat)

    def spawn(self, kind: str, body: Callable[[], None], heartbeat: Any = None) -> None:
        pid = self.fork(kind, body)
        self.children[pid] = Child(pid, kind, self.generation, self.clock(), heartbeat)

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
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if child.heartbeat is not None:
                child.heartbeat.close()
            if child.stopping or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.warning("%s %d exited with %s; replacing it", child.kind, pid,
                        f"signal {-code}" if code < 0 else f"code {code}")
            if self.clock() - child.started < EARLY_DEATH:
                streak = self.crash_streak.get(child.kind, 0) + 1
                self.crash_streak[child.kind] = streak
                delay = min(0.1 * 2 ** streak, BACKOFF_MAX)
                self.next_spawn[child.kind] = self.clock() + delay
            else:
                self.crash_streak.pop(child.kind, None)

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
