"""Where the server listens and who it believes the client is: bind addresses (TCP, IPv6, unix
sockets, inherited descriptors, systemd socket activation), TLS, the PROXY protocol, and the
Forwarded / X-Forwarded-* fields of trusted proxies.

Sans-IO parsers are tested on bytes; everything else against real server processes, with raw
sockets, ``ssl`` sockets and ``requests``. Certificates are made per run with ``openssl``.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from support import (
    HTTPD,
    ServerProcess,
    free_port,
    parse_response,
    running_server,
    wait_for,
)

from framework.server import config, forwarded, listeners, proxy_protocol
from framework.server.proxy_protocol import ProxyError, ProxyHeader

SCORE = {"client_id": 7, "phone": "79175002040", "email": "a@b.c"}
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


# -- bind addresses and settings --------------------------------------------------------------

@pytest.mark.parametrize("text, address", [
    ("127.0.0.1:8000", listeners.Address("tcp", host="127.0.0.1", port=8000)),
    ("0.0.0.0:80", listeners.Address("tcp", host="0.0.0.0", port=80)),
    ("localhost:0", listeners.Address("tcp", host="localhost", port=0)),
    ("[::1]:8443", listeners.Address("tcp", host="::1", port=8443)),
    ("[::]:80", listeners.Address("tcp", host="::", port=80)),
    ("unix:/run/httpd.sock", listeners.Address("unix", path="/run/httpd.sock")),
    ("unix:relative.sock", listeners.Address("unix", path="relative.sock")),
    ("fd://3", listeners.Address("fd", fd=3)),
])
def test_bind_addresses_parse(text: str, address: listeners.Address) -> None:
    assert listeners.parse_address(text) == address
    assert str(address) == text


@pytest.mark.parametrize("text", ["127.0.0.1", "::1:80", "[127.0.0.1]:80", "host:http",
                                  "host:70000", ":80", "unix:", "fd://", "fd://x", "[::1]",
                                  "[::1]80", "tcp://1.2.3.4:80"])
def test_bad_bind_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        listeners.parse_address(text)
    with pytest.raises(config.ConfigError):
        config.build({"apps": [], "bind": [text]}, {})


def test_repeated_b_flags_make_the_bind_list_and_replace_host_and_port() -> None:
    sys.path.insert(0, str(HTTPD.parent))
    import httpd

    args = httpd.parse_args(["-b", "127.0.0.1:9001", "-b", "unix:/tmp/x.sock", "-p", "9"])
    settings = config.build({"apps": []}, httpd.flag_values(args))
    assert settings["bind"] == ["127.0.0.1:9001", "unix:/tmp/x.sock"]
    assert [str(a) for a in listeners.addresses(settings)] == ["127.0.0.1:9001",
                                                               "unix:/tmp/x.sock"]
    settings = config.build({"apps": []}, {"host": "::1", "port": "9"})
    assert [str(a) for a in listeners.addresses(settings)] == ["[::1]:9"]
    env = config.build({"apps": []}, {}, environ={"HTTPD_BIND": "unix:/a,127.0.0.1:1"})
    assert env["bind"] == ["unix:/a", "127.0.0.1:1"]
    # a value starting with "[" is a JSON array, so an IPv6 address goes in one
    env = config.build({"apps": []}, {}, environ={"HTTPD_BIND": '["[::1]:1"]'})
    assert env["bind"] == ["[::1]:1"]


@pytest.mark.parametrize("values, error", [
    ({"unix_socket_mode": "660x"}, "unix_socket_mode"),
    ({"unix_socket_mode": "0999"}, "unix_socket_mode"),
    ({"unix_socket_mode": "01777"}, "unix_socket_mode"),
    ({"forwarded_allow_ips": ["10.0.0.0/33"]}, "forwarded_allow_ips"),
    ({"forwarded_allow_ips": ["proxy.example"]}, "forwarded_allow_ips"),
    ({"keyfile": "/k.pem"}, "need a certfile"),
    ({"tls_min_version": "SSLv3"}, "tls_min_version"),
    ({"certfile": "/nonexistent/cert.pem"}, "cannot use the TLS certificate"),
])
def test_listening_settings_are_checked(values: dict, error: str) -> None:
    with pytest.raises(config.ConfigError, match=error):
        settings = config.build({"apps": [], **values}, {})
        config.validate_paths(settings)


def test_a_unix_socket_still_answered_is_not_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "live.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    settings = config.build({"apps": [], "bind": ["unix:" + path]}, {})
    with pytest.raises(listeners.BindError, match="another server is listening"):
        listeners.open_listeners(settings, environ={})
    live.close()  # now the file is stale: it is replaced
    sockets, owned = listeners.open_listeners(settings, environ={})
    assert owned == [path]
    listeners.close_listeners(sockets)


# -- the PROXY protocol, on bytes ---------------------------------------------------------------

V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command: int, family: int, addresses: bytes, tlvs: bytes = b"") -> bytes:
    body = addresses + tlvs
    return V2 + bytes([command, family]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


IPV4 = socket.inet_pton(socket.AF_INET, "203.0.113.9") + socket.inet_pton(
    socket.AF_INET, "10.0.0.1") + struct.pack("!HH", 51000, 443)
IPV6 = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + socket.inet_pton(
    socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 40000, 80)


@pytest.mark.parametrize("data, client, consumed, tls", [
    (b"PROXY TCP4 203.0.113.9 10.0.0.1 51000 80\r\nGET", ("203.0.113.9", 51000), 42, False),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n", ("2001:db8::7", 40000), 46, False),
    (b"PROXY UNKNOWN\r\n", None, 15, False),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nGET", None, 35, False),
    (v2(0x21, 0x11, IPV4) + b"GET", ("203.0.113.9", 51000), 28, False),
    (v2(0x21, 0x21, IPV6), ("2001:db8::7", 40000), 52, False),
    (v2(0x20, 0x11, IPV4), None, 28, False),  # LOCAL: a health check by the proxy itself
    (v2(0x20, 0x00, b""), None, 16, False),
    (v2(0x21, 0x00, b""), None, 16, False),  # UNSPEC: keep the socket's address
    (v2(0x21, 0x31, b"/a".ljust(108, b"\0") + b"/b".ljust(108, b"\0")), None, 232, False),
    (v2(0x21, 0x11, IPV4, tlv(0x01, b"h2") + tlv(0x04, b"\0" * 5)
        + tlv(0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3"))), ("203.0.113.9", 51000), 59, True),
    (v2(0x21, 0x11, IPV4, tlv(0xEA, b"\x01vpce-0123")), ("203.0.113.9", 51000), 41, False),
])
def test_proxy_headers_parse(data: bytes, client: Any, consumed: int, tls: bool) -> None:
    header = proxy_protocol.parse(data)
    assert (header.client, header.consumed, header.tls) == (client, consumed, tls)
    # every shorter prefix asks for more bytes: the header is never taken half-read
    for end in range(header.consumed):
        assert proxy_protocol.parse(data[:end]) is None


def test_proxy_v2_tlvs_are_returned() -> None:
    header = proxy_protocol.parse(v2(0x21, 0x11, IPV4, tlv(0x02, b"example.com")
                                     + tlv(0xEA, b"\x01vpce-1")))
    assert header.tlvs == {0x02: b"example.com", 0xEA: b"\x01vpce-1"}
    assert header == ProxyHeader(("203.0.113.9", 51000), 16 + 12 + 14 + 10, False,
                                 header.tlvs)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
    b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY " + b"1" * 120, b"proxy TCP4",
    v2(0x22, 0x11, IPV4), v2(0x11, 0x11, IPV4), v2(0x21, 0x41, IPV4),
    v2(0x21, 0x11, IPV4[:8]), v2(0x21, 0x11, IPV4, b"\x01\x00"),
    v2(0x21, 0x11, IPV4, b"\x01\x00\x09abc"),
])
def test_bad_proxy_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProxyError):
        proxy_protocol.parse(data)


# -- Forwarded and X-Forwarded-*, on headers ---------------------------------------------------

PEERS = forwarded.TrustedPeers(["127.0.0.1", "::1", "10.0.0.0/8"])


@pytest.mark.parametrize("headers, origin", [
    ({"x-forwarded-for": "203.0.113.9"}, ("203.0.113.9", 0, None, None)),
    # the rightmost hop that is not one of our proxies: a forged leftmost entry loses
    ({"x-forwarded-for": "6.6.6.6, 203.0.113.9, 10.1.2.3"}, ("203.0.113.9", 0, None, None)),
    ({"x-forwarded-for": "10.9.9.9, 127.0.0.1"}, ("10.9.9.9", 0, None, None)),
    ({"x-forwarded-for": "2001:db8::5"}, ("2001:db8::5", 0, None, None)),
    ({"x-forwarded-for": "[2001:db8::5]:443"}, ("2001:db8::5", 443, None, None)),
    ({"x-forwarded-for": "not-an-ip"}, (None, 0, None, None)),
    ({"x-forwarded-for": "203.0.113.9, garbage"}, (None, 0, None, None)),
    ({"x-forwarded-proto": "HTTPS", "x-forwarded-host": "shop.example:8443"},
     (None, 0, "https", "shop.example:8443")),
    ({"x-forwarded-proto": "https, http"}, (None, 0, "https", None)),
    ({"x-forwarded-proto": "javascript", "x-forwarded-host": "a.example/<script>"},
     (None, 0, None, None)),
    ({"x-forwarded-host": "a.example\r\nX: y"}, (None, 0, None, None)),
    ({"x-forwarded-host": ":80"}, (None, 0, None, None)),
    ({"forwarded": 'for="[2001:db8::1]:4711";proto=https;host=example.com'},
     ("2001:db8::1", 4711, "https", "example.com")),
    ({"forwarded": "for=192.0.2.60;proto=http;by=203.0.113.43, for=10.0.0.2;proto=https"},
     ("192.0.2.60", 0, "http", None)),
    ({"forwarded": "For=198.51.100.17:8080", "x-forwarded-for": "1.1.1.1"},
     ("198.51.100.17", 8080, None, None)),
    ({"forwarded": "for=unknown;proto=https"}, (None, 0, "https", None)),
    ({"forwarded": "for=_hidden, for=198.51.100.17"}, ("198.51.100.17", 0, None, None)),
    ({"forwarded": "for"}, None),
    ({"forwarded": 'for="1.2.3.4'}, None),
])
def test_forwarded_fields_resolve(headers: dict, origin: Any) -> None:
    assert forwarded.resolve(headers, PEERS) == (None if origin is None
                                                 else forwarded.Origin(*origin))


def test_trusted_peers() -> None:
    assert PEERS.trusts("10.200.0.1") and PEERS.trusts("::1") and PEERS.trusts("-")
    assert PEERS.trusts("::ffff:127.0.0.1")
    assert not PEERS.trusts("127.0.0.2") and not PEERS.trusts("11.0.0.1")
    assert forwarded.TrustedPeers(["*"]).trusts("198.51.100.1")


# -- real servers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    base = tmp_path_factory.mktemp("tls")
    certfile, keyfile = base / "cert.pem", base / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(keyfile), "-out", str(certfile)],
                   check=True, capture_output=True)
    return {"certfile": str(certfile), "keyfile": str(keyfile)}


def client_context(cert: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert["certfile"])
    context.set_alpn_protocols(["http/1.1"])
    return context


class TlsServer(ServerProcess):
    """A ServerProcess whose readiness probe speaks TLS."""

    def __init__(self, *args: Any, cafile: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.context = ssl.create_default_context(cafile=cafile)
        self.context.set_alpn_protocols(["h2", "http/1.1"])  # the server must pick http/1.1

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    def wait_ready(self, timeout: float = 10.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(self.stderr_path.read_text()[-2000:])
            try:
                with self.tls_connect() as s:
                    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    return s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                return False
        wait_for(ready, timeout)

    def tls_connect(self, timeout: float = 5.0) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return self.context.wrap_socket(raw, server_hostname="localhost")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, docroot: Path, cert: dict[str, str]):
    work = tmp_path_factory.mktemp("tls-server")
    sock_path = work / "tls.sock"
    server = TlsServer(work, ["scores"], document_root=docroot, workers=1,
                       cafile=cert["certfile"], header_timeout=1.0, **cert)
    port = server.port
    config_data = json.loads(server.config_path.read_text())
    config_data["bind"] = [f"127.0.0.1:{port}", f"unix:{sock_path}"]
    server.config_path.write_text(json.dumps(config_data))
    server.sock_path = sock_path
    server.start()
    try:
        yield server
    finally:
        server.stop()


def read_response(sock: socket.socket, buf: bytes = b"") -> tuple[tuple, bytes]:
    """One Content-Length-framed response from ``sock``; returns it and what follows."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {buf!r}")
        buf += chunk
    status, headers, rest = parse_response(buf)
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return (status, headers, rest[:length]), rest[length:]


