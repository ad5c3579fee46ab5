"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), sans-IO: bytes in, a result out.

A load balancer (HAProxy ``send-proxy``/``send-proxy-v2``, AWS NLB) writes this header first on
each connection it opens to us, naming the client it accepted. ``parse`` returns None while
every byte given may still be part of a header, so the caller can consume exactly the header
and leave what follows (an HTTP request, a TLS ClientHello) in the socket.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (spec §2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/transport, length
V2_LOCAL, V2_PROXY = 0x20, 0x21
# family/transport byte -> address block size and the address length (spec §2.2)
V2_FAMILIES = {0x11: (12, 4), 0x12: (12, 4), 0x21: (36, 16), 0x22: (36, 16),
               0x31: (216, 0), 0x32: (216, 0), 0x00: (0, 0)}
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01


class ProxyError(ValueError):
    """Not a valid PROXY header: the connection is closed."""


class ProxyHeader(NamedTuple):
    client: tuple[str, int] | None  # None: keep the socket's peer (LOCAL, UNKNOWN, unix)
    consumed: int  # bytes of the header
    tls: bool  # v2 SSL TLV: the client spoke TLS to the proxy
    tlvs: dict[int, bytes]  # v2 type -> value (ALPN 0x01, AUTHORITY 0x02, AWS 0xEA, ...)


def parse(buf: bytes) -> ProxyHeader | None:
    """The header at the start of ``buf``; None when more bytes are needed; ProxyError when
    ``buf`` cannot start with one."""
    if buf[:12] == V2_SIGNATURE[:len(buf)]:
        return parse_v2(buf) if len(buf) >= len(V2_SIGNATURE) else None
    if buf[:6] == V1_PREFIX[:len(buf)]:
        return parse_v1(buf) if len(buf) >= len(V1_PREFIX) else None
    raise ProxyError("no PROXY protocol header")


def parse_v1(buf: bytes) -> ProxyHeader | None:
    end = buf.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buf) >= V1_MAX or b"\n" in buf[:V1_MAX]:
            raise ProxyError("PROXY v1 line too long or not ended by CRLF")
        return None
    words = buf[:end].split(b" ")
    if words[1:2] == [b"UNKNOWN"]:
        return ProxyHeader(None, end + 2, False, {})  # spec: the receiver ignores the rest of the line
    if len(words) != 6 or words[1] not in (b"TCP4", b"TCP6"):
        raise ProxyError("malformed PROXY v1 line")
    try:
        source = ipaddress.ip_address(words[2].decode("ascii"))
        ipaddress.ip_address(words[3].decode("ascii"))
        ports = [port_number(word) for word in words[4:6]]
    except (UnicodeDecodeError, ValueError):
        raise ProxyError("malformed PROXY v1 address or port") from None
    if source.version != (4 if words[1] == b"TCP4" else 6):
        raise ProxyError("PROXY v1 address does not match its protocol")
    return ProxyHeader((str(source), ports[0]), end + 2, False, {})


def port_number(word: bytes) -> int:
    # spec: decimal, no leading zero, 0..65535
    if not word.isdigit() or (len(word) > 1 and word[0] == 0x30) or int(word) > 65535:
        raise ValueError(word)
    return int(word)


def parse_v2(buf: bytes) -> ProxyHeader | None:
    if len(buf) < V2_FIXED:
        return None
    command, family, length = struct.unpack_from("!BBH", buf, 12)
    if command not in (V2_LOCAL, V2_PROXY):
        raise ProxyError("unsupported PROXY v2 version or command")
    if family not in V2_FAMILIES:
        raise ProxyError("unsupported PROXY v2 address family")
    if len(buf) < V2_FIXED + length:
        return None
    block, size = V2_FAMILIES[family]
    if length < block:
        raise ProxyError("PROXY v2 address block truncated")
    body = bytes(buf[V2_FIXED:V2_FIXED + length])
    tlvs = parse_tlvs(body[block:])
    tls = PP2_TYPE_SSL in tlvs and bool(tlvs[PP2_TYPE_SSL][:1]) \
        and tlvs[PP2_TYPE_SSL][0] & PP2_CLIENT_SSL != 0
    client = None
    if command == V2_PROXY and size:
        address = ipaddress.ip_address(body[:size])
        port = struct.unpack_from("!H", body, 2 * size)[0]
        client = (str(address), port)
    return ProxyHeader(client, V2_FIXED + length, tls, tlvs)


def parse_tlvs(data: bytes) -> dict[int, bytes]:
    """Type-length-value records after the addresses (spec §2.2.7); the last of a type wins."""
    tlvs = {}
    at = 0
    while at < len(data):
        if len(data) - at < 3:
            raise ProxyError("PROXY v2 TLV truncated")
        kind, size = struct.unpack_from("!BH", data, at)
        if at + 3 + size > len(data):
            raise ProxyError("PROXY v2 TLV longer than the header")
        tlvs[kind] = data[at + 3:at + 3 + size]
        at += 3 + size
    return tlvs
