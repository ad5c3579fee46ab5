"""The sans-IO HTTP/1.1 parser on raw bytes: request heads, framing rules, limits, chunked bodies.

Every table row is one request as it would arrive on the wire. Valid rows state what the
parser must extract; invalid rows state the status the server must answer (RFC 9112/9110).
No server runs here: ``parse_head`` and ``ChunkedDecoder`` only ever see bytes.
"""
from __future__ import annotations

import pytest

from framework.server.protocol import (
    REASONS,
    ChunkedDecoder,
    HttpError,
    Limits,
    UnsafeHeader,
    parse_head,
    response_head,
    serialize_fields,
)

LIMITS = Limits()


def serialize_head(status: int, fields: list[tuple[str, str]]) -> bytes:
    """A response head with no Date/Server, kept alive, without a body."""
    return response_head(status, b"", serialize_fields(fields), b"", None, True)
SMALL = Limits(max_request_line=64, max_header_size=256, max_header_count=5)


def parse(raw: bytes, limits: Limits = LIMITS):
    """Parse one complete head; returns the request and what is left in the buffer."""
    buf = bytearray(raw)
    result = parse_head(buf, limits)
    assert result is not None, "a complete head was reported as incomplete"
    request, consumed = result
    return request, bytes(buf[consumed:])


def status_of(raw: bytes, limits: Limits = LIMITS) -> int:
    with pytest.raises(HttpError) as info:
        parse_head(bytearray(raw), limits)
    return info.value.status


def head(*lines: str, request_line: str = "GET / HTTP/1.1") -> bytes:
    return ("\r\n".join([request_line, *lines]) + "\r\n\r\n").encode("latin-1")


# -- valid heads ---------------------------------------------------------------------------