def test_tls_with_requests_verifies_and_serves_files(tls_server: TlsServer, docroot: Path,
                                                     cert: dict[str, str]) -> None:
    r = requests.get(tls_server.url("/"), verify=cert["certfile"], timeout=10)
    assert r.status_code == 200 and b"root index" in r.content
    # 3 MiB: past the in-memory cache, so it goes out by read+send instead of sendfile
    r = requests.get(tls_server.url("/big.bin"), verify=cert["certfile"], timeout=30)
    assert r.content == (docroot / "big.bin").read_bytes()
    r = requests.get(tls_server.url("/big.bin"), headers={"Range": "bytes=1000-2999999"},
                     verify=cert["certfile"], timeout=30)
    assert r.status_code == 206 and r.content == (docroot / "big.bin").read_bytes()[1000:3_000_000]
    r = requests.get(tls_server.url("/big.bin"), headers={"Range": "bytes=0-9,2000000-2000009"},
                     verify=cert["certfile"], timeout=30)
    data = (docroot / "big.bin").read_bytes()
    assert r.status_code == 206 and data[:10] in r.content and data[2000000:2000010] in r.content
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server.url("/"), timeout=10)  # not in the default trust store


def test_tls_absolute_urls_say_https(tls_server: TlsServer, cert: dict[str, str]) -> None:
    r = requests.post(tls_server.url("/api/scores"), json=SCORE, verify=cert["certfile"],
                      timeout=10)
    assert r.status_code == 201
    assert r.headers["Location"] == f"https://localhost:{tls_server.port}/api/scores/7"


