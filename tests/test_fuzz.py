"""Differential fuzzing of the request parser against h11 and llhttp (through httptools).

Hypothesis builds valid requests, mutates them (odd whitespace and control bytes anywhere,
case, duplicate and folded lines, Content-Length/Transfer-Encoding combinations, chunk
lines), appends a second, pipelined request, and hands the bytes to three parsers. Each
adapter answers ("reject",), ("incomplete",) or ("ok", method, target, body, consumed),
where consumed counts every byte of the first request, leading empty lines included; the
pipelined request after it makes "the body swallows the next request" visible as a
difference in bytes consumed. The test fails when

- we accept a request that both references reject (after the rewrites in ``EXEMPT``), or
- we and a reference both accept it but frame it differently (method, target, body bytes
  or bytes consumed), or one of us sees the request end where the other waits for more:
  that difference is what request smuggling through a proxy is made of.

Refusing more than the references is allowed: a request we refuse cannot be framed
differently by us. Our parser is deliberately stricter than both; seen in long runs, each
refused by us with a reason and accepted by one or both references:

- h11: bare LF line ends and obs-fold (RFC 9112 §2.2, §5.2 let a server refuse them);
  equal repeated or comma-listed Content-Length values and Content-Length together with
  Transfer-Encoding (§6.3 says to refuse or close); Transfer-Encoding on HTTP/1.0 (§6.1);
  OWS after a chunk size without an extension (`5 \\r\\n`, outside §7.1's grammar); DEL and
  control characters in fields and trailers (RFC 9110 §5.5); `HTTP/2.0` (505).
- llhttp (strict: no leniency flag is set): `Transfer-Encoding: gzip, chunked` (501 from us,
  RFC 9112 §6.1), a missing or repeated Host, a request line without a version (HTTP/0.9),
  a Content-Length of more than 18 digits even when they are leading zeros (h11 refuses it
  too; RFC 9110 §8.6 anticipates a recipient refusing a length it cannot hold).
- both: Host values and targets outside the URI grammar (`a:8x`, `a/b`, `*` for GET),
  NBSP and other non-OWS spaces in Connection, Expect values other than 100-continue (417),
  heads past our limits (414, 431).

llhttp hands a connection over after `Connection: Upgrade` with `Upgrade` (or CONNECT), so
those requests are compared with h11 only.

Bounded run (the normal suite): a fixed number of derandomized examples, so CI is stable.
Long run: ``make fuzz MINUTES=10`` (``FUZZ_MINUTES=10 pytest tests/test_fuzz.py -s``) loops
over fresh random seeds until the time is up and prints how many examples ran.
"""
from __future__ import annotations

import os
import re
import time

import h11
import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.server.protocol import (
    ChunkedDecoder,
    HttpError,
    Limits,
    Request,
    parse_head,
    parse_head_strict,
)

NEXT = b"GET /next HTTP/1.1\r\nHost: next\r\n\r\n"
BOUNDED_EXAMPLES = 2000
MINUTES = float(os.environ.get("FUZZ_MINUTES") or 0)
# no example database: a failure prints its request as bytes, and the tree stays clean
FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- the three parsers behind one shape ---------------------------------------------------

REJECT = ("reject",)
INCOMPLETE = ("incomplete",)
NOT_COMPARABLE = ("not comparable",)


def ours(raw: bytes) -> tuple:
    """framework.server.protocol as the worker drives it: parse_head, then Content-Length or chunks."""
    buf = bytearray(raw)
    try:
        parsed = parse_head(buf, Limits())
        if parsed is None:
            return INCOMPLETE
        request, head_size = parsed
        skipped = len(raw) - len(buf)  # parse_head drops leading empty lines in place
        del buf[:head_size]
        if request.chunked:
            decoder = ChunkedDecoder(1 << 64)  # the size limit (413) is not a framing rule
            before = len(buf)
            body = b"".join(decoder.feed(buf))
            if not decoder.done:
                return INCOMPLETE
            body_size = before - len(buf)
        else:
            if len(buf) < request.content_length:
                return INCOMPLETE
            body_size = request.content_length
            body = bytes(buf[:body_size])
    except HttpError:
        return REJECT
    return ("ok", request.method, request.target, body, skipped + head_size + body_size)