VALID = [
    # (raw head, {attribute: expected value})
    (head("Host: example.com"),
     {"method": "GET", "target": "/", "path": "/", "query": "", "version": "HTTP/1.1",
      "host": "example.com", "keep_alive": True, "content_length": 0, "chunked": False}),
    (head("Host: a", request_line="GET / HTTP/1.9"),  # RFC 9110 §2.5: a later 1.x is 1.1
     {"version": "HTTP/1.1", "keep_alive": True}),
    (head("Host: a", request_line="GET /a/b.html?x=1&y=%20 HTTP/1.1"),
     {"path": "/a/b.html", "query": "x=1&y=%20"}),
    (head("Host: a", request_line="GET /page.html#frag HTTP/1.1"),
     {"path": "/page.html", "query": ""}),
    (head("Host: a", request_line="GET /page.html#frag?not-a-query HTTP/1.1"),
     {"path": "/page.html", "query": ""}),
    (head("Host: a", request_line="GET /space%20in%20name.txt HTTP/1.1"),
     {"path": "/space%20in%20name.txt"}),  # percent-decoding is the handler's business
    # HTTP/1.0: no Host needed, keep-alive only when asked for
    (head(request_line="GET / HTTP/1.0"), {"version": "HTTP/1.0", "keep_alive": False, "host": ""}),
    (head("Connection: keep-alive", request_line="GET / HTTP/1.0"), {"keep_alive": True}),
    (head("Connection: Keep-Alive", request_line="HEAD / HTTP/1.0"),
     {"keep_alive": True, "method": "HEAD"}),
    (head("Connection: keep-alive, close", request_line="GET / HTTP/1.0"), {"keep_alive": False}),
    # HTTP/1.1: keep-alive unless closed; Connection is a token list
    (head("Host: a", "Connection: close"), {"keep_alive": False}),
    (head("Host: a", "Connection: CLOSE"), {"keep_alive": False}),
    (head("Host: a", "Connection: Upgrade, close"), {"keep_alive": False}),
    (head("Host: a", "Connection: closed-caption"), {"keep_alive": True}),
    (head("Host: a", "Connection: keep-alive"), {"keep_alive": True}),
    (head("Host: a", "Connection: , close,"), {"keep_alive": False}),  # empty list elements
    (head("Host: [::1]:8080"), {"host": "[::1]:8080"}),
    (head("Host: 127.0.0.1:80"), {"host": "127.0.0.1:80"}),
    (head("Host: xn--d1acufc.xn--p1ai"), {"host": "xn--d1acufc.xn--p1ai"}),
    (head("Host: a", "Transfer-Encoding: , chunked", request_line="POST / HTTP/1.1"),
     {"chunked": True}),
    (head("Host: a", "Transfer-Encoding: \tChunked ", request_line="POST / HTTP/1.1"),
     {"chunked": True}),
    # empty list elements are ignored, across fields too (RFC 9110 §5.6.1.2, §5.3); found by
    # tests/test_fuzz.py, where h11 and llhttp both refuse them
    (head("Host: a", "Transfer-Encoding: chunked,", request_line="POST / HTTP/1.1"),
     {"chunked": True}),
    (head("Host: a", "Transfer-Encoding:", "Transfer-Encoding: chunked",
          request_line="POST / HTTP/1.1"), {"chunked": True}),
    (head("Host: a", request_line="GET http://[::1]:8080/x HTTP/1.1"),
     {"host": "[::1]:8080", "path": "/x"}),
    # absolute-form: the authority replaces Host (RFC 9112 §3.2.2)
    (head("Host: other", request_line="GET http://example.com/p/q?x=1 HTTP/1.1"),
     {"host": "example.com", "path": "/p/q", "query": "x=1"}),
    (head("Host: other", request_line="GET HTTPS://Example.COM:8443/x HTTP/1.1"),
     {"host": "Example.COM:8443", "path": "/x"}),
    (head("Host: other", request_line="GET http://example.com HTTP/1.1"),
     {"host": "example.com", "path": "/", "query": ""}),
    (head("Host: other", request_line="GET http://example.com?a=b HTTP/1.1"),
     {"path": "/", "query": "a=b"}),
    (head("Host: a", request_line="OPTIONS * HTTP/1.1"), {"method": "OPTIONS", "target": "*"}),
    # methods are tokens; unknown ones parse (the handler answers 405/501)
    (head("Host: a", request_line="PURGE /x HTTP/1.1"), {"method": "PURGE"}),
    (head("Host: a", request_line="M-SEARCH /x HTTP/1.1"), {"method": "M-SEARCH"}),
    # header fields: names lower-cased, values trimmed, repeats joined
    (head("HOST: a", "X-Mixed-Case: Value"), {"host": "a"}),
    (head("Host:", request_line="GET / HTTP/1.1"), {"host": ""}),  # empty Host is allowed
    (head("Host: [::1]:8080"), {"host": "[::1]:8080"}),
    (head("Host: a", "Content-Length: 10"), {"content_length": 10, "chunked": False}),
    (head("Host: a", "Content-Length: 007"), {"content_length": 7}),
    (head("Host: a", "Content-Length: 0"), {"content_length": 0}),
    (head("Host: a", "Transfer-Encoding: chunked"), {"chunked": True, "content_length": 0}),
    (head("Host: a", "Transfer-Encoding: Chunked"), {"chunked": True}),
    (head("Host: a", "Content-Length: 5", "Expect: 100-continue"), {"expect_continue": True}),
    (head("Host: a", "Transfer-Encoding: chunked", "Expect: 100-Continue"),
     {"expect_continue": True}),
    (head("Host: a", "Expect: 100-continue"), {"expect_continue": False}),  # no body to wait for
    (head("Content-Length: 5", "Expect: 100-continue", request_line="POST / HTTP/1.0"),
     {"expect_continue": False}),  # HTTP/1.0 clients do not wait for 100
]


@pytest.mark.parametrize("raw,expected", VALID, ids=[repr(r[:60]) for r, _ in VALID])
def test_valid_heads(raw: bytes, expected: dict) -> None:
    request, rest = parse(raw)
    assert rest == b""
    for name, value in expected.items():
        assert getattr(request, name) == value, name


def test_header_values_are_trimmed_and_names_lower_cased() -> None:
    request, _ = parse(head("Host: a", "X-Pad: \t  padded value \t ", "X-Tab: a\tb",
                            "X-Latin: caf\xe9", "X-Empty:"))
    assert request.headers == {"host": "a", "x-pad": "padded value", "x-tab": "a\tb",
                               "x-latin": "caf\xe9", "x-empty": ""}


def test_repeated_fields_are_combined() -> None:
    request, _ = parse(head("Host: a", "Accept: text/html", "Accept: */*",
                            "Cookie: a=1", "Cookie: b=2"))
    assert request.headers["accept"] == "text/html, */*"
    assert request.headers["cookie"] == "a=1; b=2"  # RFC 9110 §5.3 exception for Cookie


