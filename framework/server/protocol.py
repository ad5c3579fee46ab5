"""HTTP/1.1 on the wire, sans-IO: bytes in, requests out; responses in, bytes out.

Nothing here touches a socket or a clock, so every framing rule is tested with byte strings.
Rules cite RFC 9112 (message syntax) and RFC 9110 (semantics). Errors are ``HttpError``
carrying the status to send; after any of them the connection must close, because the
framing of whatever follows can no longer be trusted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
    409: "Conflict", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 422: "Unprocessable Content",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

# RFC 9110 §5.6.2: token characters; translate(None, TCHAR) leaves only the bad bytes.
TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BAD_TARGET = re.compile(rb"[\x00-\x20\x7f-\xff]")
# RFC 9110 §5.5: no control characters in field values but HTAB (CR and LF are checked apart)
BAD_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# RFC 9112 §7.1.2: a trailer field is a field line like those of the head (RFC 9112 §5)
TRAILER_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*")
HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 3986 §3.2.2 host (IP-literal, IPv4 or reg-name) with an optional port (RFC 9110 §7.2)
HOST_VALUE = re.compile(
    r"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
    r"|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")
# The methods this server recognises: RFC 9110 §9's, PATCH (RFC 5789) and QUERY (the safe
# method with a body, which API tools probe routes with). The parser takes any token as a
# method; the handlers answer 501 to one outside this set, and 405 with Allow to a known
# method that a target does not support (RFC 9110 §9.1, §15.5.6).
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
                           "TRACE", "PATCH", "QUERY"))
METHOD_NAMES = {method.encode("ascii"): method for method in KNOWN_METHODS}
VERSION_NAMES = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}
GOOD_HOSTS: set[str] = set()  # Host values that matched HOST_VALUE (see valid_host)
GOOD_HOSTS_MAX = 64
FRAMING_FIELDS = frozenset(("connection", "transfer-encoding", "content-length", "expect"))
OWS = " \t"  # RFC 9110 §5.6.3: optional whitespace is SP and HTAB, never other spaces
ABSOLUTE_FORM = re.compile(rb"(?i)https?://([^/?#]*)(.*)")


class HttpError(Exception):
    """A request we refuse; ``status`` is what to answer. The connection closes after it."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or REASONS.get(status, "Error"))
        self.status = status
        self.message = message or REASONS.get(status, "Error")


@dataclass(frozen=True)
class Limits:
    max_request_line: int = 8190
    max_header_size: int = 32768
    max_header_count: int = 100