def by_h11(raw: bytes) -> tuple:
    # h11 stops at the end of the first request and keeps the rest as trailing_data. Its
    # default 16 KiB head limit is raised above ours so that long lines are compared too.
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 16)
    body = []
    try:
        conn.receive_data(raw)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return INCOMPLETE
            if isinstance(event, h11.Request):
                method, target = event.method.decode("latin-1"), event.target.decode("latin-1")
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                consumed = len(raw) - len(conn.trailing_data[0])
                return ("ok", method, target, b"".join(body), consumed)
    except h11.ProtocolError:
        return REJECT


class LlhttpEvents:
    """Collects one request from httptools' callbacks and stops the parser at its end."""

    def __init__(self) -> None:
        self.url = b""
        self.body: list[bytes] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(bytes(body))

    def on_message_complete(self) -> None:
        self.complete = True
        raise StopAtEnd  # leaves the next request unparsed


class StopAtEnd(Exception):
    pass


def llhttp_parse(data: bytes) -> tuple[str, LlhttpEvents, httptools.HttpRequestParser]:
    events = LlhttpEvents()
    parser = httptools.HttpRequestParser(events)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        return "upgrade", events, parser
    except httptools.HttpParserError:
        if not events.complete:
            return "reject", events, parser
    return ("ok" if events.complete else "incomplete"), events, parser


def by_llhttp(raw: bytes) -> tuple:
    outcome, events, parser = llhttp_parse(raw)
    if outcome == "upgrade":
        # Upgrade/CONNECT hands the connection over after the head: no framing to compare
        return NOT_COMPARABLE
    if outcome != "ok":
        return REJECT if outcome == "reject" else INCOMPLETE
    # llhttp reports no offset: the bytes consumed are the shortest prefix that completes
    # the request, found by bisection (a request that completes stays complete when longer)
    short, long = 0, len(raw)
    while long - short > 1:
        middle = (short + long) // 2
        if llhttp_parse(raw[:middle])[0] == "ok":
            long = middle
        else:
            short = middle
    return ("ok", parser.get_method().decode("latin-1"), events.url.decode("latin-1"),
            b"".join(events.body), long)


REFERENCES = {"h11": by_h11, "llhttp": by_llhttp}

# -- exemptions -----------------------------------------------------------------------------
# What we accept on purpose while both references refuse it. Each rewrite turns the request
# into the form the references accept and our parser treats as the same request; it only
# changes bytes inside the first request, so consumed counts shift by the length change.
# Each rewrite runs only on a request our parser accepted, so its head is well-formed.

CHUNK_SIZE_BWS = re.compile(rb"([0-9A-Fa-f]+)[ \t]+;")


def without_leading_empty_lines(raw: bytes) -> bytes:
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
    # (llhttp does; h11 refuses them).
    return raw.lstrip(b"\r\n")


def one_transfer_encoding_list(raw: bytes) -> bytes:
    # RFC 9110 §5.6.1.2: a recipient MUST ignore empty list elements (`chunked,`, an empty
    # field), and §5.3: several Transfer-Encoding fields are one list. Both references
    # refuse these; the rewrite leaves one field with the non-empty codings.
    end = raw.find(b"\r\n\r\n")
    lines = raw[:end].split(b"\r\n")
    fields = [n for n, line in enumerate(lines) if line.lower().startswith(b"transfer-encoding:")]
    if not fields:
        return raw
    codings = [coding.strip(b" \t") for n in fields for coding in lines[n][18:].split(b",")]
    lines[fields[0]] = b"Transfer-Encoding: " + b", ".join(c for c in codings if c)
    lines = [line for n, line in enumerate(lines) if n not in fields[1:]]
    return b"\r\n".join(lines) + raw[end:]