def test_tls_raw_socket_alpn_and_pipelining(tls_server: TlsServer, docroot: Path) -> None:
    with tls_server.tls_connect() as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        # three requests in one TLS record: each must be answered without more bytes coming
        s.sendall(b"GET /dir1/ HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /medium.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
        (status, _, body), rest = read_response(s)
        assert status == 200 and body == b"<html>dir1 index</html>"
        (status, _, body), rest = read_response(s, rest)
        assert body == (docroot / "medium.bin").read_bytes()
        (status, _, body), rest = read_response(s, rest)
        assert json.loads(body) == {"status": "ok"} and rest == b""


def test_tls_many_pipelined_requests_in_separate_records(tls_server: TlsServer) -> None:
    with tls_server.tls_connect() as s:
        for _ in range(20):
            s.send(GET)  # one record each; several may sit decrypted in OpenSSL's buffer
        rest = b""
        for _ in range(20):
            (status, _, _), rest = read_response(s, rest)
            assert status == 200


def test_tls_large_request_body_in_many_records(tls_server: TlsServer,
                                                cert: dict[str, str]) -> None:
    body = b'{"client_id": 8, "pad": "' + b"x" * 900_000 + b'"}'
    r = requests.post(tls_server.url("/api/scores"), data=body, verify=cert["certfile"],
                      headers={"Content-Type": "application/json"}, timeout=20)
    assert r.status_code == 400 and "pad" in r.text  # read whole, then refused by validation


def test_mutual_tls_with_ca_certs(tmp_path: Path, cert: dict[str, str]) -> None:
    """With ca_certs a client must present a certificate those CAs signed (the throwaway
    certificate is its own CA here)."""
    server = TlsServer(tmp_path, [], workers=1, cafile=cert["certfile"],
                       ca_certs=cert["certfile"], **cert)
    server.context.load_cert_chain(cert["certfile"], cert["keyfile"])
    with running(server):
        r = requests.get(server.url("/"), verify=cert["certfile"],
                         cert=(cert["certfile"], cert["keyfile"]), timeout=10)
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(server.url("/"), verify=cert["certfile"], timeout=10)


@contextlib.contextmanager
def running(server: ServerProcess):
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_tls_over_a_unix_socket(tls_server: TlsServer) -> None:
    mode = stat.S_IMODE(os.stat(tls_server.sock_path).st_mode)
    assert mode == 0o660
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(5)
        raw.connect(str(tls_server.sock_path))
        with tls_server.context.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
            (status, _, body), _ = read_response(s)
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_plain_http_to_the_tls_port_is_answered_not_hung(tls_server: TlsServer) -> None:
    started = time.monotonic()
    answer = tls_server.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", timeout=5)
    assert time.monotonic() - started < 4
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert parse_response(answer)[1]["connection"] == "close"
    # anything else that is not TLS is closed
    assert closed_unanswered(tls_server, b"\x00" * 64)


def test_a_stalled_handshake_costs_one_descriptor_until_header_timeout(
        tls_server: TlsServer) -> None:
    stalled = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", tls_server.port), timeout=5)
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
        stalled.append(s)
    try:
        # the one worker still serves others while those wait
        with tls_server.tls_connect() as s:
            s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(s)[0][0] == 200
        started = time.monotonic()
        for s in stalled:
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""  # closed by the sweep (header_timeout = 1 s)
        assert time.monotonic() - started < 4
    finally:
        for s in stalled:
            s.close()


# -- plain binds: several addresses, unix sockets, inherited descriptors, systemd --------------

def test_several_binds_unix_socket_mode_stale_file_and_cleanup(tmp_path: Path,
                                                              docroot: Path) -> None:
    sock_path = tmp_path / "httpd.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock_path))  # a file a crashed server left behind: nobody listens on it
    stale.close()
    second = free_port()
    server = ServerProcess(tmp_path / "srv", [], document_root=docroot, workers=1,
                           unix_socket_mode="0600")
    binds = [f"127.0.0.1:{server.port}", f"unix:{sock_path}"]
    has_ipv6 = socket.has_ipv6 and ipv6_loopback()
    if has_ipv6:
        binds.append(f"[::1]:{second}")
    data = json.loads(server.config_path.read_text())
    server.config_path.write_text(json.dumps({**data, "bind": binds}))
    server.start()
    try:
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(sock_path))
            s.sendall(b"GET /dir1/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: s.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"dir1 index</html>")
        if has_ipv6:
            with socket.create_connection(("::1", second), timeout=5) as s:
                s.sendall(GET)
                assert read_response(s)[0][0] == 200
        assert server.get("/").status_code == 200
    finally:
        assert server.stop() == 0
    assert not sock_path.exists(), "the unix socket file was left behind"
    log = (tmp_path / "srv" / "access.log").read_text()
    assert '- - - [' in log and '"GET /dir1/ HTTP/1.1"' in log  # a unix client has no address


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def start_with_fds(workdir: Path, docroot: Path, argv: list[str], fds: list[int],
                   systemd: bool) -> subprocess.Popen:
    """Start httpd.py with ``fds`` inherited; with ``systemd`` they are moved to 3, 4, ... and
    LISTEN_FDS / LISTEN_PID name them, as systemd's socket activation does (the wrapper sets
    LISTEN_PID to its own pid, which execv keeps)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps({
        "apps": [], "document_root": str(docroot), "workers": 1,
        "access_log": str(workdir / "access.log")}))
    wrapper = (
        "import fcntl, os, sys\n"
        "fds = [int(f) for f in sys.argv[1].split(',')]\n"
        "if sys.argv[2] == 'systemd':\n"
        "    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]\n"
        "    for i, fd in enumerate(high):\n"
        "        os.dup2(fd, 3 + i)\n"
        "    for fd in high + [fd for fd in fds if fd >= 3 + len(fds)]:\n"
        "        os.close(fd)\n"
        "    os.environ['LISTEN_FDS'] = str(len(fds))\n"
        "    os.environ['LISTEN_PID'] = str(os.getpid())\n"
        "os.execv(sys.executable, [sys.executable] + sys.argv[3:])\n")
    with open(workdir / "stderr.log", "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", wrapper, ",".join(map(str, fds)),
             "systemd" if systemd else "plain", str(HTTPD), "-c", str(workdir / "config.json"),
             *argv], pass_fds=fds, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr)


def get_over(connect: Any) -> bytes:
    def attempt() -> bytes:
        try:
            with connect() as s:
                s.settimeout(5)
                s.sendall(b"GET /dir1/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                return b"".join(iter(lambda: s.recv(65536), b""))
        except OSError:
            return b""
    return wait_for(attempt, timeout=10)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_systemd_socket_activation(tmp_path: Path, docroot: Path) -> None:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    unix_path = str(tmp_path / "activated.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen(16)
    unused = free_port()  # -p: must not be bound, systemd's sockets replace it
    proc = start_with_fds(tmp_path / "srv", docroot, ["-p", str(unused)],
                          [tcp.fileno(), unix.fileno()], systemd=True)
    tcp.close()
    unix.close()
    try:
        answer = get_over(lambda: socket.create_connection(("127.0.0.1", port)))
        assert answer.startswith(b"HTTP/1.1 200") and b"dir1 index" in answer

        def over_unix() -> socket.socket:
            s = socket.socket(socket.AF_UNIX)
            s.connect(unix_path)
            return s
        assert get_over(over_unix).startswith(b"HTTP/1.1 200")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=2).close()
    finally:
        stop(proc)
    assert os.path.exists(unix_path), "systemd's socket file is systemd's to remove"
    assert f"listening on http://127.0.0.1:{port}" in (
        tmp_path / "srv" / "stderr.log").read_text()


def test_fd_bind_uses_an_inherited_descriptor(tmp_path: Path, docroot: Path) -> None:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    proc = start_with_fds(tmp_path / "srv", docroot, ["-b", f"fd://{tcp.fileno()}"],
                          [tcp.fileno()], systemd=False)
    tcp.close()
    try:
        answer = get_over(lambda: socket.create_connection(("127.0.0.1", port)))
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)


def test_a_bind_that_fails_names_the_address(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    (tmp_path / "c.json").write_text(json.dumps({"apps": []}))
    result = subprocess.run(
        [sys.executable, str(HTTPD), "-c", str(tmp_path / "c.json"),
         "-b", f"unix:{tmp_path}/ok.sock", "-b", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=20, check=False)
    taken.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"httpd.py: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert not (tmp_path / "ok.sock").exists()


# -- behind a proxy: Forwarded fields, the PROXY protocol ---------------------------------------

@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory):
    """Default forwarded_allow_ips: only loopback's 127.0.0.1 and ::1 are trusted."""
    with running_server(tmp_path_factory.mktemp("forwarded"), ["scores"], workers=1) as s:
        yield s


def request_from(server: ServerProcess, source: str, data: bytes) -> tuple:
    """One request from the local address ``source`` (127.0.0.2 is loopback but untrusted)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                  source_address=(source, 0)) as s:
        s.sendall(data)
        return read_response(s)[0]


def post_score(client_id: int, headers: bytes, close: bool = False) -> bytes:
    """POST /api/scores, logged with the User-Agent ``score-<client_id>``."""
    body = json.dumps({**SCORE, "client_id": client_id}).encode()
    headers += b"User-Agent: score-%d\r\n" % client_id
    if close:
        headers += b"Connection: close\r\n"
    return (b"POST /api/scores HTTP/1.1\r\nHost: api.local:8080\r\n" + headers
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def logged_client(server: ServerProcess, agent: str) -> str:
    """The client address of the access-log line whose User-Agent is ``agent`` (the log is
    flushed once a second)."""
    def find() -> str | None:
        text = server.access_log.read_text() if server.access_log.exists() else ""
        lines = [line for line in text.splitlines() if line.endswith(f'"{agent}"')]
        return lines[0].split(" ")[0] if lines else None
    return wait_for(find, timeout=5)


def test_forwarded_fields_from_a_trusted_peer_reach_urls_and_the_log(
        app_server: ServerProcess) -> None:
    status, headers, _ = request_from(app_server, "127.0.0.1", post_score(101, (
        b"X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: shop.example\r\n")))
    assert status == 201
    assert headers["location"] == "https://shop.example/api/scores/101"
    status, headers, _ = request_from(app_server, "127.0.0.1", post_score(102, (
        b'Forwarded: for="[2001:db8::9]:4711";proto=https;host="api.example:8443"\r\n'
        b"X-Forwarded-Proto: http\r\n")))
    assert headers["location"] == "https://api.example:8443/api/scores/102"
    status, _, body = request_from(app_server, "127.0.0.1", (
        b"GET /api/scores?page_size=1 HTTP/1.1\r\nHost: api.local\r\nUser-Agent: page\r\n"
        b"X-Forwarded-Proto: https\r\n\r\n"))
    assert json.loads(body)["next"] == "https://api.local/api/scores?page=2&page_size=1"
    assert logged_client(app_server, "score-101") == "203.0.113.9"
    assert logged_client(app_server, "score-102") == "2001:db8::9"
    assert logged_client(app_server, "page") == "127.0.0.1"


def test_forwarded_fields_from_an_untrusted_peer_are_ignored(app_server: ServerProcess) -> None:
    status, headers, _ = request_from(app_server, "127.0.0.2", post_score(103, (
        b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: evil.example\r\nForwarded: for=1.2.3.4;proto=https\r\n")))
    assert status == 201
    assert headers["location"] == "http://api.local:8080/api/scores/103"
    assert logged_client(app_server, "score-103") == "127.0.0.2"


def test_invalid_forwarded_values_never_reach_urls(app_server: ServerProcess) -> None:
    status, headers, _ = request_from(app_server, "127.0.0.1", post_score(104, (
        b"X-Forwarded-Proto: javascript\r\nX-Forwarded-Host: evil.example/<b>\r\n"
        b"X-Forwarded-For: <script>\r\n")))
    assert status == 201
    assert headers["location"] == "http://api.local:8080/api/scores/104"


def proxy_v1(client: str, port: int = 5555) -> bytes:
    family = b"TCP6" if ":" in client else b"TCP4"
    return b"PROXY %s %s 10.0.0.1 %d 80\r\n" % (family, client.encode(), port)


class ProxiedServer(ServerProcess):
    """A ServerProcess behind a PROXY-protocol load balancer: its probe sends a header."""

    def wait_ready(self, timeout: float = 10.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(self.stderr_path.read_text()[-2000:])
            try:
                return self.exchange(proxy_v1("127.0.0.1") + b"GET /api/ping HTTP/1.1\r\n"
                                     b"Host: t\r\nConnection: close\r\n\r\n",
                                     timeout=2).startswith(b"HTTP/1.1 200")
            except OSError:
                return False
        wait_for(ready, timeout)


@pytest.fixture(scope="module")
def lb_server(tmp_path_factory: pytest.TempPathFactory):
    server = ProxiedServer(tmp_path_factory.mktemp("lb"), ["scores"], workers=1,
                           proxy_protocol=True, forwarded_allow_ips=["192.0.2.1"],
                           header_timeout=1.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_proxy_protocol_v1_and_v2_give_the_client_address(lb_server: ProxiedServer) -> None:
    def ping(agent: str) -> bytes:
        return (b"GET /api/ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                b"User-Agent: %s\r\n\r\n" % agent.encode())
    assert lb_server.exchange(proxy_v1("203.0.113.9") + ping("v1")).startswith(b"HTTP/1.1 200")
    assert lb_server.exchange(proxy_v1("2001:db8::7") + ping("v1-6")).startswith(
        b"HTTP/1.1 200")
    header = v2(0x21, 0x11, IPV4, tlv(0xEA, b"\x01vpce-0123") + tlv(0x04, b"\0\0"))
    assert lb_server.exchange(header + ping("v2")).startswith(b"HTTP/1.1 200")
    # LOCAL: the balancer's own health check; the socket's peer is the client
    assert lb_server.exchange(v2(0x20, 0x00, b"") + ping("local")).startswith(b"HTTP/1.1 200")
    # the header and the request arriving in pieces
    with socket.create_connection(("127.0.0.1", lb_server.port), timeout=5) as s:
        for piece in (b"PROXY TCP4 198.51", b".100.7 10.0.0.1 1 80\r", b"\nGET /api/ping",
                      b" HTTP/1.1\r\nHost: t\r\nUser-Agent: pieces\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        assert read_response(s)[0][0] == 200
    assert [logged_client(lb_server, agent) for agent in ("v1", "v1-6", "v2", "local",
                                                          "pieces")] == [
        "203.0.113.9", "2001:db8::7", "203.0.113.9", "127.0.0.1", "198.51.100.7"]


def closed_unanswered(server: ServerProcess, data: bytes, timeout: float = 5.0) -> bool:
    """True when the server closes the connection without a byte of answer (a reset counts:
    closing with the client's bytes unread sends one)."""
    try:
        return server.exchange(data, timeout=timeout) == b""
    except ConnectionResetError:
        return True


def test_proxy_protocol_without_a_valid_header_is_closed(lb_server: ProxiedServer) -> None:
    assert closed_unanswered(lb_server, b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
    assert closed_unanswered(lb_server, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n")
    assert closed_unanswered(lb_server, v2(0x21, 0x11, IPV4[:6]))
    started = time.monotonic()
    assert closed_unanswered(lb_server, b"PROXY TCP4 1.2.3")  # then silence
    assert time.monotonic() - started < 4  # header_timeout


def test_proxy_protocol_client_is_what_forwarded_trust_is_checked_against(
        lb_server: ProxiedServer) -> None:
    fields = b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.50\r\n"
    status, headers, _ = parse_response(lb_server.exchange(
        proxy_v1("192.0.2.1") + post_score(201, fields, close=True)))
    assert status == 201 and headers["location"] == "https://api.local:8080/api/scores/201"
    status, headers, _ = parse_response(lb_server.exchange(
        proxy_v1("192.0.2.2") + post_score(202, fields, close=True)))
    assert status == 201 and headers["location"] == "http://api.local:8080/api/scores/202"
    # TLS ended at the balancer (v2 SSL TLV, client bit): absolute URLs say https
    header = v2(0x21, 0x11, IPV4, tlv(0x20, b"\x01\0\0\0\0"))
    status, headers, _ = parse_response(lb_server.exchange(
        header + post_score(203, b"", close=True)))
    assert headers["location"] == "https://api.local:8080/api/scores/203"


def test_proxy_protocol_in_front_of_tls(tmp_path: Path, cert: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, [], workers=1, proxy_protocol=True, **cert)
    server.wait_ready = lambda timeout=10.0: None
    server.start()
    try:
        context = client_context(cert)

        def fetch() -> bytes:
            try:
                raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            except OSError:
                return b""
            # the header and the ClientHello in one segment (corked until the kernel's 200 ms
            # timer): the server must take exactly the header and leave the ClientHello
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            raw.sendall(proxy_v1("203.0.113.77"))
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                          b"User-Agent: behind-tls\r\n\r\n")
                return b"".join(iter(lambda: s.recv(65536), b""))
        answer = wait_for(lambda: fetch_or_empty(fetch), timeout=10)
        assert answer.startswith(b"HTTP/1.1 200")
        assert logged_client(server, "behind-tls") == "203.0.113.77"
    finally:
        server.stop()


def fetch_or_empty(fetch: Any) -> bytes:
    try:
        return fetch()
    except (OSError, ssl.SSLError):
        return b""