class Request:
    """A parsed request head plus, once read, its body. Header names are lower-case."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "keep_alive",
                 "content_length", "chunked", "has_body", "expect_continue", "host", "body",
                 "body_file", "client", "scheme", "__weakref__")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        # a fragment (never sent by a browser, but possible on the wire) ends the target
        if "?" in target or "#" in target:
            self.path, _, self.query = target.partition("#")[0].partition("?")
        else:
            self.path, self.query = target, ""
        self.keep_alive = True
        self.content_length = 0
        self.chunked = False
        self.has_body = False  # chunked, or a Content-Length above 0 (set by apply_framing)
        self.expect_continue = False
        self.host = headers.get("host", "")
        self.body: bytes = b""
        self.body_file = None  # an open temp file when the body was spooled to disk
        self.client = ("", 0)
        self.scheme = "http"  # "https" over TLS, or as a trusted proxy reports it

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} {self.version}>"


# The common head in one C pass (RFC 9112 §3, §5): a known method, an origin-form target of
# visible ASCII, HTTP/1.1 or 1.0, and field lines of a token name and a value of HTAB, SP,
# visible ASCII and obs-text. Such a head has no bare CR or LF and no control byte, so
# ``parse_head`` only splits it; anything else goes to ``parse_head_strict``, which finds out
# what is wrong (or parses the rare valid forms: absolute-form, "*", CONNECT, HTTP/1.2).
COMMON_HEAD = re.compile(
    r"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|QUERY) (/[!-~]*) HTTP/1\.([01])"
    r"((?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~\x80-\xff]*)*)")


def parse_head(buf: bytearray, limits: Limits) -> tuple[Request, int] | None:
    """Parse one request head from the start of ``buf``.

    Returns (request, bytes consumed) or None when more bytes are needed. Leading empty
    lines are dropped from ``buf`` in place (RFC 9112 §2.2 lets a server ignore them).
    A head that ``COMMON_HEAD`` matches within the limits is split here; every other one
    (and a repeated field name) takes ``parse_head_strict``, which gives the same result
    for the heads this path takes (tests/test_fuzz.py checks both agree).
    """
    end = buf.find(b"\r\n\r\n")
    if end > 0:
        head = buf[:end].decode("latin-1")
        match = COMMON_HEAD.fullmatch(head)
        if match is not None:
            method, target, minor, fields = match.groups()
            start = end - len(fields)  # the request line's length
            lines = fields[2:].split("\r\n") if fields else ()
            if (start <= limits.max_request_line and len(fields) <= limits.max_header_size
                    and len(lines) <= limits.max_header_count):
                headers: dict[str, str] = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    key = name.lower()
                    if key in headers:
                        break  # a list to combine, or a duplicate to refuse: the strict path
                    headers[key] = value.strip(OWS)
                else:
                    request = Request(method, target, "HTTP/1.1" if minor == "1" else "HTTP/1.0",
                                      headers)
                    # without framing fields, and with a Host seen before (or none on
                    # HTTP/1.0), apply_framing would only set keep_alive
                    if (FRAMING_FIELDS.isdisjoint(headers) and request.host in GOOD_HOSTS
                            and ("host" in headers or minor == "0")):
                        request.keep_alive = minor == "1"
                    else:
                        apply_framing(request, headers)
                    return request, end + 4
    return parse_head_strict(buf, limits)


def parse_head_strict(buf: bytearray, limits: Limits) -> tuple[Request, int] | None:
    """``parse_head`` for any head, checking each rule in turn to name what is wrong."""
    skip = 0
    size = len(buf)
    while skip < size and buf[skip] in b"\r\n":
        skip += 1
    if skip:
        del buf[:skip]
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        check_incomplete_head(buf, limits)
        return None
    head = bytes(buf[:end])
    # RFC 9112 §2.2: a bare CR or LF is not a line terminator here; refuse rather than guess.
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise HttpError(400, "bare CR or LF in request head")
    if BAD_CONTROL.search(head):
        raise HttpError(400, "control character in request head")
    line_end = head.find(b"\r\n")
    line = head if line_end < 0 else head[:line_end]
    if len(line) > limits.max_request_line:
        raise HttpError(414)
    if end - len(line) > limits.max_header_size:
        raise HttpError(431)
    if crlf > limits.max_header_count:
        raise HttpError(431, "too many header fields")
    method, target, version = parse_request_line(line)
    headers = {} if line_end < 0 else parse_fields(
        head[line_end + 2:].decode("latin-1").split("\r\n"))
    request = Request(method, target, version, headers)
    apply_framing(request, headers)
    return request, end + 4


def check_incomplete_head(buf: bytearray, limits: Limits) -> None:
    """Refuse a head that can no longer become acceptable, without waiting for its end.

    Bytes that cannot start a request line (a TLS ClientHello on the plain port, binary
    garbage) are refused at once instead of waiting for the header timeout.
    """
    first_lf = buf.find(b"\n")
    line = bytes(buf[:first_lf] if first_lf >= 0 else buf[:limits.max_request_line + 2])
    space = line.find(b" ")
    method = (line if space < 0 else line[:space]).rstrip(b"\r")
    if method.translate(None, TCHAR) or space == 0:
        raise HttpError(400, "malformed request line")
    if BAD_CONTROL.search(buf):
        raise HttpError(400, "control character in request head")
    if first_lf < 0:
        if len(buf) > limits.max_request_line:
            raise HttpError(414)
        return
    if first_lf > limits.max_request_line + 1:
        raise HttpError(414)
    if len(buf) > limits.max_header_size + first_lf + 4:
        raise HttpError(431)
    if buf.count(b"\n") != buf.count(b"\r\n"):
        raise HttpError(400, "bare LF in request head")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    # RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    raw_method, target, raw_version = parts
    method = METHOD_NAMES.get(raw_method)  # a known method is a token: nothing to check
    if method is None:
        if not raw_method or raw_method.translate(None, TCHAR):
            raise HttpError(400, "malformed method")
        method = raw_method.decode("ascii")
    version = VERSION_NAMES.get(raw_version)
    if version is None:
        if not HTTP_VERSION.fullmatch(raw_version):
            raise HttpError(400, "malformed HTTP version")
        if raw_version[5:6] != b"1":
            raise HttpError(505)
        version = "HTTP/1.1"  # RFC 9110 §2.5: a higher 1.x minor is handled as 1.1
    if not target or BAD_TARGET.search(target):
        raise HttpError(400, "malformed request target")
    return method, target.decode("ascii"), version


def valid_host(host: str) -> bool:
    """RFC 3986 host with an optional port (HOST_VALUE); the last few valid values are
    remembered, so a keep-alive client's repeated Host costs one set lookup."""
    if host in GOOD_HOSTS:
        return True
    if not HOST_VALUE.fullmatch(host):
        return False
    if len(GOOD_HOSTS) >= GOOD_HOSTS_MAX:
        GOOD_HOSTS.clear()
    GOOD_HOSTS.add(host)
    return True