@pytest.mark.parametrize("prefix", [b"\r\n", b"\r\n\r\n", b"\n", b"\r\n\n\r\n"])
def test_leading_empty_lines_are_ignored(prefix: bytes) -> None:
    request, rest = parse(prefix + head("Host: a", request_line="GET /x HTTP/1.1"))
    assert request.path == "/x" and rest == b""


def test_only_empty_lines_need_more_bytes_and_leave_nothing() -> None:
    buf = bytearray(b"\r\n\r\n\n")
    assert parse_head(buf, LIMITS) is None
    assert buf == b""


def test_consumed_stops_at_the_end_of_the_head() -> None:
    second = head("Host: a", request_line="GET /second HTTP/1.1")
    request, rest = parse(head("Host: a", "Content-Length: 3") + b"abc" + second)
    assert request.content_length == 3
    assert rest == b"abc" + second


def test_pipelined_heads_parse_in_order() -> None:
    buf = bytearray(b"".join(head("Host: a", request_line=f"GET /{n} HTTP/1.1") for n in range(5)))
    paths = []
    while buf:
        request, consumed = parse_head(buf, LIMITS)
        del buf[:consumed]
        paths.append(request.path)
    assert paths == ["/0", "/1", "/2", "/3", "/4"]


@pytest.mark.parametrize("raw,expected", VALID[:3] + VALID[-4:])
def test_head_fed_one_byte_at_a_time(raw: bytes, expected: dict) -> None:
    buf = bytearray()
    for i, byte in enumerate(raw):
        buf.append(byte)
        result = parse_head(buf, LIMITS)
        if i < len(raw) - 1:
            assert result is None, f"complete after {i + 1} of {len(raw)} bytes"
    request, consumed = result
    assert consumed == len(buf)
    for name, value in expected.items():
        assert getattr(request, name) == value


# -- invalid heads -------------------------------------------------------------------------

