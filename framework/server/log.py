"""Access log (Combined Log Format or gunicorn's atoms, buffered) and the error log."""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from framework.server.messages import MONTHS

FLUSH_BYTES = 64 * 1024
COMBINED = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def setup_error_log(level: str, target: str = "-") -> None:
    """The error log on stderr ('-') or appended to a file (reopened on USR1)."""
    handler = logging.StreamHandler(sys.stderr) if target == "-" else logging.FileHandler(target)
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
                stream = handler._open()
            except OSError as exc:  # e.g. a worker without the right to create it anew
                logging.getLogger("httpd").error("cannot reopen the error log: %s", exc)
                continue
            finally:
                handler.release()
            handler.acquire()
            try:
                handler.close()
                handler.stream = stream
            finally:
                handler.release()


class AccessLog:
    """Collects Combined Log Format lines and writes them in batches.

    ``flush`` runs when the buffer passes 64 KiB and on the worker's once-a-second tick, so
    a busy worker makes a write per few hundred requests instead of one per request.
    """

    def __init__(self, target: str, line_format: str = COMBINED) -> None:
        self.target = target
        self.combined = line_format == COMBINED  # the fast path of ``write``
        self.format_line = compile_format(line_format)
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

    def write_atoms(self, client: str, request: Any, response: Any, size: int,
                    seconds: float, now: float) -> None:
        """A line of a custom ``access_log_format``."""
        line = self.format_line(client, request, response, size, seconds,
                                self.timestamp(now)) + "\n"
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


# gunicorn's atoms, as expressions over (c: client address, rq: Request or None, rs: Response,
# size: body bytes sent, sec: seconds taken, stamp: the CLF time); ``clean`` escapes what the
# client chose
ATOMS = {
    "h": "c",
    "l": "'-'",
    "u": "'-'",
    "t": "'[' + stamp + ']'",
    "r": "(clean(f'{rq.method} {rq.target} {rq.version}') if rq else '-')",
    "m": "(clean(rq.method) if rq else '-')",
    "U": "(clean(rq.path) if rq else '-')",
    "q": "(clean(rq.query) if rq else '')",
    "H": "(rq.version if rq else '-')",
    "s": "str(rs.status)",
    "b": "(str(size) if size else '-')",
    "B": "str(size)",
    "f": "(clean(rq.headers.get('referer', '-')) if rq else '-')",
    "a": "(clean(rq.headers.get('user-agent', '-')) if rq else '-')",
    "D": "str(int(sec * 1e6))",
    "M": "str(int(sec * 1e3))",
    "L": "f'{sec:.6f}'",
    "p": "pid",
}
ATOM = re.compile(r"%\(([^)]*)\)s|%%")


class FormatError(ValueError):
    """An access_log_format that cannot be compiled; the message names the atom."""


def compile_format(line_format: str) -> Callable[..., str]:
    """Turn an access_log_format into one Python expression, compiled once.

    Raises FormatError for an unknown atom or a stray ``%``.
    """
    parts: list[str] = []
    at = 0
    for match in ATOM.finditer(line_format):
        literal = line_format[at:match.start()]
        if "%" in literal:
            raise FormatError(f"access_log_format: stray '%' in {literal!r}")
        if literal:
            parts.append(repr(literal))
        atom = match.group(1)
        if atom is None:
            parts.append("'%'")
        elif atom.startswith("{") and atom.endswith(("}i", "}o")):
            name = atom[1:-2].lower()
            lookup = "request_header(rq" if atom.endswith("i") else "response_header(rs"
            parts.append(f"clean({lookup}, {name!r}))")
        elif atom in ATOMS:
            parts.append(ATOMS[atom])
        else:
            raise FormatError(f"access_log_format: unknown atom %({atom})s")
        at = match.end()
    if "%" in line_format[at:]:
        raise FormatError(f"access_log_format: stray '%' in {line_format[at:]!r}")
    parts.append(repr(line_format[at:]))  # at least one part, even for an empty format
    source = f"lambda c, rq, rs, size, sec, stamp: {' + '.join(parts)}"
    scope = {"clean": clean, "request_header": request_header,
             "response_header": response_header, "pid": str(os.getpid())}
    return eval(source, scope)  # built from the fixed ATOMS table and reprs only


def clean(text: str) -> str:
    if '"' in text or "\\" in text or not text.isprintable():
        return escape(text)
    return text


def request_header(request: Any, name: str) -> str:
    return request.headers.get(name, "-") if request is not None else "-"


def response_header(response: Any, name: str) -> str:
    for field, value in response.headers:
        if field.lower() == name:
            return value
    if response.raw:  # fields the static handler serialized ahead of time
        for line in response.raw.decode("latin-1").split("\r\n"):
            field, _, value = line.partition(":")
            if field.strip().lower() == name:
                return value.strip()
    return "-"
