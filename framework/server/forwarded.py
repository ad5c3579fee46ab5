"""What a trusted proxy says about the client: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

Sans-IO: headers in, the client address, scheme and host out. Only a peer listed in
``forwarded_allow_ips`` is asked; every value is validated before it is used, and one that
does not parse is ignored (the connection's own values stay).
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import NamedTuple

from framework.server.protocol import HOST_VALUE

HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
SCHEMES = ("http", "https")
# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string
PAIR = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,\s"]*)\s*')


class Origin(NamedTuple):
    """The client as the proxy saw it; None where the proxy said nothing usable."""

    client: str | None
    port: int
    scheme: str | None
    host: str | None


class TrustedPeers:
    """``forwarded_allow_ips``: addresses and CIDR networks, or ``*`` for every peer."""

    def __init__(self, entries: list[str]) -> None:
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(entry, strict=False)
                         for entry in entries if entry != "*"]
        self.trusts = lru_cache(maxsize=1024)(self.check)

    def check(self, address: str) -> bool:
        if self.everyone:
            return True
        if address in ("-", ""):
            return True  # a unix-socket peer is a process on this machine
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def parse_entries(entries: list[str]) -> list[str]:
    """ValueError naming the first entry that is neither an address, a network nor ``*``."""
    for entry in entries:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"forwarded_allow_ips: {entry!r} is not an address or "
                                 f"network") from None
    return entries


def resolve(headers: dict[str, str], peers: TrustedPeers) -> Origin | None:
    """The origin a trusted proxy reported, or None when it reported nothing.

    ``Forwarded`` wins over the ``X-Forwarded-*`` fields when both are present. In a chain of
    proxies the client is the rightmost address that is not itself a trusted proxy (nginx's
    ``real_ip_recursive``), so a client cannot pass off a forged leftmost entry.
    """
    if "forwarded" in headers:
        return from_forwarded(headers["forwarded"], peers)
    client, port = None, 0
    if "x-forwarded-for" in headers:
        hops = [hop.strip() for hop in headers["x-forwarded-for"].split(",")]
        hop = pick_hop(hops, peers)
        if hop is not None:
            client, port = node(hop)
    proto = headers.get("x-forwarded-proto")
    host = headers.get("x-forwarded-host")
    return Origin(client, port,
                  scheme_of(proto.split(",")[0]) if proto else None,
                  host_of(host.split(",")[0]) if host else None)


def from_forwarded(value: str, peers: TrustedPeers) -> Origin | None:
    elements = []
    for text in value.split(","):
        pairs = {}
        for part in text.split(";"):
            match = PAIR.fullmatch(part)
            if match is None:
                return None  # not RFC 7239: use none of it
            name, raw = match.groups()
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            pairs[name.lower()] = raw
        elements.append(pairs)
    fors = [element.get("for", "") for element in elements]
    chosen = pick_hop(fors, peers)
    element = elements[fors.index(chosen) if chosen is not None else -1]
    client, port = node(chosen) if chosen is not None else (None, 0)
    return Origin(client, port, scheme_of(element.get("proto", "")),
                  host_of(element.get("host", "")))


def pick_hop(hops: list[str], peers: TrustedPeers) -> str | None:
    """The rightmost hop that is not a trusted proxy (else the leftmost); None if it does not
    parse as an address."""
    for index in range(len(hops) - 1, -1, -1):
        address = node(hops[index])[0]
        if address is None:
            return None
        if index == 0 or not peers.trusts(address):
            return hops[index]
    return None


def node(text: str) -> tuple[str | None, int]:
    """RFC 7239 §6 node: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]``, ``[::1]:80`` (and a
    bare IPv6 address, as X-Forwarded-For carries it); (None, 0) for anything else
    (``unknown``, obfuscated names)."""
    port = "0"
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                return None, 0
            port = rest[1:]
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address = text
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None, 0
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None, 0
    return str(ip), int(port)


def scheme_of(text: str) -> str | None:
    scheme = text.strip().lower()
    return scheme if scheme in SCHEMES else None


def host_of(text: str) -> str | None:
    host = text.strip()
    return host if host and host[0] != ":" and HOST_VALUE.fullmatch(host) else None
