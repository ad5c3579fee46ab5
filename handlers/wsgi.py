"""The WSGI bridge (PEP 3333): a parsed request in, a ``Response`` out, no socket in between.

The worker has read the whole body before the app is called, and sends what the app gives
after it returns: a body known in full goes out with Content-Length, a file from
``wsgi.file_wrapper`` by sendfile, anything longer as a stream that the worker pulls from the
app's iterator as the socket drains. ``WsgiSite`` puts the bridge behind the built-in apps and
the static files: claimed paths, then existing files, then the WSGI app.
"""
from __future__ import annotations

import importlib
import io
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from framework.server.config import ConfigError
from framework.server.protocol import REASONS, STATUS_LINES, Request
from framework.web.files import RESOLVE_TTL, NotServed, StaticFiles, html_error
from framework.web.responses import Response
from framework.web.urls import percent_decode

log = logging.getLogger("httpd.wsgi")

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]

# PEP 3333: the app must not send hop-by-hop fields; the server frames the body itself and
# writes Date and Server once. Connection: close from the app is honoured.
SERVER_FIELDS = frozenset(("connection", "keep-alive", "proxy-authenticate",
                           "proxy-authorization", "te", "trailer", "trailers",
                           "transfer-encoding", "upgrade", "content-length", "date", "server"))
FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 §5.5: HTAB is the only control
MAX_HEADER_KEYS = 1024
MAX_HEADS = 1024
MAX_MISSES = 4096


