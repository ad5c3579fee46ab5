"""multipart/form-data (RFC 7578 over RFC 2046 §5.1), parsed as a stream.

The body is read in chunks from a file-like object, so a 100 MiB upload never sits in memory:
file parts (those with a ``filename`` parameter) are written to temp files in ``spool_dir`` as
they arrive, keeping only their first bytes (``FilePart.head``) for type sniffing; text fields
are kept in memory up to a small cap.

    with read_form(req, spool_dir=store.incoming, max_file_size=20 * MiB) as form:
        part = form.file("image")       # FilePart or None
        title = form.field("title")     # str or None
    # leaving the block removes the temp files nobody moved away (see media.MediaStore.save)

The delimiter is searched in a buffer that keeps the last ``len(delimiter) - 1`` bytes of
each read, so a boundary split across reads is found; a delimiter candidate that is not
followed by ``--``, or by optional blanks and CRLF, is content, as RFC 2046 implies.
Every problem raises ``MultipartError`` with the HTTP status to answer (400, or 413 for a
part over its limit).
"""
from __future__ import annotations

import codecs
import os
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from framework.web.app import ApiError, ApiRequest
from framework.web.sniff import HEAD_SIZE
from framework.web.urls import percent_decode

CHUNK_SIZE = 64 * 1024
MAX_FIELD_SIZE = 64 * 1024  # a text field; anything bigger belongs in a file part
MAX_PARTS = 100
MAX_PART_HEADER_SIZE = 16 * 1024
MAX_PADDING = 64  # blanks allowed between a delimiter and its CRLF (RFC 2046 "transport padding")
BOUNDARY_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                           b"'()+_,-./:=? ")  # RFC 2046 bchars


class MultipartError(Exception):
    """A body that cannot be taken as a form; ``status`` is what to answer (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class FilePart:
    """A part sent with a ``filename``: its bytes are in the temp file at ``path``."""
    name: str
    filename: str  # as sent (``filename*`` preferred), before any sanitizing
    content_type: str  # as the client declared it; informational only
    path: str
    size: int = 0
    head: bytes = b""  # the first HEAD_SIZE bytes, for sniffing

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


@dataclass
class Form:
    """The parts of a form by name, in the order sent. A context manager: leaving it removes
    the temp files of file parts that were not moved away."""
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[FilePart]] = field(default_factory=dict)

    def field(self, name: str) -> str | None:
        """The last value of a text field, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def file(self, name: str) -> FilePart | None:
        """The first file part of that name, or None."""
        parts = self.files.get(name)
        return parts[0] if parts else None

    def close(self) -> None:
        for parts in self.files.values():
            for part in parts:
                try:
                    os.unlink(part.path)
                except FileNotFoundError:
                    pass  # moved into the media store, or never created

    def __enter__(self) -> "Form":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_form(req: ApiRequest, spool_dir: str, max_file_size: int | None = None,
              max_field_size: int = MAX_FIELD_SIZE, max_parts: int = MAX_PARTS) -> Form:
    """The request's multipart body as a ``Form``; problems become ``ApiError`` (400/413)."""
    try:
        return parse_form(req.body_stream(), req.content_type, spool_dir,
                          max_file_size=max_file_size, max_field_size=max_field_size,
                          max_parts=max_parts)
    except MultipartError as exc:
        raise ApiError(exc.status, exc.message) from None


def parse_form(stream: BinaryIO, content_type: str, spool_dir: str, *,
               max_file_size: int | None = None, max_field_size: int = MAX_FIELD_SIZE,
               max_parts: int = MAX_PARTS, chunk_size: int = CHUNK_SIZE) -> Form:
    """Parse a multipart/form-data body read from ``stream``.

    ``content_type`` is the request's Content-Type header (it carries the boundary). File
    parts go to temp files in ``spool_dir``; on any error they are removed before raising.
    """
    boundary = boundary_of(content_type)
    parser = FormParser(stream, boundary, spool_dir, max_file_size, max_field_size, max_parts,
                        chunk_size)
    try:
        parser.run()
    except BaseException:
        parser.abort()
        raise
    return parser.form


def boundary_of(content_type: str) -> bytes:
    media, params = parse_header(content_type)
    if media != "multipart/form-data":
        raise MultipartError("Content-Type must be multipart/form-data", 415)
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("multipart/form-data without a boundary parameter")
    raw = boundary.encode("utf-8")
    if len(raw) > 70 or not BOUNDARY_CHARS.issuperset(raw) or raw.endswith(b" "):
        raise MultipartError("invalid multipart boundary")
    return raw