def without_bws_before_chunk_extensions(raw: bytes) -> bytes:
    # RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name ... ), so `5 ;a` is a
    # valid chunk-size line (both references refuse any space after the size). Rewritten
    # by walking the chunk lines of the body we accepted, never the data inside chunks.
    start = raw.find(b"\r\n\r\n") + 4
    out = [raw[:start]]
    pos = start
    while True:
        end = raw.find(b"\r\n", pos)
        if end < 0:
            return raw
        line = raw[pos:end]
        size_match = CHUNK_SIZE_BWS.match(line)
        if size_match:
            line = size_match.group(1) + line[size_match.end() - 1:]
        size_text = line.partition(b";")[0]
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            return raw
        size = int(size_text, 16)
        out.append(line + b"\r\n")
        pos = end + 2
        if size == 0:
            out.append(raw[pos:])
            return b"".join(out)
        out.append(raw[pos:pos + size + 2])
        pos += size + 2


EXEMPT = [without_leading_empty_lines, one_transfer_encoding_list,
          without_bws_before_chunk_extensions]


def rewritten(raw: bytes) -> bytes:
    for rewrite in EXEMPT:
        raw = rewrite(raw)
    return raw


# -- the check ------------------------------------------------------------------------------

def disagreement(raw: bytes, parse_ours=ours) -> str | None:
    """Why the three parsers' verdicts on ``raw`` are unsafe, or None when they are fine."""
    mine = parse_ours(raw)
    verdicts = {name: parse(raw) for name, parse in REFERENCES.items()}
    if mine[0] == "ok" and all(v == REJECT for v in verdicts.values()):
        canonical = rewritten(raw)
        shift = len(raw) - len(canonical)
        verdicts = {name: parse(canonical) for name, parse in REFERENCES.items()}
        verdicts = {name: v[:4] + (v[4] + shift,) if v[0] == "ok" else v
                    for name, v in verdicts.items()}
        if all(v == REJECT for v in verdicts.values()):
            return f"we accept what h11 and llhttp reject: ours={mine}"
    for name, theirs in verdicts.items():
        if mine[0] == "ok" and theirs[0] == "ok" and mine != theirs:
            return f"framing differs from {name}: ours={mine} {name}={theirs}"
        if {mine[0], theirs[0]} == {"ok", "incomplete"}:
            return f"one request ends where the other waits: ours={mine} {name}={theirs}"
    return None


# -- requests and mutations -----------------------------------------------------------------
# Strategies are built once at import: building them per example costs more than parsing.

def pick(*choices):
    return st.sampled_from(choices)


