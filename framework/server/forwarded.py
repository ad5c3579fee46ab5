"""What a trusted proxy says about the client: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

Sans-IO: headers in, the client address, scheme and host out. Only a peer listed in
``forwarded_allow_ips`` is asked; every value is validated before it is used, and one that
does not parse is ignored (the connection's own values stay).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from typing import NamedTuple

from framework.server.protocol import HOST_VALUE

HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
SCHEMES = ("http", "https")
CACHE_ENTRIES = 4096  # resolved header values remembered per worker ...
CACHED_LENGTH = 512  # ... when their total length is at most this
MISSING = object()
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
        # the same clients come back through the same proxies: parsing (ipaddress above all)
        # costs microseconds, a lookup here a tenth of one
        self.seen: dict[tuple, Origin | None] = {}

    def parse(self, forwarded: str | None, xff: str | None, proto: str | None,
              host: str | None) -> Origin | None:
        if forwarded is not None:
            return from_forwarded(forwarded, self)
        client, port = None, 0
        if xff is not None:
            hop = pick_hop([hop.strip() for hop in xff.split(",")], self)
            if hop is not None:
                client, port = node(hop)
        return Origin(client, port,
                      scheme_of(proto.split(",")[0]) if proto else None,
                      host_of(host.split(",")[0]) if host else None)

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


# the fields through which a trusted proxy speaks for the client: ``resolve`` reads these only
FIELDS = frozenset(("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"))


def resolve(headers: dict[str, str], peers: TrustedPeers) -> Origin | None:
    """The origin a trusted proxy reported, or None when it reported nothing.

    ``Forwarded`` wins over the ``X-Forwarded-*`` fields when both are present. In a chain of
    proxies the client is the rightmost address that is not itself a trusted proxy (nginx's
    ``real_ip_recursive``), so a client cannot pass off a forged leftmost entry.
    """
    get = headers.get
    key = (get("forwarded"), get("x-forwarded-for"), get("x-forwarded-proto"),
           get("x-forwarded-host"))
    origin = peers.seen.get(key, MISSING)
    if origin is MISSING:
        origin = peers.parse(*key)
        # bounded: short values only (a client can make its X-Forwarded-For long), and
        # forgotten all at once when full
        if sum(len(value) for value in key if value) <= CACHED_LENGTH:
            if len(peers.seen) >= CACHE_ENTRIES:
                peers.seen.clear()
            peers.seen[key] = origin
    return origin


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
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:  # inet_pton is strict (no leading zeros, no scope) and 40 times faster than ipaddress
        packed = socket.inet_pton(family, address)
    except OSError:
        return None, 0
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None, 0
    # IPv6 in its canonical form (RFC 5952), as the socket layer writes peers
    return (socket.inet_ntop(family, packed) if family == socket.AF_INET6 else address), \
        int(port)


def scheme_of(text: str) -> str | None:
    scheme = text.strip().lower()
    return scheme if scheme in SCHEMES else None


def host_of(text: str) -> str | None:
    host = text.strip()
    return host if host and host[0] != ":" and HOST_VALUE.fullmatch(host) else None