class FormParser:
    """The state of one parse: a small buffer over the stream, and the part being read."""

    def __init__(self, stream: BinaryIO, boundary: bytes, spool_dir: str,
                 max_file_size: int | None, max_field_size: int, max_parts: int,
                 chunk_size: int) -> None:
        self.stream = stream
        self.delimiter = b"\r\n--" + boundary
        self.spool_dir = spool_dir
        self.max_file_size = max_file_size
        self.max_field_size = max_field_size
        self.max_parts = max_parts
        self.chunk_size = chunk_size
        # The first delimiter may open the body without a CRLF before it (RFC 2046 §5.1.1).
        self.buf = bytearray(b"\r\n")
        self.form = Form()
        self.parts = 0
        self.sink: FileSink | FieldSink | None = None

    # -- reading -----------------------------------------------------------------------------

    def fill(self) -> None:
        """Append the next chunk of the stream; a body that ends here was cut short."""
        chunk = self.stream.read(self.chunk_size)
        if not chunk:
            raise MultipartError("multipart body ended before its closing boundary")
        self.buf += chunk

    def run(self) -> None:
        if not self.skip_preamble():
            return
        while True:
            self.read_part_headers()
            if not self.read_part_body():
                return

    def skip_preamble(self) -> bool:
        """Drop everything before the first delimiter (RFC 2046 allows a preamble).

        False when that delimiter is already the closing one: a form without parts.
        """
        while True:
            verdict, start, end = self.find_delimiter()
            if verdict in ("part", "close"):
                del self.buf[:end]
                return verdict == "part"
            self.drop_or_write(start if verdict == "more" else -1, None)
            self.fill()

    def drop_or_write(self, start: int, sink: FileSink | FieldSink | None) -> None:
        """Pass on (to ``sink``, or nowhere) the bytes that cannot begin a delimiter.

        ``start`` is where a delimiter may begin, or -1 when none does: then all but the
        last ``len(delimiter) - 1`` bytes are safe, since a delimiter split by the end of
        this read can only start among those.
        """
        safe = start if start >= 0 else len(self.buf) - len(self.delimiter) + 1
        if safe > 0:
            if sink is not None:
                sink.write(self.buf[:safe])
            del self.buf[:safe]

    def find_delimiter(self) -> tuple[str, int, int]:
        """Look for the next real delimiter in the buffer.

        Returns ("part" | "close", start, end) for a delimiter line at buf[start:end];
        ("more", start, 0) when one may begin at ``start`` but more bytes are needed to know;
        ("none", -1, 0) when the buffer holds none.
        """
        buf, delimiter = self.buf, self.delimiter
        pos = 0
        while True:
            start = buf.find(delimiter, pos)
            if start < 0:
                return "none", -1, 0
            after = start + len(delimiter)
            if len(buf) - after < 2:
                return "more", start, 0
            if buf[after:after + 2] == b"--":
                return "close", start, after + 2
            end = after
            while end < len(buf) and buf[end] in b" \t" and end - after <= MAX_PADDING:
                end += 1
            if end - after > MAX_PADDING:
                pos = start + 1  # not a delimiter line: content that looks like one
                continue
            if len(buf) - end < 2:
                return "more", start, 0
            if buf[end:end + 2] == b"\r\n":
                return "part", start, end + 2
            pos = start + 1

    def read_part_headers(self) -> None:
        """Parse the header block at the start of the buffer and open the part's sink."""
        while True:
            if self.buf.startswith(b"\r\n"):
                block, size = b"", 2  # a part without header fields
                break
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                block, size = bytes(self.buf[:end]), end + 4
                break
            if len(self.buf) > MAX_PART_HEADER_SIZE:
                raise MultipartError("part header section too large")
            self.fill()
        if size > MAX_PART_HEADER_SIZE:
            raise MultipartError("part header section too large")
        del self.buf[:size]
        self.start_part(parse_part_headers(block))

    def read_part_body(self) -> bool:
        """Stream the part's content to its sink up to the next delimiter.

        True when another part follows; False after the closing delimiter (the epilogue
        after it is ignored and left unread).
        """
        while True:
            verdict, start, end = self.find_delimiter()
            if verdict in ("part", "close"):
                self.sink.write(self.buf[:start])
                del self.buf[:end]
                self.finish_part()
                return verdict == "part"
            self.drop_or_write(start if verdict == "more" else -1, self.sink)
            self.fill()

    # -- parts -------------------------------------------------------------------------------

    def start_part(self, headers: dict[str, str]) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise MultipartError(f"more than {self.max_parts} parts in the form")
        disposition, params = parse_header(headers.get("content-disposition", ""))
        if disposition != "form-data":
            raise MultipartError("part without Content-Disposition: form-data")
        name = params.get("name")
        if name is None:
            raise MultipartError("form-data part without a name")
        content_type = headers.get("content-type", "")
        if "filename" in params:
            fd, path = tempfile.mkstemp(prefix=".upload-", dir=self.spool_dir)
            part = FilePart(name, params["filename"], content_type, path)
            self.form.files.setdefault(name, []).append(part)
            self.sink = FileSink(part, os.fdopen(fd, "wb"), self.max_file_size)
        else:
            self.sink = FieldSink(name, content_type, self.max_field_size)

    def finish_part(self) -> None:
        sink, self.sink = self.sink, None
        if isinstance(sink, FieldSink):
            self.form.fields.setdefault(sink.name, []).append(sink.text())
        else:
            sink.close()

    def abort(self) -> None:
        if isinstance(self.sink, FileSink):
            self.sink.close()
        self.sink = None
        self.form.close()