INVALID = [
    # request line syntax (RFC 9112 §3)
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /\r\nHost: a\r\n\r\n", 400),
    (b"GET\r\nHost: a\r\n\r\n", 400),
    (b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    (b"GET / FOO/1.1\r\nHost: a\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS on the plain port
    # the request target
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # raw UTF-8 must be escaped
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # asterisk-form is for OPTIONS only
    (b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # unsupported versions (RFC 9110 §15.6.6)
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\n\r\n", 400),  # handled as 1.1, so Host is required
    # Host (RFC 9112 §3.2)
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400),
    (b"GET http://example.com/ HTTP/1.1\r\n\r\n", 400),  # absolute-form still needs Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
    (b"GET / HTTP/1.0\r\nHost: a\\b\r\n\r\n", 400),
    # field syntax (RFC 9112 §5)
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  # whitespace before the colon
    (b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),  # obs-fold
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),  # a first field line that starts with SP
    (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-\xe9: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),  # NUL
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400),  # DEL
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x0bc\r\n\r\n", 400),  # vertical tab
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1bc\r\n\r\n", 400),  # ESC
    # bare LF and bare CR as line ends (RFC 9112 §2.2)
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nX-B: c\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n", 400),
    # Content-Length (RFC 9112 §6.3, RFC 9110 §8.6)
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xb9\r\n\r\n", 400),  # latin-1 superscript 1
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400),
    # Transfer-Encoding (RFC 9112 §6.1, §6.3)
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     400),
    ((b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      b"Transfer-Encoding: chunked\r\n\r\n"), 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),  # length unknown
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate, chunked\r\n\r\n", 501),
    # whitespace other than SP/HTAB is not optional whitespace (RFC 9110 §5.6.3): str.strip()
    # would take these for spaces, and a proxy would not -- a request smuggling vector
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xa0chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x85chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0cchunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\xa0chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xa05\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\xa0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: \xa0a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\x85\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: \xa0close\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\x85\r\n\r\n", 400),
    # several Transfer-Encoding fields form one list (RFC 9110 §5.3): same rules
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
     501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501),
    # an absolute-form authority is validated like Host
    (b"GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://::1]/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://:80/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://a:b/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a]\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    # with an absolute-form target Host is ignored, but an invalid one is still 400 (RFC 9112
    # §3.2); found while reading the fuzz harness's cases
    (b"GET http://a/x HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    (b"GET http://a/x HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    # Expect (RFC 9110 §10.1.1)
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n", 417),
]


@pytest.mark.parametrize("raw,status", INVALID, ids=[repr(r[:70]) for r, _ in INVALID])
def test_invalid_heads(raw: bytes, status: int) -> None:
    assert status_of(raw) == status


@pytest.mark.parametrize("raw,status", [r for r in INVALID if b"\n\n" in r[0]
                                        or b"\nHost: a\n" in r[0]])
def test_bare_lf_is_refused_before_the_head_ends(raw: bytes, status: int) -> None:
    """A bare LF makes the head unparseable at once; no need to wait for more bytes."""
    cut = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    assert status_of(raw[:cut]) == 400


def test_http_error_carries_status_and_message() -> None:
    with pytest.raises(HttpError) as info:
        parse_head(bytearray(b"GET / HTTP/1.1\r\n\r\n"), LIMITS)
    assert info.value.status == 400 and "Host" in info.value.message
    assert HttpError(414).message == "URI Too Long"


# -- limits: 414 and 431, at the boundary and before the head is complete -------------------

def request_line_of(length: int) -> str:
    path = "/" + "a" * (length - len("GET / HTTP/1.1"))
    return f"GET {path} HTTP/1.1"


def test_request_line_at_the_limit_is_accepted() -> None:
    line = request_line_of(SMALL.max_request_line)
    assert len(line) == SMALL.max_request_line
    request, _ = parse(head("Host: a", request_line=line), SMALL)
    assert request.method == "GET"


def test_request_line_over_the_limit_is_414() -> None:
    line = request_line_of(SMALL.max_request_line + 1)
    assert status_of(head("Host: a", request_line=line), SMALL) == 414


def test_request_line_over_the_limit_is_414_before_it_ends() -> None:
    partial = ("GET /" + "a" * 100).encode()
    assert status_of(partial, SMALL) == 414


def test_default_request_line_limit_is_414() -> None:
    line = "GET /" + "a" * 9000 + " HTTP/1.1"
    assert status_of(head("Host: a", request_line=line)) == 414


def test_header_count_at_the_limit_is_accepted_and_one_more_is_431() -> None:
    fields = ["Host: a"] + [f"X-{n}: v" for n in range(SMALL.max_header_count - 1)]
    request, _ = parse(head(*fields), SMALL)
    assert len(request.headers) == SMALL.max_header_count
    assert status_of(head(*fields, "X-last: v"), SMALL) == 431


def test_header_section_over_the_size_limit_is_431() -> None:
    field = "X-Big: " + "b" * SMALL.max_header_size
    assert status_of(head("Host: a", field), SMALL) == 431


def test_header_section_at_the_size_limit_is_accepted() -> None:
    # the section counted from the end of the request line up to the final CRLF
    first = "Host: a"
    filler = SMALL.max_header_size - len("\r\n" + first + "\r\nX-F: ")
    raw = head(first, "X-F: " + "f" * filler)
    request, _ = parse(raw, SMALL)
    assert len(request.headers["x-f"]) == filler
    raw_over = head(first, "X-F: " + "f" * (filler + 1))
    assert status_of(raw_over, SMALL) == 431


def test_header_section_too_large_is_431_before_it_ends() -> None:
    partial = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * (SMALL.max_header_size + 10)
    assert status_of(partial, SMALL) == 431


def test_default_header_limits() -> None:
    many = ["Host: a"] + [f"X-{n}: v" for n in range(120)]
    assert status_of(head(*many)) == 431
    assert status_of(head("Host: a", "X-Big: " + "b" * 40000)) == 431


# -- chunked bodies (RFC 9112 §7.1) ---------------------------------------------------------

CHUNKED = [
    # (wire, decoded body)
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", b"0123456789abcdefghij"),
    (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
    (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello"),  # chunk extensions are ignored
    (b"5 ;name=value\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b'5;a="b;c";d\r\nhello\r\n0\r\n\r\n', b"hello"),
    (b"5\r\nhello\r\n0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n", b"hello"),  # trailers
    (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),  # data is opaque, CRLF inside it included
    (b"1\r\n\x00\r\n0\r\n\r\n", b"\x00"),
    (b"5\t;a\r\nhello\r\n0 ;b\r\n\r\n", b"hello"),  # BWS before ";" (RFC 9112 §7.1.1)
    (b"0\r\nX-T: caf\xe9\tb \r\nX-E:\r\n\r\n", b""),  # obs-text, HTAB, empty trailer values
]
NEXT = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"  # a pipelined request after the body


def decode(pieces: list[bytes], limit: int = 1 << 20) -> tuple[bytes, bytes]:
    """Feed the pieces in order; return the body and what was left unconsumed."""
    decoder = ChunkedDecoder(limit)
    buf = bytearray()
    out = []
    for piece in pieces:
        buf += piece
        out += decoder.feed(buf)
    assert decoder.done
    return b"".join(out), bytes(buf)


@pytest.mark.parametrize("wire,body", CHUNKED)
def test_chunked_decoding(wire: bytes, body: bytes) -> None:
    assert decode([wire + NEXT]) == (body, NEXT)


@pytest.mark.parametrize("wire,body", CHUNKED)
def test_chunked_split_at_every_byte_offset(wire: bytes, body: bytes) -> None:
    data = wire + NEXT
    for cut in range(len(wire) + 1):
        assert decode([data[:cut], data[cut:]]) == (body, NEXT), cut


@pytest.mark.parametrize("wire,body", CHUNKED)
def test_chunked_one_byte_at_a_time(wire: bytes, body: bytes) -> None:
    decoder = ChunkedDecoder(1 << 20)
    buf = bytearray()
    out = []
    for i in range(len(wire)):
        assert not decoder.done
        buf.append(wire[i])
        out += decoder.feed(buf)
    assert decoder.done and b"".join(out) == body and buf == b""


def test_chunked_not_done_until_the_trailer_section_ends() -> None:
    decoder = ChunkedDecoder(100)
    buf = bytearray(b"5\r\nhello\r\n0\r\nX-T: 1\r\n")
    assert decoder.feed(buf) == [b"hello"]
    assert not decoder.done
    buf += b"\r\n"
    decoder.feed(buf)
    assert decoder.done


CHUNKED_INVALID = [
    (b"x\r\nhello\r\n0\r\n\r\n", 400),  # not hex
    (b"\r\nhello\r\n0\r\n\r\n", 400),  # empty size line
    (b"-5\r\nhello\r\n0\r\n\r\n", 400),
    (b"+5\r\nhello\r\n0\r\n\r\n", 400),
    (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    (b"5 5\r\nhello\r\n0\r\n\r\n", 400),
    (b";ext\r\nhello\r\n0\r\n\r\n", 400),
    (b"1000000000000000\r\n", 400),  # 16 hex digits: absurd size
    (b"3\r\nhello\r\n0\r\n\r\n", 400),  # data longer than its size
    (b"5\r\nhelloXX0\r\n\r\n", 400),  # no CRLF after the data
    (b"5\nhello\r\n0\r\n\r\n", 400),  # bare LF after the size
    (b"5\r\nhello\n0\r\n\r\n", 400),  # bare LF after the data
    (b"5\r\nhello\r\n0\n\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nNoColon\r\n\r\n", 400),  # malformed trailer
    (b"5\r\nhello\r\n0\r\n folded: x\r\n\r\n", 400),
    # a trailer field is a field line (RFC 9112 §7.1.2, §5.1): found by tests/test_fuzz.py,
    # where h11 and llhttp both refused them and we did not
    (b"5\r\nhello\r\n0\r\nX Y: z\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX(T): 1\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: \x01\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nX-T: a\x7f\r\n\r\n", 400),
    (b"5;" + b"e" * 5000, 400),  # an endless chunk line
    # chunk-size is 1*HEXDIG: whitespace only before an extension's ";" (RFC 9112 §7.1.1)
    (b"5 \r\nhello\r\n0\r\n\r\n", 400),
    (b"5\t\r\nhello\r\n0\r\n\r\n", 400),
    (b" 5\r\nhello\r\n0\r\n\r\n", 400),
    (b"5\xa0\r\nhello\r\n0\r\n\r\n", 400),
    (b"5\r\nhello\r\n0 \r\n\r\n", 400),
]


@pytest.mark.parametrize("wire,status", CHUNKED_INVALID, ids=[repr(w[:30]) for w, _ in CHUNKED_INVALID])
def test_chunked_invalid(wire: bytes, status: int) -> None:
    decoder = ChunkedDecoder(1 << 20)
    with pytest.raises(HttpError) as info:
        decoder.feed(bytearray(wire))
    assert info.value.status == status


def test_chunked_body_over_the_limit_is_413() -> None:
    decoder = ChunkedDecoder(10)
    buf = bytearray(b"6\r\nabcdef\r\n")
    assert decoder.feed(buf) == [b"abcdef"]
    buf += b"5\r\n"
    with pytest.raises(HttpError) as info:
        decoder.feed(buf)  # refused on the size line, before the data arrives
    assert info.value.status == 413


def test_chunked_body_at_the_limit_is_accepted() -> None:
    body, rest = decode([b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"], limit=10)
    assert body == b"abcdefghij" and rest == b""


def test_chunked_single_huge_chunk_is_413_at_once() -> None:
    with pytest.raises(HttpError) as info:
        ChunkedDecoder(1024).feed(bytearray(b"ffffffff\r\n"))
    assert info.value.status == 413


# -- the response side ----------------------------------------------------------------------

STANDARD_REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable",
    417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}


@pytest.mark.parametrize("status,reason", STANDARD_REASONS.items())
def test_reason_phrases_are_the_standard_ones(status: int, reason: str) -> None:
    assert REASONS[status] == reason
    line = serialize_head(status, []).split(b"\r\n")[0]
    assert line == f"HTTP/1.1 {status} {reason}".encode()


def test_serialize_head() -> None:
    raw = serialize_head(404, [("Content-Type", "text/html"), ("X-A", "b")])
    assert raw == (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nX-A: b\r\n"
                   b"Connection: keep-alive\r\n\r\n")


# -- refusing at once what can never become a request --------------------------------------

@pytest.mark.parametrize("prefix", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello, no CRLF in sight
    b"\x00\x00\x00",
    b"\xff\xfe",
    b"GE\x00",
    b"GET(",
    b" GET / HTTP/1.1",
    b"GET /\x00",
    b"\r\n\x16\x03\x01",  # after the empty lines RFC 9112 §2.2 allows
])
def test_bytes_that_cannot_start_a_request_are_refused_before_the_head_ends(prefix: bytes) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(bytearray(prefix), LIMITS)
    assert info.value.status == 400


@pytest.mark.parametrize("prefix", [b"G", b"GET", b"GET ", b"GET /a", b"M-SEARCH * HTTP/1.1\r\n",
                                    b"\r\n", b"\r\nGET / HTTP/1.1\r\nHost: a\r\n"])
def test_a_plausible_beginning_waits_for_more(prefix: bytes) -> None:
    assert parse_head(bytearray(prefix), LIMITS) is None


# -- the one response serializer refuses to split a head ------------------------------------

@pytest.mark.parametrize("fields", [
    [("Location", "/a\r\nSet-Cookie: x=1")],
    [("X-A", "b\nc")],
    [("X-A", "b\rc")],
    [("X-A", "b\x00c")],
    [("X-A\r\nX-B", "c")],
    [("X-A", "ok"), ("X-B", "\r\n")],
])
def test_response_fields_with_cr_lf_or_nul_are_refused(fields) -> None:
    with pytest.raises(UnsafeHeader):
        serialize_head(200, fields)


def test_ordinary_response_fields_serialize() -> None:
    assert serialize_head(200, [("X-A", "b\tc"), ("Location", "/caf%C3%A9")]) == (
        b"HTTP/1.1 200 OK\r\nX-A: b\tc\r\nLocation: /caf%C3%A9\r\n"
        b"Connection: keep-alive\r\n\r\n")


@pytest.mark.parametrize("status,length,chunked,framing", [
    (200, 5, False, b"Content-Length: 5\r\n"),
    (200, 0, False, b"Content-Length: 0\r\n"),
    (404, 9, False, b"Content-Length: 9\r\n"),
    (204, 0, False, b""),  # RFC 9110 §8.6: no Content-Length on 1xx, 204 and 304
    (304, 0, False, b""),
    (100, 0, False, b""),
    (200, None, False, b""),  # close-delimited
    (200, None, True, b"Transfer-Encoding: chunked\r\n"),
])
def test_response_head_framing(status: int, length, chunked: bool, framing: bytes) -> None:
    head = response_head(status, b"X-Raw: 1\r\n", b"X-F: 2\r\n", b"Date: d\r\n", length,
                         False, chunked)
    assert head == (b"HTTP/1.1 %d %s\r\nX-Raw: 1\r\nX-F: 2\r\nDate: d\r\n"
                    % (status, REASONS[status].encode()) + framing
                    + b"Connection: close\r\n\r\n")