def parse_fields(lines: list[str]) -> dict[str, str]:
    """Header fields from their lines, names lower-cased."""
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        # most names are letters and dashes; anything else gets the full token check
        if not colon or not (name.replace("-", "").isalnum() and name.isascii()
                             or TOKEN.fullmatch(name)):
            raise field_error(line)
        key = name.lower()
        value = value.strip(OWS)
        if key in headers:
            if key in ("host", "content-length"):
                raise HttpError(400, f"duplicate {key} header")
            value = headers[key] + ("; " if key == "cookie" else ", ") + value
        headers[key] = value
    return headers


def field_error(line: str) -> HttpError:
    if line[:1] in (" ", "\t"):
        return HttpError(400, "obsolete line folding")  # RFC 9112 §5.2
    if ":" not in line or line[0] == ":":
        return HttpError(400, "malformed header field")
    # includes whitespace before the colon: RFC 9112 §5.1 requires a 400
    return HttpError(400, "malformed header name")


def apply_framing(request: Request, headers: dict[str, str]) -> None:
    """Decide keep-alive, body length and expectations (RFC 9112 §6, §9.3; RFC 9110 §10.1.1)."""
    http11 = request.version == "HTTP/1.1"
    target = request.target
    if target[0] != "/":
        absolute = ABSOLUTE_FORM.fullmatch(target.encode("ascii"))
        if absolute:
            # RFC 9112 §3.2.2: the authority in an absolute-form target replaces Host; an
            # http(s) URI needs a non-empty host, validated like the Host field below
            request.host = absolute.group(1).decode("ascii")
            if not request.host or request.host[0] == ":":
                raise HttpError(400, "malformed request target")
            if not valid_host(headers.get("host", "")):
                # RFC 9112 §3.2: the Host field is ignored then, but an invalid one is a 400
                raise HttpError(400, "malformed Host header")
            rest = absolute.group(2).decode("ascii")
            path, _, request.query = rest.partition("#")[0].partition("?")
            request.path = path or "/"
        elif not (target == "*" and request.method == "OPTIONS"):
            raise HttpError(400, "malformed request target")
    if http11 and "host" not in headers:
        raise HttpError(400, "missing Host header")  # RFC 9112 §3.2, whatever the target form
    if request.host not in GOOD_HOSTS and not valid_host(request.host):
        raise HttpError(400, "malformed Host header")

    connection = headers.get("connection")
    if connection:
        # a list of tokens (RFC 9110 §7.6.1), compared whole: "closed" is not "close"
        tokens = {token.strip(OWS) for token in connection.lower().split(",")}
        tokens.discard("")
        if not all(TOKEN.fullmatch(token) for token in tokens):
            raise HttpError(400, "malformed Connection header")
        request.keep_alive = "close" not in tokens and (http11 or "keep-alive" in tokens)
    else:
        request.keep_alive = http11

    te = headers.get("transfer-encoding")
    cl = headers.get("content-length")
    if te is not None:
        if cl is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")  # RFC 9112 §6.1
        if not http11:
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        # a list (RFC 9110 §5.6.1): empty elements are allowed, anything else is a token
        codings = [c.strip(OWS).lower() for c in te.split(",")]
        codings = [c for c in codings if c]
        if not codings or not all(TOKEN.fullmatch(c) for c in codings):
            raise HttpError(400, "malformed Transfer-Encoding")
        if codings[-1] != "chunked" or codings.count("chunked") > 1:
            raise HttpError(400, "chunked must be the final transfer coding")
        if len(codings) > 1:
            raise HttpError(501, "unsupported transfer coding")  # RFC 9112 §6.1
        request.chunked = request.has_body = True
    elif cl is not None:
        if not cl.isdigit() or not cl.isascii() or len(cl) > 18:
            raise HttpError(400, "malformed Content-Length")
        request.content_length = int(cl)
        request.has_body = request.content_length > 0

    expect = headers.get("expect")
    if expect is not None:
        if expect.lower() != "100-continue":
            raise HttpError(417)
        request.expect_continue = http11 and request.has_body


