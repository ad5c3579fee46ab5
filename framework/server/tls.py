"""TLS with the standard library's ``ssl``: the server context, and a socket the worker's
epoll loop can drive like a plain one. Imported only when ``certfile`` is set."""
from __future__ import annotations

import select
import socket
import ssl
from typing import Any

from framework.server.listeners import PlainHttpError

VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
TLS_SEND = 65536  # plaintext bytes per SSL_write: a few records, and a bounded retry buffer


class TlsLayer:
    """The server's context (certificate, key, client CAs, versions, ALPN) and the
    non-blocking handshake."""

    def __init__(self, settings: dict[str, Any]) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = VERSIONS[settings["tls_min_version"]]
        context.set_alpn_protocols(["http/1.1"])
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        context.sslsocket_class = TlsSocket
        try:
            context.load_cert_chain(settings["certfile"], settings["keyfile"] or None,
                                    password=no_password)
            if settings["ca_certs"]:
                context.load_verify_locations(settings["ca_certs"])
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError, TypeError) as exc:
            detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise ValueError(f"cannot use the TLS certificate or key: {detail}") from None
        self.context = context

    def wrap(self, sock: socket.socket) -> TlsSocket:
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    @staticmethod
    def handshake(sock: TlsSocket) -> int:
        """Advance the handshake: 0 once done, else the epoll event to wait for. Raises
        PlainHttpError for an HTTP request line, OSError (ssl.SSLError) for anything else
        that is not a TLS client."""
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            return select.EPOLLIN
        except ssl.SSLWantWriteError:
            return select.EPOLLOUT
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":  # OpenSSL saw "GET ", "POST"... for a record
                raise PlainHttpError("plain HTTP on a TLS port") from None
            raise
        return 0


def no_password() -> str:
    raise TypeError("the key is encrypted; give an unencrypted keyfile")


class TlsSocket(ssl.SSLSocket):
    """An SSLSocket that reads like a non-blocking plain socket to the worker.

    "Would block" in either direction is BlockingIOError. recv reads every record available
    and always drains what OpenSSL already decrypted and buffered (``pending()``): epoll
    cannot see those bytes, so pipelined requests would otherwise wait for the next packet.
    A write is at most TLS_SEND bytes from the front of the buffer given, so a write retried
    after "would block" passes the same bytes again, as OpenSSL requires; flags (MSG_MORE)
    are dropped, and ``sendmsg`` sends the first buffer only (SSLSocket has no writev).
    """

    def recv(self, size: int = 1024, flags: int = 0) -> bytes:
        try:
            data = super().recv(size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None
        # one SSL_read gives one record (16 KiB at most): read on while records are there,
        # and past ``size`` while OpenSSL holds decrypted bytes (pending()): epoll cannot see
        # those, so a read that left them would stall the connection
        pieces = [data]
        got = len(data)
        while data:
            want = size - got if got < size else self.pending()
            if not want:
                break
            try:
                data = super().recv(want)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            pieces.append(data)
            got += len(data)
        return b"".join(pieces) if len(pieces) > 1 else pieces[0]

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            # a slice, not a view: the worker may resize a bytearray it passed once we return
            return super().send(data if len(data) <= TLS_SEND else data[:TLS_SEND])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None
                ) -> int:
        return self.send(buffers[0])
