"""Listening sockets: the ``bind`` addresses, systemd socket activation, and the TLS context.

An address is ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:/path/to.sock`` or ``fd://N`` (a
descriptor inherited already listening). With ``LISTEN_FDS``/``LISTEN_PID`` naming this
process, systemd's sockets (descriptors 3, 4, ...) are used instead of binding anything.
"""
from __future__ import annotations

import os
import socket
import stat
from typing import Any, NamedTuple

DEFER_ACCEPT_SECONDS = 5  # how long the kernel holds a silent new connection before accept
SD_LISTEN_FDS_START = 3  # sd_listen_fds(3): the first descriptor systemd passes


class Address(NamedTuple):
    kind: str  # "tcp", "unix" or "fd"
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return "unix:" + self.path
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class BindError(Exception):
    """An address that cannot be listened on; the message is one line for the operator."""


class PlainHttpError(OSError):
    """A plain HTTP request where a TLS handshake should be (answered with a plain 400)."""


def parse_address(text: str) -> Address:
    """``HOST:PORT``, ``[IPV6]:PORT``, ``unix:/path`` or ``fd://N``; ValueError otherwise."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path or "\0" in path:
            raise ValueError(f"bad unix socket address {text!r}")
        return Address("unix", path=path)
    if text.startswith("fd://"):
        number = text[5:]
        if not (number.isascii() and number.isdigit()):
            raise ValueError(f"bad descriptor address {text!r}")
        return Address("fd", fd=int(number))
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"bad address {text!r}: expected HOST:PORT, [IPV6]:PORT, "
                         f"unix:/path or fd://N")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"bad address {text!r}: brackets are for IPv6 addresses")
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"bad address {text!r}: write an IPv6 address as [ADDR]:PORT")
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    return Address("tcp", host=host, port=int(port))


def addresses(settings: dict[str, Any]) -> list[Address]:
    """What to listen on: ``bind`` when given, else ``host``:``port``."""
    if settings["bind"]:
        return [parse_address(text) for text in settings["bind"]]
    return [Address("tcp", host=settings["host"], port=settings["port"])]


def systemd_fds(environ: dict[str, str] | os._Environ) -> list[int]:
    """The descriptors systemd passed to this process (sd_listen_fds), and forget them so a
    child process does not take them for its own."""
    pid, count = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    if not (pid.isdigit() and count.isdigit()) or int(pid) != os.getpid():
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(name, None)
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)))


def open_listeners(settings: dict[str, Any], environ: Any = None
                   ) -> tuple[list[socket.socket], list[str]]:
    """Every listening socket, non-blocking: systemd's when it passed some, else one per
    address; and the unix socket files bound here (to remove at exit; inherited ones belong
    to whoever created them). Raises BindError naming the address that failed."""
    environ = os.environ if environ is None else environ
    inherited = systemd_fds(environ)
    if inherited:
        return [adopt(fd, f"systemd descriptor {fd}", settings) for fd in inherited], []
    sockets: list[socket.socket] = []
    paths: list[str] = []
    try:
        for address in addresses(settings):
            sockets.append(listen(address, settings))
            if address.kind == "unix":
                paths.append(address.path)
    except BaseException:
        close_listeners(sockets)
        remove_files(paths)
        raise
    return sockets, paths


def listen(address: Address, settings: dict[str, Any]) -> socket.socket:
    if address.kind == "fd":
        return adopt(address.fd, str(address), settings)
    try:
        if address.kind == "unix":
            return listen_unix(address.path, settings)
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tune_tcp(sock)
            sock.bind((address.host, address.port))
            sock.listen(settings["backlog"])
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def tune_tcp(sock: socket.socket) -> None:
    """Accepted sockets inherit these: no Nagle delay on the last segment of a response, and
    no wake-up for a connection until its first bytes arrive (nginx's "deferred")."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)


def listen_unix(path: str, settings: dict[str, Any]) -> socket.socket:
    """Bind a unix socket, replacing a stale socket file; refuse one a server still answers."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # nobody listens: the file a crashed server left behind
            else:
                raise OSError(98, "another server is listening on it")
            finally:
                probe.close()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, int(settings["unix_socket_mode"], 8))
        sock.listen(settings["backlog"])
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def adopt(fd: int, name: str, settings: dict[str, Any]) -> socket.socket:
    """A listening socket this process inherited (systemd, or fd://N)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"cannot use {name}: {exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                               socket.SO_ACCEPTCONN):
        sock.detach()
        raise BindError(f"cannot use {name}: not a listening stream socket")
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        tune_tcp(sock)
    os.set_inheritable(fd, False)
    sock.setblocking(False)
    return sock


def describe(sock: socket.socket) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return "unix:" + (name.decode() if isinstance(name, bytes) else name)
    host, port = name[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def close_listeners(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def remove_files(paths: list[str]) -> None:
    """Remove the unix socket files we bound (at exit, or after a failed start)."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def tls_context(settings: dict[str, Any]) -> Any:
    """The server's TLS layer (``framework.server.tls.TlsLayer``) when ``certfile`` is set,
    else None; ValueError with one line when the files cannot be used.

    ``ssl`` (and OpenSSL) costs every process about 4 MiB: it is imported only here, when
    TLS is configured.
    """
    if not settings["certfile"]:
        return None
    from framework.server import tls

    return tls.TlsLayer(settings)