def mostly(common: list, rare: list, odds: int = 9):
    """One of ``common`` about ``odds`` times for each time one of ``rare``."""
    return st.sampled_from(common * max(1, odds * len(rare) // len(common)) + rare)


WEIRD = pick(b" ", b"\t", b"\xa0", b"\x85", b"\x0b", b"\x0c", b"\x00", b"\r", b"\n", b"\r\n",
             b"\r\n ", b"\r\n\t", b",", b";", b":", b"=", b'"', b"0", b"a", b"\x7f", b"\xff")
METHODS = mostly(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"], ["get", "FOO"])
TARGETS = mostly(["/", "/a/b?c=d", "/x#frag", "/%20", "http://example.com/p?q",
                  "HTTP://Ex.COM:80", "http://[::1]:8080/"],
                 ["*", "http://[::1/", "http://a@b/", "example.com:80", "/caf\xe9",
                  "/" + "a" * 8180, "/" + "a" * 8200])
VERSIONS = mostly(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"], ["HTTP/1.2", "HTTP/2.0", "http/1.1"])
HOSTS = mostly(["example.com", "a:80", "[::1]", "[::1]:8080", "xn--p1ai"],
               ["", "a b", "a/b", "a:8x"])
EXTRA = st.lists(mostly(
    [("Connection", "close"), ("Connection", "keep-alive"), ("Expect", "100-continue"),
     ("User-Agent", "fuzz/1.0"), ("Cookie", "a=1"), ("X-Empty", "")],
    [("Connection", "Upgrade"), ("X-Long", "v" * 8000), ("X-Huge", "w" * 40000)]), max_size=2)
TE_VALUES = mostly(["chunked", "Chunked", "CHUNKED"],
                   ["gzip, chunked", "chunked, gzip", "identity", "x-custom",
                    "chunked, chunked", ", chunked", "chunked,", "gzip,chunked",
                    "identity, chunked", "chunked;q=1"])
TE_SPREAD = pick(("gzip", "chunked"), ("chunked", "chunked"), ("chunked", "gzip"),
                 ("", "chunked"), ("identity", "chunked"), ("chunked", ""))
FRAMINGS = mostly(["none", "cl", "chunked", "chunked"], ["cl+te", "cl,cl", "te-spread"])
EXTENSION = mostly(["", ";a", ";a=b", ';a="x;y"', ";a;b=c"], [" ;a", "\t;a=b", "; a"])
HUGE_SIZE = pick("ffffffffffffffff", "10000000000000000", "7fffffffffffffff",
                 "FFFFFFFFFFFFFF", "0000000000000000000005")
TRAILERS = st.lists(mostly(["X-T: 1", "X-T:", "x-t: a\tb", "X-T: \xe9"],
                           ["X Y: z", "X-T : 1", ":v", "NoColon", " folded: x", "X-T: \x01"]),
                    max_size=2)
RARELY = mostly([False], [True])
CASE = pick(str.lower, str.upper, str.title, str, str, str)
DATA = st.binary(max_size=12)
# whitespace where the grammar has OWS, none, or only SP: around values, after sizes
SPACE = mostly(["", " "], ["\t", "  ", "\xa0", "\x85", "\x0b", "\x0c", "\x00", "\r", "\n"],
               odds=30)
SEPARATOR = mostly([" "], ["  ", "\t", "\xa0", "\x0b", "\x0c", ""], odds=30)
CHUNK = st.tuples(DATA.filter(bool), st.integers(0, 2), pick("x", "X"), SPACE, EXTENSION)
MUTATION = st.tuples(pick("insert", "insert", "insert", "replace", "delete", "case", "dup"),
                     st.booleans(), st.integers(0, 1 << 16), WEIRD)
MUTATIONS = st.lists(MUTATION, max_size=3)


@st.composite
def chunked_body(draw) -> bytes:
    lines = []
    if draw(RARELY):
        lines.append(draw(HUGE_SIZE) + "\r\n")
    for data, zeros, case, space, extension in draw(st.lists(CHUNK, max_size=3)):
        lines.append("0" * zeros + format(len(data), case) + space + extension + "\r\n")
        lines.append(data.decode("latin-1") + "\r\n")
    lines.append("0" * draw(st.integers(1, 3)) + draw(EXTENSION) + "\r\n")
    lines += [trailer + "\r\n" for trailer in draw(TRAILERS)]
    return ("".join(lines) + "\r\n").encode("latin-1")


CHUNKED_BODY = chunked_body()


@st.composite
def framed(draw) -> tuple[list[tuple[str, str]], bytes]:
    """Framing fields and the body they announce, valid or not."""
    kind = draw(FRAMINGS)
    data = draw(DATA)
    length = str(len(data))
    lengths = mostly([length, "0" + length],
                     [str(len(data) + 1), f"{length}, {length}", "+" + length,
                      "0" * 20 + length, "1" + "0" * 18, "-0"])
    if kind == "none":
        return [], b""
    if kind == "cl":
        return [("Content-Length", draw(lengths))], data
    if kind == "cl,cl":
        return [("Content-Length", length), ("Content-Length", draw(lengths))], data
    body = draw(CHUNKED_BODY)
    if kind == "te-spread":
        first, second = draw(TE_SPREAD)
        return [("Transfer-Encoding", first), ("Transfer-Encoding", second)], body
    fields = [("Transfer-Encoding", draw(TE_VALUES))]
    if kind == "cl+te":
        fields.append(("Content-Length", str(len(body))))
    return fields, body


FRAMED = framed()


@st.composite
def request(draw) -> bytes:
    line = draw(METHODS) + draw(SEPARATOR) + draw(TARGETS) + draw(SEPARATOR) + draw(VERSIONS)
    fields, body = draw(FRAMED)
    if not draw(RARELY):
        fields.append(("Host", draw(HOSTS)))
    fields += draw(EXTRA)
    fields = draw(st.permutations(fields))
    lines = [draw(CASE)(name) + ":" + draw(SPACE) + value + draw(SPACE) for name, value in fields]
    raw = ("\r\n".join([line, *lines]) + "\r\n\r\n").encode("latin-1") + body
    for mutation in draw(MUTATIONS):
        raw = mutate(raw, *mutation)
    return raw


DELIMITERS = re.compile(rb"[ \t:,;=\r\n]")


def mutate(raw: bytes, kind: str, near_delimiter: bool, at: int, weird: bytes) -> bytes:
    # half the mutations land next to a delimiter, where the grammar decides most: before
    # or after a colon, a comma, a semicolon, a space, a line end
    if near_delimiter:
        edges = [edge for match in DELIMITERS.finditer(raw) for edge in match.span()]
        at = edges[at % len(edges)]
    at %= len(raw)
    if kind == "insert":
        return raw[:at] + weird + raw[at:]
    if kind == "replace":
        return raw[:at] + weird + raw[at + 1:]
    if kind == "delete":
        return raw[:at] + raw[at + 1:]
    if kind == "case":
        return raw[:at] + raw[at:at + 1].swapcase() + raw[at + 1:]
    # the whole line again: a duplicate field, a repeated chunk line
    start = raw.rfind(b"\r\n", 0, at) + 2
    end = raw.find(b"\r\n", at)
    if end < 0:
        return raw
    return raw[:end + 2] + raw[start:end + 2] + raw[end + 2:]


REQUEST = request()


# -- the tests ------------------------------------------------------------------------------

def head_outcome(parse, raw: bytes, limits: Limits = Limits()) -> tuple:
    """Everything a head parser decides: the error, or every attribute of the request, the
    bytes consumed and what is left in the buffer."""
    buf = bytearray(raw)
    try:
        parsed = parse(buf, limits)
    except HttpError as exc:
        return ("error", exc.status, exc.message)
    if parsed is None:
        return ("incomplete", bytes(buf))
    request, consumed = parsed
    return ("ok", {name: getattr(request, name) for name in Request.__slots__
                   if name != "__weakref__"}, consumed, bytes(buf))


def paths_agree(raw: bytes) -> None:
    """parse_head's quick path for common heads decides exactly as the strict path does."""
    for limits in (Limits(), SMALL_LIMITS):
        fast, strict = head_outcome(parse_head, raw, limits), head_outcome(
            parse_head_strict, raw, limits)
        assert fast == strict, f"quick path {fast}\nstrict path {strict}\nrequest: {raw!r}"


SMALL_LIMITS = Limits(max_request_line=40, max_header_size=120, max_header_count=4)


def check(raw: bytes) -> None:
    problem = disagreement(raw + NEXT)
    assert problem is None, f"{problem}\nrequest: {raw!r}"
    paths_agree(raw + NEXT)


@settings(FUZZ, max_examples=BOUNDED_EXAMPLES, derandomize=True)
@given(REQUEST)
def test_parsers_agree(raw: bytes) -> None:
    check(raw)


@pytest.mark.skipif(not MINUTES, reason="the long run: make fuzz MINUTES=10")
def test_parsers_agree_for_minutes() -> None:
    count = 0

    @settings(FUZZ, max_examples=5000, derandomize=False)
    @given(REQUEST)
    def batch(raw: bytes) -> None:
        nonlocal count
        count += 1
        check(raw)

    started = time.monotonic()
    while time.monotonic() - started < MINUTES * 60:
        batch()
    print(f"\nfuzz: {count} examples in {time.monotonic() - started:.0f} s")


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
])
def test_all_three_parsers_frame_a_plain_request_alike(raw: bytes) -> None:
    """The adapters themselves: every parser takes the first request and stops before NEXT."""
    verdicts = [ours(raw + NEXT), by_h11(raw + NEXT), by_llhttp(raw + NEXT)]
    assert verdicts[0][0] == "ok" and verdicts[0][4] == len(raw)
    assert verdicts[1] == verdicts[0] and verdicts[2] == verdicts[0]


def test_the_check_catches_what_it_is_for() -> None:
    """The harness has teeth: the two bugs it exists for are caught."""
    smuggled = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xa0chunked\r\n\r\n"
                b"0\r\n\r\n" + NEXT)
    assert disagreement(smuggled) is None

    def str_strip_parser(raw: bytes) -> tuple:  # the str.strip() bug of issue 11
        return ours(raw.replace(b"\xa0chunked", b"chunked"))

    assert "reject" in disagreement(smuggled, str_strip_parser)

    def off_by_one_parser(raw: bytes) -> tuple:
        verdict = ours(raw)
        return verdict[:4] + (verdict[4] + 1,)

    assert "framing differs" in disagreement(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + NEXT,
                                             off_by_one_parser)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a?b#c HTTP/1.0\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # a leading empty line: the strict path
    b"GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\naccept: y\r\nCookie: a\r\ncookie: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \t v \t\r\nY:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX : v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: v\r\n\r\n",
    b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Upgrade\r\nExpect: 100-continue\r\n\r\n",
    b"GET /" + b"a" * 36 + b" HTTP/1.1\r\nHost: a\r\n\r\n",  # the line at SMALL_LIMITS
    b"GET /" + b"a" * 37 + b" HTTP/1.1\r\nHost: a\r\n\r\n",  # one past it
    b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",  # 4 fields: at the count
    b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",  # one past it
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 103 + b"\r\n\r\n",  # 120 bytes of fields
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 104 + b"\r\n\r\n",  # 121
    b"GET / HTTP/1.1\r\nHost: a",  # incomplete
])
def test_quick_and_strict_head_paths_agree(raw: bytes) -> None:
    """The quick path is only a shortcut: every decision, attribute and limit is the strict
    path's (the fuzz run above checks the same on every generated request)."""
    paths_agree(raw)
    paths_agree(raw + NEXT)