def load_app(spec: str) -> WsgiApp:
    """Import ``MODULE:CALLABLE`` (a dotted attribute path, or ``NAME()`` for a factory).

    The current directory comes first on the import path, as with gunicorn. Whatever goes
    wrong becomes a one-line ``ConfigError``.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "application"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigError(f"wsgi_app must be MODULE:CALLABLE, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    factory = attribute.endswith("()")
    try:
        target: Any = importlib.import_module(module_name)
        for name in attribute.removesuffix("()").split("."):
            target = getattr(target, name)
        if factory:
            target = target()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure is one start-up line
        raise ConfigError(f"cannot load WSGI app {spec!r}: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise ConfigError(f"WSGI app {spec!r} is not callable")
    return target


class FileWrapper:
    """``wsgi.file_wrapper``: the bridge sends a real file by sendfile, anything else by reading."""

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def fileno(self) -> int:
        return self.filelike.fileno()

    def __iter__(self):
        read, size = self.filelike.read, self.block_size
        while True:
            block = read(size)
            if not block:
                return
            yield block


class StartResponse:
    """One request's ``start_response`` and ``write`` (PEP 3333), with exc_info semantics."""

    __slots__ = ("head_sent", "headers", "status", "written")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []
        self.head_sent = False  # once true, an exc_info is re-raised instead of taken

    def __call__(self, status: str, headers: list[tuple[str, str]],
                 exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if type(status) is not str or type(headers) is not list:
            raise TypeError("start_response needs a str status and a list of headers")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy write() callable: the bytes are kept and sent before the iterable's."""
        if self.status is None:
            raise AssertionError("write() called before start_response")
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        if data:
            self.written.append(data)
            self.head_sent = True  # for the app, the head is committed with the first write


class Head:
    """The app's status and fields, checked and ready for the worker."""

    __slots__ = ("close", "length", "raw", "status")

    def __init__(self, start: StartResponse) -> None:
        status = start.status
        if status is None:
            raise AssertionError("the app returned without calling start_response")
        code = status[:3]
        if not code.isdigit() or status[3:4] not in ("", " ") or int(code) < 200:
            raise ValueError(f"bad status from the app: {status!r}")
        self.status = int(code)
        if self.status not in STATUS_LINES:
            reason = status[4:].strip() or "Unknown"
            if BAD_VALUE.search(reason) or not reason.isascii():
                raise ValueError(f"bad reason phrase from the app: {reason!r}")
            # the worker writes status lines from this table; the app names codes we do not
            STATUS_LINES[self.status] = f"HTTP/1.1 {self.status} {reason}\r\n".encode()
        self.length: int | None = None
        self.close = False
        kept = []
        for field in start.headers:
            name, value = field
            if not FIELD_NAME.fullmatch(name) or type(value) is not str or BAD_VALUE.search(value):
                raise ValueError(f"bad header field from the app: {field!r}")
            lower = name.lower()
            if lower in SERVER_FIELDS:
                if lower == "content-length":
                    value = value.strip()
                    if not value.isdigit() or not value.isascii():
                        raise ValueError(f"bad Content-Length from the app: {value!r}")
                    self.length = int(value)
                elif lower == "connection" and "close" in value.lower():
                    self.close = True
                continue
            kept.append(f"{name}: {value}\r\n")
        self.raw = "".join(kept).encode("latin-1")  # PEP 3333: values are latin-1 native strings


class AppBody:
    """A streamed body: what was already pulled, then the rest of the app's iterator.

    ``close()`` closes the app's iterable (PEP 3333) and the spooled request body.
    """

    __slots__ = ("body_file", "pulled", "rest", "result")

    def __init__(self, pulled: list[bytes], rest: Any, result: Any, body_file: Any) -> None:
        self.pulled = pulled
        self.rest = rest
        self.result = result
        self.body_file = body_file

    def __iter__(self):
        yield from self.pulled
        self.pulled = []
        for chunk in self.rest:
            if type(chunk) is not bytes:
                raise TypeError(f"the WSGI app yielded {type(chunk).__name__}, not bytes")
            yield chunk

    def close(self) -> None:
        close_quietly(self.result, self.body_file)


def close_quietly(result: Any, body_file: Any) -> None:
    try:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    except Exception:
        log.exception("close() of the WSGI app's iterable failed")
    finally:
        if body_file is not None:
            body_file.close()


class WsgiBridge:
    """Calls a WSGI app for a request and turns what it returns into a ``Response``."""

    def __init__(self, app: WsgiApp, settings: dict[str, Any]) -> None:
        self.app = app
        self.script_name = settings["wsgi_script_name"]
        self.server = (settings["host"], str(settings["port"]))
        self.base = {
            "SCRIPT_NAME": self.script_name,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        # the body reaches the app decoded, with CONTENT_LENGTH set: framing fields are ours
        self.header_keys: dict[str, str] = {"content-type": "CONTENT_TYPE",
                                            "content-length": "", "transfer-encoding": ""}
        self.hosts: dict[str, tuple[str, str]] = {}
        self.heads: dict[tuple, Head] = {}  # an app sends the same few heads again and again

    def handle(self, request: Request) -> Response:
        # the bridge owns a spooled body from here: a stream may read it after we return
        body_file, request.body_file = request.body_file, None
        try:
            environ = self.environ(request, body_file)
        except ValueError:
            if body_file is not None:
                body_file.close()
            return html_error(400, REASONS[400])
        start = StartResponse()
        result = None
        try:
            result = self.app(environ, start)
            return self.response(request, start, result, body_file)
        except Exception:
            log.exception("WSGI app failed on %s %s", request.method, request.target)
            close_quietly(result, body_file)
            return html_error(500, REASONS[500])

    # -- the environ -----------------------------------------------------------------------

    def environ(self, request: Request, body_file: Any) -> dict[str, Any]:
        env = self.base.copy()
        path = request.path
        if "%" in path:
            path = percent_decode(path).decode("latin-1")  # ValueError on a bad escape
        script = self.script_name
        if script and (path == script or path.startswith(script + "/")):
            path = path[len(script):]
        env["wsgi.url_scheme"] = request.scheme
        env["REQUEST_METHOD"] = request.method
        env["PATH_INFO"] = path
        env["QUERY_STRING"] = request.query
        env["RAW_URI"] = env["REQUEST_URI"] = request.target
        env["SERVER_PROTOCOL"] = request.version
        env["REMOTE_ADDR"], port = request.client
        env["REMOTE_PORT"] = str(port)
        keys = self.header_keys
        for name, value in request.headers.items():
            key = keys.get(name)
            if key is None:
                key = self.header_key(name)
            if key:
                env[key] = value
        host = request.host
        if host:
            env["HTTP_HOST"] = host
            name, port = self.hosts.get(host) or self.split_host(host)
            env["SERVER_NAME"] = name
            env["SERVER_PORT"] = port or ("443" if request.scheme == "https" else "80")
        else:
            env["SERVER_NAME"], env["SERVER_PORT"] = self.server
        if body_file is not None:
            env["CONTENT_LENGTH"] = str(os.fstat(body_file.fileno()).st_size)
            env["wsgi.input"] = body_file
        else:
            body = request.body
            if body or request.has_body or "content-length" in request.headers:
                env["CONTENT_LENGTH"] = str(len(body))
            env["wsgi.input"] = io.BytesIO(body)
        return env

    def header_key(self, name: str) -> str:
        """HTTP_* for a field name; "" to drop it.

        A name with "_" is dropped (as nginx and gunicorn do): it would read like the same
        name with "-", so a client could pass off its field as one set by a proxy.
        """
        key = "" if "_" in name else "HTTP_" + name.upper().replace("-", "_")
        if len(self.header_keys) < MAX_HEADER_KEYS:
            self.header_keys[name] = key
        return key

    def split_host(self, host: str) -> tuple[str, str]:
        """(name, port) of a Host value; the port is "" when the value has none."""
        if host.endswith("]") or ":" not in host:
            parsed = (host, "")
        else:
            name, _, port = host.rpartition(":")
            parsed = (name, port)
        if len(self.hosts) < MAX_HEADER_KEYS:
            self.hosts[host] = parsed
        return parsed

    # -- the response ----------------------------------------------------------------------

    def response(self, request: Request, start: StartResponse, result: Any,
                 body_file: Any) -> Response:
        """What the app returned, as a Response: complete, a file, or a stream."""
        if type(result) is FileWrapper:
            response = self.file_response(request, start, result, body_file)
            if response is not None:
                return response
        complete = type(result) is list or type(result) is tuple
        if complete:
            pieces = list(result)
            rest: Any = None
        else:
            rest = iter(result)
            pieces = []
            for chunk in rest:  # the head waits for the first non-empty piece (PEP 3333)
                if chunk:
                    pieces.append(chunk)
                    break
            else:
                complete = True
        head = self.head(start)
        if start.written:
            pieces[:0] = start.written
        for piece in pieces:
            if type(piece) is not bytes:
                raise TypeError(f"the WSGI app gave {type(piece).__name__}, not bytes")
        status = head.status
        head_only = request.method == "HEAD"
        length = head.length
        if complete or status in (204, 304) or (length is not None and not head_only and
                                                  sum(map(len, pieces)) >= length):
            close_quietly(result, body_file)
            body = b"".join(pieces) if len(pieces) != 1 else pieces[0]
            if status in (204, 304):
                body = b""
            elif length is not None and len(body) > length:
                body = body[:length]  # never more than the app announced
            response = Response(status, body)
            response.raw = head.raw
            response.close = head.close
            if head_only and length is not None:
                response.length = length  # HEAD: the length GET would have
            elif head_only and not body:
                response.stream = AppBody([], (), None, None)  # length unknown: say so
                response.length = None
            return response
        start.head_sent = True
        response = Response(status)
        response.raw = head.raw
        response.close = head.close
        response.length = length
        response.stream = AppBody(pieces, rest, result, body_file)
        return response

    def head(self, start: StartResponse) -> Head:
        """The checked head, remembered per (status, fields): checking costs more than a lookup."""
        try:
            key = (start.status, tuple(start.headers))
            head = self.heads.get(key)
        except TypeError:  # an unhashable value: Head() says what is wrong with it
            return Head(start)
        if head is None:
            head = Head(start)
            if len(self.heads) >= MAX_HEADS:
                self.heads.clear()
            self.heads[key] = head
        return head

    def file_response(self, request: Request, start: StartResponse, wrapper: FileWrapper,
                      body_file: Any) -> Response | None:
        """A file_wrapper over a regular file goes out by sendfile, from its position."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            st = os.fstat(fd)
            position = filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        if not stat.S_ISREG(st.st_mode) or start.written:
            return None
        head = self.head(start)
        if head.status in (204, 304):
            return None
        available = max(st.st_size - position, 0)
        length = available if head.length is None else min(head.length, available)
        response = Response(head.status)
        response.raw = head.raw
        response.close = head.close or (head.length is not None and head.length > available)
        response.set_file(wrapper, position, length)  # the worker calls close() when done
        if body_file is not None:
            body_file.close()
        if request.method == "HEAD" and head.length is not None:
            response.length = head.length
        return response


class WsgiSite:
    """The worker's Application when a WSGI app is hosted.

    A path claimed by an enabled built-in app goes to it; else a GET or HEAD for an existing
    file under the document root is served as a file; everything else goes to the WSGI app.
    """

    def __init__(self, bridge: WsgiBridge, dispatcher: Any, static: StaticFiles | None,
                 settings: dict[str, Any]) -> None:
        self.bridge = bridge
        self.dispatcher = dispatcher
        self.static = static
        self.max_body = settings["max_body_size"]
        self.misses: dict[str, float] = {}  # paths known not to be files, and when

    def preflight(self, request: Request) -> Response | int:
        if self.dispatcher is not None and self.dispatcher.resolve(request) is not None:
            return self.dispatcher.preflight(request)
        return self.max_body

    def handle(self, request: Request) -> Response:
        if self.dispatcher is not None:
            target = self.dispatcher.routed.get(request) or self.dispatcher.resolve(request)
            if target is not None:
                self.dispatcher.routed[request] = target
                return self.dispatcher.handle(request)
        if self.static is not None and (request.method == "GET" or request.method == "HEAD"):
            response = self.static_file(request)
            if response is not None:
                return response
        return self.bridge.handle(request)

    def error(self, status: int, message: str, request: Request | None) -> Response:
        if self.dispatcher is not None:
            return self.dispatcher.error(status, message, request)
        return html_error(status, REASONS.get(status, "Error"))

    def static_file(self, request: Request) -> Response | None:
        """The static answer when the path names a file (or a refusal); None for the app."""
        path = request.path
        now = time.monotonic()
        missed = self.misses.get(path)
        if missed is not None and now - missed <= RESOLVE_TTL:
            return None
        static = self.static
        entry = static.resolved.get(path)
        if entry is None or now - entry.checked > RESOLVE_TTL:
            try:
                entry = static.resolve(path, now)
            except NotServed as refusal:
                if refusal.status == 403:  # a path that leads out of the root
                    return html_error(403, REASONS[403])
                entry = None
        if entry is None or entry.redirect is not None:  # directories belong to the app
            if len(self.misses) >= MAX_MISSES:
                self.misses.clear()
            self.misses[path] = now
            return None
        return static.handle(request.method, path, request.query, request.headers)
