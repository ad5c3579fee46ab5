"""A worker process: one epoll loop over the shared listening socket and its connections.

The loop owns sockets and time; HTTP framing belongs to ``protocol`` and what to answer to
the ``Application`` (handlers/). Each connection is a small state object: a read buffer, the
request whose body is being read, an outgoing queue, and one deadline that the once-a-second
sweep enforces (head, body, keep-alive and send timeouts), so a slow client costs one
descriptor and never a worker.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import select
import signal
import socket
import tempfile
import time
from collections import deque
from typing import Any

from framework.server import forwarded, heartbeat, proxy_protocol
from framework.server.contract import Application
from framework.server.forwarded import FIELDS as FORWARDING
from framework.server.listeners import PlainHttpError
from framework.server.log import AccessLog, reopen_error_log
from framework.server.messages import Response, http_date
from framework.server.metrics import CONTENT_TYPE
from framework.server.protocol import (
    ChunkedDecoder,
    HttpError,
    Limits,
    Request,
    UnsafeHeader,
    parse_head,
    response_head,
    serialize_fields,
)

log = logging.getLogger("httpd.worker")

SERVER_NAME = "httpd.py"
RECV_SIZE = 65536
BODY_RECV_SIZE = 262144
OUT_HIGH_WATER = 256 * 1024  # stop answering pipelined requests until this much is sent
LINGER_SECONDS = 2.0
RECLAIM_BATCH = 16  # idle keep-alive connections closed at once when the cap is reached
COPY_LIMIT = 16384  # bodies up to this size are copied next to their head; larger go by writev
MAX_BUFFERS = 64  # byte strings per sendmsg
MSG_MORE = socket.MSG_MORE
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
READABLE = EPOLLIN | select.EPOLLHUP | select.EPOLLERR
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEADS_KEPT = 512  # response heads remembered within one second
STREAM_SLICE = 256 * 1024  # streamed body bytes sent per loop pass, so others get their turn
LAST_CHUNK = b"0\r\n\r\n"

# connection states; the last three only before HTTP starts, while in ``Worker.preludes``
IDLE, HEAD, BODY, CLOSING, PROXY_HEADER, TLS_START, HANDSHAKE = 0, 1, 2, 3, 4, 5, 6
PROXY_PEEK = 4096  # bytes looked at per read of a PROXY header
TLS_FILE_CHUNK = 65536  # file bytes read per send over TLS, which cannot sendfile
PLAIN_TO_TLS = "The plain HTTP request was sent to HTTPS port"  # nginx's words
# how to close after the last answer
CLOSE_NOW, LINGER = 1, 2


class Connection:
    __slots__ = ("sock", "fd", "client", "inbuf", "out", "outbuf", "state", "deadline",
                 "request", "remaining", "decoder", "spool", "body_parts", "close_after",
                 "events", "port", "peer", "scheme", "trusted", "origin", "started")

    def __init__(self, sock: socket.socket, client: str, port: int = 0) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.client = client
        self.port = port  # the client's port
        self.peer = (client, port)  # what each request's ``client`` starts as
        self.inbuf = bytearray()
        self.out: deque[Any] = deque()  # bytes, or [file, offset, remaining] for sendfile
        self.outbuf = bytearray()  # responses not yet moved to ``out``
        self.state = IDLE
        self.deadline = 0.0
        self.request: Request | None = None
        self.remaining = 0
        self.decoder: ChunkedDecoder | None = None
        self.spool: Any = None
        self.body_parts: list[bytes] = []
        self.close_after = 0  # CLOSE_NOW or LINGER once the last answer is sent
        self.events = EPOLLIN
        self.scheme = "http"
        self.trusted = False  # the peer may say who the client is (forwarded_allow_ips)
        self.origin = False  # scheme or client may differ from the defaults: see resolve_origin
        self.started = 0.0  # when the current request's first bytes arrived (monotonic)


class Stream:
    """A response body pulled from an iterator as the socket drains, framed on the way out.

    With a known ``length`` it is cut at that length (and ending short of it aborts the
    connection); ``chunked`` frames each piece as one chunk. The iterator's ``close()``, if it
    has one, is called exactly once: at the end, on an error, or when the connection closes.
    """

    __slots__ = ("body", "chunked", "done", "pending", "pieces", "remaining")

    def __init__(self, body: Any, chunked: bool, length: int | None) -> None:
        self.body = body
        self.pieces = filter(None, body)  # empty strings carry nothing (and would end a chunked body)
        self.chunked = chunked
        self.remaining = length
        self.pending: Any = b""
        self.done = False

    def next_piece(self) -> bytes:
        """The next bytes to send, framed; b"" once the whole body was given."""
        if self.done:
            return b""
        piece = next(self.pieces, b"")
        if self.remaining is not None:
            if len(piece) >= self.remaining:
                piece = piece[:self.remaining]
                self.done = True
            elif not piece:
                raise OSError("the body ended before its Content-Length")
            self.remaining -= len(piece)
            return piece
        if not piece:
            self.done = True
            return LAST_CHUNK if self.chunked else b""
        return b"%x\r\n%s\r\n" % (len(piece), piece) if self.chunked else piece

    def close(self) -> None:
        body, self.body = self.body, None
        close = getattr(body, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing a streamed response body failed")


def deadline_of(conn: Connection) -> float:
    return conn.deadline


class Worker:
    def __init__(self, listeners: list[socket.socket] | socket.socket, app: Application,
                 settings: dict[str, Any], heartbeat_fd: int, master_pid: int,
                 tls: Any = None, metrics: Any = None) -> None:
        if isinstance(listeners, socket.socket):
            listeners = [listeners]
        self.listeners = {sock.fileno(): sock for sock in listeners}
        self.tls = tls  # a framework.server.tls.TlsLayer when certfile is set
        self.proxy_protocol = settings["proxy_protocol"]
        # connections in a TLS handshake or before their PROXY header, by descriptor
        self.preludes: dict[int, Connection] = {}
        self.peers = forwarded.TrustedPeers(settings["forwarded_allow_ips"])
        self.app = app
        self.s = settings
        self.heartbeat_fd = heartbeat_fd
        self.master_pid = master_pid
        self.limits = Limits(settings["max_request_line"], settings["max_header_size"],
                             settings["max_header_count"])
        self.spool_size = settings["body_spool_size"]
        self.header_timeout = settings["header_timeout"]  # read per request: kept at hand
        self.keepalive_timeout = settings["keepalive_timeout"]
        self.access = AccessLog(settings["access_log"], settings["access_log_format"])
        self.metrics = metrics  # a WorkerMetrics, or None
        self.metrics_path = settings["metrics_path"] if metrics is not None else None
        self.metrics_allow = set(settings["metrics_allow_ips"])
        # counts down to 0 (retire) once per answer; never reaches 0 when max_requests is 0
        self.answers_left = settings["max_requests"] + random.randint(
            0, settings["max_requests_jitter"]) if settings["max_requests"] else -1
        self.conns: dict[int, Connection] = {}
        self.epoll = select.epoll()
        self.accepting = False
        self.stopping = False
        self.stop_deadline = 0.0
        self.signals: list[int] = []
        self.now = time.monotonic()
        self.date = b""  # the Date and Server fields, renewed as the wall clock's second turns
        self.heads: dict[tuple, bytes] = {}  # response heads of this second (remember_head)
        self.date_expires = 0.0  # (monotonic) when ``date`` is a second old
        self.renew_date(self.now)
        self.next_tick = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        heartbeat.install(self.heartbeat_fd)
        self.setup_signals()
        for listener in self.listeners.values():
            listener.setblocking(False)
        self.start_accepting()
        heartbeat.beat()  # the master takes the first beat as "serving" (for USR2)
        try:
            self.loop()
        finally:
            self.access.flush()
            for conn in list(self.conns.values()):
                self.close(conn)

    def setup_signals(self) -> None:
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_fd = rfd
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self.note_signal)
        signal.signal(signal.SIGUSR1, self.note_signal)  # reopen the log files (logrotate)
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR2,
                    signal.SIGWINCH):
            signal.signal(sig, signal.SIG_IGN)  # the master's business
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.epoll.register(rfd, EPOLLIN)

    def note_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def start_accepting(self) -> None:
        if not self.accepting and not self.stopping:
            for fd in self.listeners:
                self.epoll.register(fd, EPOLLIN | select.EPOLLEXCLUSIVE)
            self.accepting = True

    def stop_accepting(self) -> None:
        if self.accepting:
            for fd in self.listeners:
                self.epoll.unregister(fd)
            self.accepting = False

    def begin_graceful_stop(self, close_idle: bool = True) -> None:
        """Stop accepting and finish what is open; every further answer says close.

        ``close_idle`` False (retiring after max_requests) leaves idle keep-alive
        connections until their client's next request or their keep-alive timeout, so no
        client that is about to reuse one meets a close it could not expect.
        """
        if self.stopping:
            return
        self.stop_accepting()
        # our copies of the listening sockets would keep the ports open: the kernel would
        # queue new clients that nobody accepts until we exit; closed, they are refused at once
        for listener in self.listeners.values():
            listener.close()
        self.stopping = True
        self.stop_deadline = self.now + self.s["graceful_timeout"]
        if not close_idle:
            return
        for conn in list(self.conns.values()):
            if conn.state == IDLE and not conn.out and not conn.outbuf:
                # a request may already wait in the kernel (just accepted, or sent as the
                # signal came): answer it, with Connection: close; close what stays idle
                self.on_readable(conn)
                if conn.fd in self.conns and conn.state == IDLE and not conn.out:
                    self.close(conn)

    def handle_signals(self) -> None:
        try:
            while os.read(self.wakeup_fd, 512):
                pass
        except BlockingIOError:
            pass
        while self.signals:
            signum = self.signals.pop(0)
            if signum == signal.SIGQUIT:
                raise SystemExit(0)
            if signum == signal.SIGUSR1:
                reopen_error_log()  # first: what the access log's reopening logs goes there
                self.access.reopen()
                continue
            self.begin_graceful_stop()

    # -- the loop --------------------------------------------------------------------------

    def loop(self) -> None:
        poll = self.epoll.poll
        conns = self.conns
        listeners = self.listeners
        while True:
            if self.stopping and ((not conns and not self.preludes)
                                  or self.now > self.stop_deadline):
                return
            events = poll(1.0)
            self.now = time.monotonic()
            for fd, ev in events:
                conn = conns.get(fd)
                if conn is None:
                    if fd in listeners:
                        # the listeners may have been closed earlier in this batch (a
                        # graceful stop begun by a signal or the tick): the event is stale
                        if self.accepting:
                            self.accept_all(listeners[fd])
                    elif fd == self.wakeup_fd:
                        self.handle_signals()
                    elif fd in self.preludes:
                        self.advance_prelude(self.preludes[fd])
                    continue
                if ev & EPOLLOUT:
                    self.on_writable(conn)
                    if conn.fd not in conns:
                        continue
                if ev & READABLE:
                    self.on_readable(conn)
            if self.now >= self.next_tick:
                self.tick()

    def tick(self) -> None:
        """Once a second: heartbeat, timeouts, orphan check, log flush."""
        self.next_tick = self.now + 1.0
        heartbeat.beat()
        if os.getppid() != self.master_pid:
            self.begin_graceful_stop()
        self.access.flush()
        if self.metrics is not None:
            self.metrics.set_open(len(self.conns))
        for conn in [c for c in (*self.conns.values(), *self.preludes.values())
                     if c.deadline < self.now]:
            self.close(conn)

    def accept_all(self, listener: socket.socket) -> None:
        conns = self.conns
        limit = self.s["max_connections"]
        prelude = self.tls is not None or self.proxy_protocol
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self.reclaim_idle():
                        continue
                    log.warning("accept failed: %s", exc)
                    self.stop_accepting()  # retried when a connection closes or idles
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            sock.setblocking(False)
            if isinstance(addr, tuple):
                conn = Connection(sock, addr[0], addr[1])
            else:
                conn = Connection(sock, "-")
            if prelude:
                self.start_prelude(conn)
            else:
                conn.trusted = conn.origin = self.peers.trusts(conn.client)
                conn.deadline = self.now + self.s["keepalive_timeout"]
                conns[conn.fd] = conn
                self.epoll.register(conn.fd, EPOLLIN)
                self.on_readable(conn)  # with deferred accept the request is usually here
                if not self.accepting:
                    return  # that answer retired the worker (max_requests)
            if len(conns) + len(self.preludes) >= limit and not self.reclaim_idle():
                self.stop_accepting()  # every connection is busy: wait for one to idle
                return

    def reclaim_idle(self) -> bool:
        """At the connection cap, close the oldest idle keep-alive connections.

        As nginx does ("reusing connections"): a new client matters more than an idle one,
        which may reconnect at any time. Closes up to RECLAIM_BATCH at once, so a full worker
        scans its connections once per batch of new clients, not once per accept. False when
        no connection is idle.  At most a quarter of the idle ones go in one batch.
        """
        idle = [c for c in self.conns.values()
                if c.state == IDLE and not c.out and not c.outbuf]
        if not idle:
            return False
        idle.sort(key=deadline_of)  # the idle deadline is last activity + keepalive_timeout
        for conn in idle[:min(RECLAIM_BATCH, 1 + len(idle) // 4)]:
            self.close(conn)
        return True

    def close(self, conn: Connection) -> None:
        if self.conns.pop(conn.fd, None) is None and self.preludes.pop(conn.fd, None) is None:
            return
        try:
            self.epoll.unregister(conn.fd)
        except OSError:
            pass
        for item in conn.out:
            if isinstance(item, list):
                item[0].close()
            elif type(item) is Stream:
                item.close()
        conn.out.clear()
        if conn.spool is not None:
            conn.spool.close()
        conn.sock.close()
        if not self.accepting and len(self.conns) < self.s["max_connections"]:
            self.start_accepting()

    # -- before HTTP: the PROXY header, the TLS handshake --------------------------------

    def start_prelude(self, conn: Connection) -> None:
        """A new connection that owes us a PROXY header or a TLS handshake first.

        Both are driven by epoll like everything else, under ``header_timeout``: a client
        that stalls costs one descriptor until the sweep closes it.
        """
        conn.state = PROXY_HEADER if self.proxy_protocol else TLS_START
        conn.deadline = self.now + self.s["header_timeout"]
        self.preludes[conn.fd] = conn
        self.epoll.register(conn.fd, EPOLLIN)
        self.advance_prelude(conn)

    def advance_prelude(self, conn: Connection) -> None:
        try:
            if conn.state == PROXY_HEADER:
                if not self.read_proxy_header(conn):
                    return
                conn.state = IDLE if self.tls is None else TLS_START
            if conn.state == TLS_START:
                conn.state = HANDSHAKE
                conn.sock = self.tls.wrap(conn.sock)
            if conn.state == HANDSHAKE:
                wait = self.tls.handshake(conn.sock)
                if wait:
                    self.want(conn, wait)
                    return
                conn.scheme = "https"
        except (BlockingIOError, InterruptedError):
            return
        except PlainHttpError:
            self.refuse_plain_http(conn)
            return
        except (OSError, proxy_protocol.ProxyError):
            self.close(conn)
            return
        del self.preludes[conn.fd]
        self.start_http(conn)

    def read_proxy_header(self, conn: Connection) -> bool:
        """Consume exactly the PROXY header (what follows may be a TLS ClientHello, which
        must stay in the socket); True once it was read, and the client taken from it."""
        peeked = conn.sock.recv(PROXY_PEEK, socket.MSG_PEEK)
        if not peeked:
            raise ConnectionResetError("closed before its PROXY header")
        header = proxy_protocol.parse(bytes(conn.inbuf) + peeked)
        if header is None:  # every byte seen belongs to the header: take them all
            conn.inbuf += conn.sock.recv(len(peeked))
            return False
        conn.sock.recv(header.consumed - len(conn.inbuf))
        conn.inbuf.clear()
        if header.client is not None:
            conn.client, conn.port = conn.peer = header.client
        if header.tls:
            conn.scheme = "https"  # TLS ended at the proxy
        return True

    def start_http(self, conn: Connection) -> None:
        conn.state = IDLE
        conn.deadline = self.now + self.s["keepalive_timeout"]
        conn.trusted = self.peers.trusts(conn.client)
        conn.origin = conn.trusted or conn.scheme != "http"
        self.conns[conn.fd] = conn
        self.want(conn, EPOLLIN)
        self.on_readable(conn)  # the request often came with the end of the handshake
        if self.stopping and conn.fd in self.conns and conn.state == IDLE and not conn.out:
            self.close(conn)

    def refuse_plain_http(self, conn: Connection) -> None:
        """Plain HTTP on a TLS port: a plain-text 400 (as nginx sends), then close."""
        conn.sock = socket.socket(fileno=conn.sock.detach())
        del self.preludes[conn.fd]
        self.conns[conn.fd] = conn
        self.respond(conn, None, self.app.error(400, PLAIN_TO_TLS, None), close=True)
        self.flush(conn)

    def resolve_origin(self, request: Request) -> None:
        """What a trusted proxy (a peer in ``forwarded_allow_ips``) says about the client,
        its scheme and Host, for a request that has one of the FORWARDING fields."""
        origin = forwarded.resolve(request.headers, self.peers)
        if origin is None:
            return
        if origin.client is not None:
            request.client = (origin.client, origin.port)
        if origin.scheme is not None:
            request.scheme = origin.scheme
        if origin.host is not None:
            request.host = origin.host

    # -- reading ---------------------------------------------------------------------------

    def on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(BODY_RECV_SIZE if conn.state == BODY else RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        if conn.state == CLOSING:
            return  # discarding what a client sends after an error we are answering
        conn.inbuf += data
        if conn.state == IDLE:
            conn.state = HEAD
            conn.started = now = self.now
            conn.deadline = now + self.header_timeout
        elif conn.state == BODY:
            conn.deadline = self.now + self.s["body_timeout"]
        self.process(conn)

    def process(self, conn: Connection) -> None:
        """Answer every complete request in the buffer, in order, sending in batches: when
        OUT_HIGH_WATER bytes of answers wait, or a file or stream is queued, they go out
        before the next request is read, and reading stops while they cannot."""
        while conn.inbuf and conn.state != CLOSING:  # (a body or head needs bytes to go on)
            if len(conn.outbuf) >= OUT_HIGH_WATER or conn.out:
                self.flush(conn)
                if conn.out or conn.fd not in self.conns:
                    return  # the rest waits for EPOLLOUT (on_writable), or the end
                continue
            if conn.state == BODY:
                if not self.read_body(conn):
                    break
                request = conn.request
            else:
                try:
                    parsed = parse_head(conn.inbuf, self.limits)
                except HttpError as exc:
                    self.fail(conn, exc)
                    break
                if parsed is None:
                    if not conn.inbuf:
                        self.become_idle(conn)
                    break
                request, consumed = parsed
                del conn.inbuf[:consumed]
                request.client = conn.peer
                if conn.origin:
                    request.scheme = conn.scheme
                    if conn.trusted and not FORWARDING.isdisjoint(request.headers):
                        self.resolve_origin(request)
                if request.has_body:
                    self.start_body(conn, request)
                    continue
            self.respond(conn, request)
        self.flush(conn)

    def start_body(self, conn: Connection, request: Request) -> None:
        """Check the request before its body arrives: answer it at once, or start reading."""
        try:
            verdict = self.app.preflight(request)
        except Exception:
            log.exception("preflight failed for %r", request)
            verdict = self.app.error(500, "Internal Server Error", request)
        if isinstance(verdict, Response):
            self.respond(conn, request, verdict, close=True)  # the unread body must not be
            return  # taken for the next request
        if request.content_length > verdict:
            self.respond(conn, request, self.app.error(413, "Request body too large", request),
                         close=True)
            return
        conn.request = request
        conn.state = BODY
        conn.deadline = self.now + self.s["body_timeout"]
        conn.body_parts = []
        conn.spool = None
        if request.chunked:
            conn.decoder = ChunkedDecoder(verdict)
            conn.remaining = 0
        else:
            conn.decoder = None
            conn.remaining = request.content_length
            if request.content_length > self.spool_size:
                conn.spool = tempfile.TemporaryFile()
        if request.expect_continue and not self.body_complete_in_buffer(conn):
            conn.outbuf += CONTINUE

    def body_complete_in_buffer(self, conn: Connection) -> bool:
        return conn.decoder is None and len(conn.inbuf) >= conn.remaining

    def read_body(self, conn: Connection) -> bool:
        """Move body bytes from the buffer; return True once the body is complete."""
        request = conn.request
        if conn.decoder is not None:
            try:
                parts = conn.decoder.feed(conn.inbuf)
            except HttpError as exc:
                self.fail(conn, exc)
                return False
            self.store_body(conn, parts)
            if not conn.decoder.done:
                return False
        else:
            take = min(conn.remaining, len(conn.inbuf))
            if take:
                if take == len(conn.inbuf):
                    part = bytes(conn.inbuf)
                    conn.inbuf.clear()
                else:
                    part = bytes(conn.inbuf[:take])
                    del conn.inbuf[:take]
                conn.remaining -= take
                self.store_body(conn, [part])
            if conn.remaining:
                return False
        if conn.spool is not None:
            conn.spool.seek(0)
            request.body_file = conn.spool
            conn.spool = None
        else:
            request.body = b"".join(conn.body_parts)
        conn.body_parts = []
        conn.state = HEAD
        return True

    def store_body(self, conn: Connection, parts: list[bytes]) -> None:
        if conn.spool is not None:
            for part in parts:
                conn.spool.write(part)
            return
        conn.body_parts.extend(parts)
        if conn.decoder is not None and conn.decoder.total > self.spool_size:
            conn.spool = tempfile.TemporaryFile()
            for part in conn.body_parts:
                conn.spool.write(part)
            conn.body_parts = []

    def become_idle(self, conn: Connection) -> None:
        conn.state = IDLE
        conn.deadline = self.now + self.s["keepalive_timeout"]

    # -- answering -------------------------------------------------------------------------

    def fail(self, conn: Connection, exc: HttpError) -> None:
        """Answer a framing error and close: what follows it cannot be parsed reliably."""
        request = conn.request if conn.state == BODY else None
        response = self.app.error(exc.status, exc.message, request)
        self.respond(conn, request, response, close=True)

    def respond(self, conn: Connection, request: Request | None,
                response: Response | None = None, close: bool = False) -> None:
        if response is None:
            try:
                response = self.scrape(conn, request) if request.path == self.metrics_path \
                    else self.app.handle(request)
            except Exception:
                log.exception("unhandled error answering %r", request)
                response = self.app.error(500, "Internal Server Error", request)
            finally:
                if request.body_file is not None:
                    request.body_file.close()
        try:
            fields = serialize_fields(response.headers) if response.headers else b""
        except UnsafeHeader as exc:
            log.error("%s in the answer to %r; sending 500 instead", exc, request)
            response = self.app.error(500, "Internal Server Error", request)
            fields = serialize_fields(response.headers)
        self.answers_left -= 1
        if not self.answers_left:
            log.info("served max_requests; retiring")
            self.begin_graceful_stop(close_idle=False)  # this answer, and the next on every
            # other connection, says Connection: close
        keep_alive = (request is not None and request.keep_alive and not close
                      and not response.close and not self.stopping)
        head_only = request is not None and request.method == "HEAD"
        now = time.monotonic()  # not the loop's: a handler may have run for seconds
        if now >= self.date_expires:
            self.renew_date(now)
        if response.stream is not None:
            keep_alive = self.queue_stream(conn, request, response, fields, keep_alive,
                                           head_only)
        else:
            if fields:
                conn.outbuf += response_head(response.status, response.raw, fields,
                                             self.date, response.length, keep_alive)
            else:  # most answers: a head this second may already have had
                key = (response.status, response.raw, response.length, keep_alive)
                head = self.heads.get(key)
                if head is None:
                    head = self.remember_head(key)
                conn.outbuf += head
            if response.file is not None:
                if head_only or not response.length:
                    response.file.close()
                else:
                    self.queue_outbuf(conn)
                    conn.out.extend(response.file_items())
            elif not head_only and response.body:
                if len(response.body) < COPY_LIMIT:
                    conn.outbuf += response.body
                else:  # a large body goes out beside the head (one writev), not copied
                    self.queue_outbuf(conn)
                    conn.out.append(response.body)
        # the answer is queued: log it, then wait for the next request or close
        if self.access.enabled:
            self.log_access(conn, request, response, head_only)
        if self.metrics is not None:
            self.metrics.observe(request.method if request is not None else "other",
                                 response.status, time.monotonic() - conn.started,
                                 0 if head_only else response.length or 0)
        conn.request = None
        if keep_alive:
            if not self.accepting and not self.stopping:
                self.start_accepting()  # stopped at the cap: this connection can be reclaimed
            now = self.now
            conn.started = now
            if conn.inbuf:
                conn.state = HEAD
                conn.deadline = now + self.header_timeout
            else:
                conn.state = IDLE
                conn.deadline = now + self.keepalive_timeout
        else:
            conn.state = CLOSING
            # linger only when the client may still be sending (an error, an unread body,
            # pipelined bytes); a plain "Connection: close" exchange closes at once
            conn.close_after = LINGER if close or response.close or conn.inbuf else CLOSE_NOW
            conn.deadline = self.now + self.s["send_timeout"]

    def log_access(self, conn: Connection, request: Request | None, response: Response,
                   head_only: bool) -> None:
        if not self.access.combined:
            self.access.write_atoms(conn.client, request, response,
                                    0 if head_only else response.length or 0,
                                    time.monotonic() - conn.started, time.time())
            return
        if request is None:
            line, referer, agent = "-", "", ""
        else:
            line = f"{request.method} {request.target} {request.version}"
            referer = request.headers.get("referer", "")
            agent = request.headers.get("user-agent", "")
        size = 0 if head_only else response.length
        client = conn.client if request is None else request.client[0]
        self.access.write(client, line, response.status, size, referer, agent,
                          time.time())

    def scrape(self, conn: Connection, request: Request) -> Response:
        """The metrics of every worker, for the addresses in metrics_allow_ips."""
        if conn.client not in self.metrics_allow:
            return self.app.error(403, "Forbidden", request)
        self.metrics.set_open(len(self.conns))
        return Response(200, self.metrics.shared.render(), content_type=CONTENT_TYPE)

    def queue_stream(self, conn: Connection, request: Request, response: Response,
                     fields: bytes, keep_alive: bool, head_only: bool) -> bool:
        """Queue the head of a response whose body is pulled as the socket drains; returns
        whether the connection stays open after it.

        Without a length the body goes chunked to HTTP/1.1 clients and close-delimited to
        HTTP/1.0 ones (RFC 9112 §6.3).
        """
        chunked = response.length is None and request.version == "HTTP/1.1"
        if response.length is None and not chunked:
            keep_alive = False  # the end of the body is the end of the connection
        conn.outbuf += response_head(response.status, response.raw, fields,
                                     self.date, response.length, keep_alive,
                                     chunked)
        stream = Stream(response.stream, chunked, response.length)
        if head_only:
            stream.close()
        else:
            self.queue_outbuf(conn)
            conn.out.append(stream)
        return keep_alive

    def renew_date(self, now: float) -> None:
        """Format the Date and Server fields for the current second and note when (on the
        monotonic clock, ``now`` being its reading) that second ends; the heads built with
        the old Date are forgotten. Answering checks one monotonic reading against that
        instead of formatting or comparing wall-clock seconds per answer (RFC 9110 §6.6.1:
        the time the message was generated, to the second)."""
        wall = time.time()
        second = int(wall)
        self.date = f"Date: {http_date(second)}\r\nServer: {SERVER_NAME}\r\n".encode()
        self.date_expires = now + (second + 1 - wall)
        self.heads.clear()

    def remember_head(self, key: tuple[int, bytes, int | None, bool]) -> bytes:
        """The head for (status, raw fields, length, keep-alive) with this second's Date,
        kept until the second turns: the same answer head is built once a second, not once
        per answer (at most HEADS_KEPT of them)."""
        status, raw, length, keep_alive = key
        head = response_head(status, raw, b"", self.date, length, keep_alive)
        if len(self.heads) >= HEADS_KEPT:
            self.heads.clear()
        self.heads[key] = head
        return head

    # -- writing ---------------------------------------------------------------------------

    def queue_outbuf(self, conn: Connection) -> None:
        if conn.outbuf:
            conn.out.append(bytes(conn.outbuf))
            conn.outbuf.clear()

    def flush(self, conn: Connection) -> None:
        """Send what is queued; wait for EPOLLOUT on a partial write."""
        out = conn.out
        sock = conn.sock
        outbuf = conn.outbuf
        if outbuf:
            if out:
                out.append(bytes(outbuf))
            else:  # the common case: answers in one buffer, sent without another copy
                try:
                    sent = sock.send(outbuf)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self.close(conn)
                    return
                if sent < len(outbuf):
                    out.append(bytes(outbuf[sent:]))
            outbuf.clear()
        try:
            while out:
                item = out[0]
                if isinstance(item, bytes):
                    if not self.send_buffers(sock, out):
                        break
                elif type(item) is Stream:
                    if not self.send_stream(sock, item):
                        break
                    out.popleft()
                elif self.tls is not None:
                    self.read_file_chunk(out)
                else:
                    file, offset, remaining = item
                    sent = os.sendfile(conn.fd, file.fileno(), offset, remaining)
                    if sent == 0:  # the file shrank under us: the length promised is void
                        raise OSError("file truncated while sending")
                    if sent < remaining:
                        item[1] += sent
                        item[2] -= sent
                        break
                    file.close()
                    out.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close(conn)
            return
        if out:
            conn.deadline = self.now + self.s["send_timeout"]
            self.want(conn, EPOLLOUT)
        elif conn.close_after:
            self.close_when_sent(conn)
        elif conn.events != EPOLLIN:
            self.want(conn, EPOLLIN)

    def close_when_sent(self, conn: Connection) -> None:
        """Everything was sent and the connection ends: linger, or close at once."""
        if conn.close_after == LINGER:
            self.linger(conn)
        else:
            self.close(conn)

    @staticmethod
    def read_file_chunk(out: deque) -> None:
        """TLS cannot sendfile: put the next TLS_FILE_CHUNK bytes of the file at the front
        of ``out`` as bytes, read only once the previous chunk went out (bounded memory)."""
        item = out[0]
        file, offset, remaining = item
        chunk = os.pread(file.fileno(), min(remaining, TLS_FILE_CHUNK), offset)
        if not chunk:  # the file shrank under us: the length promised is void
            raise OSError("file truncated while sending")
        item[1] += len(chunk)
        item[2] -= len(chunk)
        if not item[2]:
            file.close()
            out.popleft()
        out.appendleft(chunk)

    @staticmethod
    def send_buffers(sock: socket.socket, out: deque) -> bool:
        """Send the byte strings at the front of ``out`` in one sendmsg (writev).

        A head followed by a file is sent with MSG_MORE, so the kernel fills the first
        segment with file data instead of sending the head alone (nginx's tcp_nopush).
        Returns True when everything passed was sent.
        """
        buffers = []
        for item in out:
            if not isinstance(item, bytes) or len(buffers) == MAX_BUFFERS:
                break
            buffers.append(item)
        flags = MSG_MORE if len(buffers) < len(out) else 0
        sent = sock.sendmsg(buffers, (), flags) if len(buffers) > 1 else sock.send(buffers[0], flags)
        for item in buffers:
            if sent < len(item):
                out[0] = item[sent:]
                return False
            sent -= len(item)
            out.popleft()
        return True

    @staticmethod
    def send_stream(sock: socket.socket, stream: Stream) -> bool:
        """Send up to STREAM_SLICE bytes of a streamed body; True once all of it is sent.

        The body is pulled one piece at a time, only when the previous one was sent, so a
        generator of any size holds one piece in memory. A failing iterator aborts the
        connection: the head is out, so no error response can follow.
        """
        budget = STREAM_SLICE
        while budget > 0:
            if not stream.pending:
                try:
                    stream.pending = stream.next_piece()
                except Exception:
                    log.exception("streamed response body failed; closing the connection")
                    raise OSError("streamed body failed") from None
                if not stream.pending:
                    stream.close()
                    return True
            sent = sock.send(stream.pending)
            budget -= sent
            stream.pending = memoryview(stream.pending)[sent:] if sent < len(stream.pending) \
                else b""
            if stream.pending:
                return False
        return False

    def on_writable(self, conn: Connection) -> None:
        self.flush(conn)
        if not conn.out and conn.inbuf and conn.fd in self.conns and conn.state != CLOSING:
            self.process(conn)  # pipelined requests that waited for the queue to drain

    def want(self, conn: Connection, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self.epoll.modify(conn.fd, events)

    def linger(self, conn: Connection) -> None:
        """Half-close after the last answer and read until the client closes (or 2 s pass).

        Closing at once with unread request bytes in the kernel would send a reset, which
        can destroy the answer before the client reads it.
        """
        conn.close_after = 0
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.inbuf.clear()
        conn.deadline = self.now + LINGER_SECONDS
        self.want(conn, EPOLLIN)