class FileSink:
    """Writes a file part to its temp file, counting bytes and keeping the head."""

    def __init__(self, part: FilePart, file: BinaryIO, limit: int | None) -> None:
        self.part = part
        self.file = file
        self.limit = limit

    def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        part = self.part
        part.size += len(data)
        if self.limit is not None and part.size > self.limit:
            raise MultipartError(f"file part {part.name!r} exceeds the limit of "
                                 f"{self.limit} bytes", 413)
        if len(part.head) < HEAD_SIZE:
            part.head += data[:HEAD_SIZE - len(part.head)]
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


# Python codecs that are not character sets a client may name (RFC 7578 §4.4)
NOT_CHARSETS = frozenset(("idna", "punycode", "unicode-escape", "raw-unicode-escape",
                          "undefined", "palmos", "mbcs", "oem"))


class FieldSink:
    """Collects a text field in memory, up to its cap."""

    def __init__(self, name: str, content_type: str, limit: int) -> None:
        self.name = name
        self.charset = parse_header(content_type)[1].get("charset", "utf-8")
        self.limit = limit
        self.data = bytearray()

    def write(self, data: bytes | bytearray) -> None:
        self.data += data
        if len(self.data) > self.limit:
            raise MultipartError(f"form field {self.name!r} exceeds the limit of "
                                 f"{self.limit} bytes", 413)

    def text(self) -> str:
        try:
            codec = codecs.lookup(self.charset).name
            if codec in NOT_CHARSETS:
                raise LookupError(codec)
            text = self.data.decode(codec)
            text.encode("utf-8")  # a lone surrogate (utf-7 "+2ADY-") is no text either
        except LookupError:
            raise MultipartError(f"form field {self.name!r} has an unknown charset "
                                 f"{self.charset[:40]!r}") from None
        except (UnicodeDecodeError, UnicodeEncodeError):
            raise MultipartError(f"form field {self.name!r} is not valid "
                                 f"{self.charset[:40]}") from None
        return text


# -- header fields ---------------------------------------------------------------------------

def parse_part_headers(block: bytes) -> dict[str, str]:
    """A part's header block as {lower-case name: value}.

    Browsers send non-ASCII file names as raw UTF-8, so the block is decoded as UTF-8, and as
    Latin-1 when it is not valid UTF-8 (every byte is then kept as some character).
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    headers: dict[str, str] = {}
    last = None
    for line in text.split("\r\n") if text else ():
        if line[:1] in (" ", "\t") and last is not None:  # obsolete line folding
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise MultipartError("malformed part header field")
        last = name.lower()
        headers[last] = value.strip()
    return headers


def parse_header(value: str) -> tuple[str, dict[str, str]]:
    """``type/sub; a=1; b="x y"`` -> ("type/sub", {"a": "1", "b": "x y"}).

    The value before the first ``;`` is lower-cased, as are parameter names. In a quoted
    string only ``\\\\`` and ``\\"`` are escapes; any other backslash is kept as sent
    (browsers send Windows paths unescaped). A ``name*`` parameter
    (RFC 5987/8187 ``charset'lang'%XX``) overrides ``name``.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    pos, n = 0, len(rest)
    while pos < n:
        while pos < n and rest[pos] in " \t;":
            pos += 1
        start = pos
        while pos < n and rest[pos] not in "=;":
            pos += 1
        name = rest[start:pos].strip().lower()
        param_value = ""
        if pos < n and rest[pos] == "=":
            pos += 1
            while pos < n and rest[pos] in " \t":
                pos += 1
            if pos < n and rest[pos] == '"':
                param_value, pos = read_quoted(rest, pos + 1)
            else:
                start = pos
                while pos < n and rest[pos] != ";":
                    pos += 1
                param_value = rest[start:pos].strip()
        if not name:
            continue
        if name.endswith("*"):
            decoded = decode_extended(param_value)
            if decoded is not None:
                extended[name[:-1]] = decoded
        else:
            params[name] = param_value
    params.update(extended)
    return main.strip().lower(), params


def read_quoted(text: str, pos: int) -> tuple[str, int]:
    """The quoted string starting after its opening quote, and the position after it."""
    out = []
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\\" and pos + 1 < n and text[pos + 1] in '\\"':
            out.append(text[pos + 1])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    return "".join(out), pos  # an unterminated quote: take the rest, as browsers do


def decode_extended(value: str) -> str | None:
    """RFC 8187 ``charset'language'pct-encoded``; None when it cannot be decoded."""
    charset, quote, rest = value.partition("'")
    _, quote2, encoded = rest.partition("'")
    if not quote or not quote2 or charset.lower() not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return percent_decode(encoded).decode(codecs.lookup(charset).name)
    except ValueError:  # a bad escape, or bytes invalid in the charset
        return None