class ChunkedDecoder:
    """Decodes a chunked body incrementally (RFC 9112 §7.1), enforcing a size limit.

    ``feed`` consumes what it can from the front of ``buf`` and returns the data chunks it
    decoded; ``done`` turns true after the last chunk and the trailer section.
    """

    MAX_LINE = 4096

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.remaining = 0  # data bytes left in the current chunk
        self.state = "size"  # size -> data -> data_end -> size ... -> trailer -> done
        self.done = False

    def feed(self, buf: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while not self.done:
            if self.state == "data":
                if not buf:
                    break
                take = min(self.remaining, len(buf))
                out.append(bytes(buf[:take]))
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self.state = "data_end"
                continue
            line = self.take_line(buf)
            if line is None:
                break
            if self.state == "size":
                self.start_chunk(line)
            elif self.state == "data_end":
                if line:
                    raise HttpError(400, "chunk data longer than its size")
                self.state = "size"
            elif not line:  # trailer section ends with an empty line; fields are dropped
                self.done = True
            elif not TRAILER_FIELD.fullmatch(line):
                raise HttpError(400, "malformed trailer field")
        return out

    def take_line(self, buf: bytearray) -> bytes | None:
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > self.MAX_LINE:
                raise HttpError(400, "chunk line too long")
            if b"\n" in buf:
                raise HttpError(400, "bare LF in chunked body")
            return None
        line = bytes(buf[:end])
        del buf[:end + 2]
        if b"\n" in line or b"\r" in line:
            raise HttpError(400, "bare CR or LF in chunked body")
        return line

    def start_chunk(self, line: bytes) -> None:
        # chunk-size is 1*HEXDIG; whitespace (BWS) may only precede a ";" extension,
        # and extensions are ignored
        size_text, semicolon, _ = line.partition(b";")
        if semicolon:
            size_text = size_text.rstrip(b" \t")
        if not size_text or size_text.translate(None, b"0123456789abcdefABCDEF") \
                or len(size_text) > 15:
            raise HttpError(400, "malformed chunk size")
        size = int(size_text, 16)
        self.total += size
        if self.total > self.limit:
            raise HttpError(413)
        if size == 0:
            self.state = "trailer"
        else:
            self.remaining = size
            self.state = "data"


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown").encode("ascii"))


STATUS_LINES = {status: status_line(status) for status in REASONS}


class UnsafeHeader(ValueError):
    """A response field that would break the head: CR, LF or NUL in a name or value."""


def serialize_fields(fields: list[tuple[str, str]]) -> bytes:
    """Response header fields as bytes. Every response head passes through here.

    A CR, LF or NUL in a name or value (an app's mistake, or a reflected request value)
    would split the head or inject fields: refused with ``UnsafeHeader``, never sent.
    """
    text = "".join([f"{name}: {value}\r\n" for name, value in fields])
    count = len(fields)
    if text.count("\n") != count or text.count("\r") != count or "\0" in text:
        raise UnsafeHeader("CR, LF or NUL in a response header field")
    return text.encode("latin-1", "replace")


KEEP_ALIVE = b"Connection: keep-alive\r\n\r\n"
CLOSE = b"Connection: close\r\n\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def response_head(status: int, raw: bytes, fields: bytes, common: bytes, length: int | None,
                  keep_alive: bool, chunked: bool = False) -> bytes:
    """The head of every response, built here and nowhere else.

    ``raw`` and ``fields`` are serialized header fields (cached ones, then this answer's, from
    ``serialize_fields``); ``common`` is Date and Server. The framing field follows RFC 9110
    §8.6 and RFC 9112 §6: ``Transfer-Encoding: chunked`` for a chunked body, no length for a
    close-delimited one (``length`` None), and no Content-Length on 1xx, 204 and 304, which
    have no body. A HEAD answer carries the length its GET would have.
    """
    if chunked:
        framing = CHUNKED
    elif length is not None and status >= 200 and status != 204 and status != 304:
        framing = b"Content-Length: %d\r\n" % length
    else:
        framing = b""
    return b"%s%s%s%s%s%s" % (STATUS_LINES.get(status) or status_line(status), raw, fields,
                              common, framing, KEEP_ALIVE if keep_alive else CLOSE)
