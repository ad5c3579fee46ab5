"""Access log (Combined Log Format, buffered) and the error log on stderr."""
from __future__ import annotations

import logging
import os
import sys
import time

from framework.server.messages import MONTHS

FLUSH_BYTES = 64 * 1024


def setup_error_log(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def reopen_error_log() -> None:
    """Reopen file handlers of the error log; stderr (the default) needs nothing."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()


class AccessLog:
    """Collects Combined Log Format lines and writes them in batches.

    ``flush`` runs when the buffer passes 64 KiB and on the worker's once-a-second tick, so
    a busy worker makes a write per few hundred requests instead of one per request.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.enabled = target != "off"
        self.fd = -1
        if target == "-":
            self.fd = sys.stdout.fileno()
        elif self.enabled:
            self.fd = self.open()
        self.lines: list[str] = []
        self.size = 0
        self.stamp_second = -1
        self.stamp = ""

    def open(self) -> int:
        return os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen(self) -> None:
        """After logrotate moved the file (SIGUSR1): flush to the old file, open the path anew."""
        if not self.enabled or self.target == "-":
            return
        self.flush()
        try:
            fd = self.open()
        except OSError as exc:
            logging.getLogger("httpd").error("cannot reopen the access log %s: %s",
                                             self.target, exc)
            return
        os.close(self.fd)
        self.fd = fd
        logging.getLogger("httpd").info("access log reopened")

    def timestamp(self, now: float) -> str:
        second = int(now)
        if second != self.stamp_second:
            t = time.gmtime(second)
            self.stamp = (f"{t.tm_mday:02d}/{MONTHS[t.tm_mon]}/{t.tm_year}:"
                          f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")
            self.stamp_second = second
        return self.stamp

    def write(self, client: str, request_line: str, status: int, size: int,
              referer: str, agent: str, now: float) -> None:
        raw = request_line + referer + agent
        if '"' in raw or "\\" in raw or not raw.isprintable():  # rare: escape each part
            request_line, referer, agent = escape(request_line), escape(referer), escape(agent)
        line = (f'{client} - - [{self.timestamp(now)}] "{request_line}" {status} '
                f'{size or "-"} "{referer or "-"}" "{agent or "-"}"\n')
        self.lines.append(line)
        self.size += len(line)
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        data = "".join(self.lines).encode("utf-8", "replace")
        self.lines.clear()
        self.size = 0
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except BlockingIOError:
            pass  # a stdout pipe that nobody drains must not stall the server
        except OSError as exc:
            logging.getLogger("httpd").warning("access log write failed: %s", exc)


def escape(text: str) -> str:
    """Backslash-escape quotes, backslashes and unprintable characters, as nginx does."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