def test_the_path_check_catches_a_difference() -> None:
    """paths_agree has teeth: a quick path that forgot to strip OWS is caught."""
    def careless(buf: bytearray, limits: Limits):
        parsed = parse_head(buf, limits)
        if parsed is not None:
            parsed[0].headers["x"] = parsed[0].headers.get("x", "") + " "
        return parsed

    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: v\r\n\r\n"
    assert head_outcome(careless, raw) != head_outcome(parse_head_strict, raw)


def test_exemption_rewrites_touch_chunk_lines_only() -> None:
    assert without_bws_before_chunk_extensions(
        b"P / HTTP/1.1\r\n\r\n3 ;a\r\n5 ;\r\n0\t;b\r\n\r\n") == (
        b"P / HTTP/1.1\r\n\r\n3;a\r\n5 ;\r\n0;b\r\n\r\n")


def test_common_heads_take_the_quick_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser's head, wrk's and curl's are split by the quick path (the strict one is
    not called); a repeated field or an absolute-form target still reach the strict one."""
    import framework.server.protocol as protocol

    def strict_called(buf: bytearray, limits: Limits):
        raise AssertionError("strict path")

    monkeypatch.setattr(protocol, "parse_head_strict", strict_called)
    for raw in (b"GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
                b"GET /s/app.css HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n"
                b"sec-ch-ua: \"Chromium\";v=\"120\"\r\nUser-Agent: Mozilla/5.0 (X11)\r\n"
                b"Accept: text/css,*/*;q=0.1\r\nReferer: https://example.com/\r\n"
                b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
                b"Cookie: a=1; b=2\r\n\r\n"):
        request, consumed = protocol.parse_head(bytearray(raw), Limits())
        assert consumed == len(raw) and request.host
    for raw in (b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 2\r\n\r\n",
                b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"):
        with pytest.raises(AssertionError, match="strict path"):
            protocol.parse_head(bytearray(raw), Limits())
