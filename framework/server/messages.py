"""What handlers give back to the server: ``Response``, plus the date format HTTP uses."""
from __future__ import annotations

import time
from typing import Any, BinaryIO

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """IMF-fixdate (RFC 9110 §5.6.7), independent of the locale."""
    t = time.gmtime(timestamp)
    return (f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(text: str) -> float | None:
    """Parse an IMF-fixdate; None for anything else (RFC 9110 §13.1.3: ignore invalid dates)."""
    parts = text.split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in MONTHS[1:]:
        return None
    try:
        day, year = int(parts[1]), int(parts[3])
        hour, minute, second = (int(x) for x in parts[4].split(":"))
        import calendar
        return float(calendar.timegm((year, MONTHS.index(parts[2]), day, hour, minute, second)))
    except (ValueError, OverflowError):
        return None


class Response:
    """Status, header fields and a body: bytes, a byte range of an open file, or a stream.

    The server adds Date, Server, Connection and Content-Length; handlers set the rest.
    A file body is sent with sendfile and closed by the server. ``segments`` makes a file
    body of several slices with bytes between them (multipart/byteranges). A ``stream`` is an
    iterator of byte strings pulled as the socket drains (``length`` None when unknown:
    chunked, or close-delimited for HTTP/1.0); its ``close()``, if any, is called however it
    ends.
    """

    __slots__ = ("status", "headers", "body", "file", "offset", "length", "close", "raw",
                 "segments", "stream")

    def __init__(self, status: int = 200, body: bytes = b"",
                 headers: list[tuple[str, str]] | None = None,
                 content_type: str | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        if content_type is not None:
            self.headers.append(("Content-Type", content_type))
        self.file: BinaryIO | None = None
        self.offset = 0
        self.length = len(body)
        self.close = False  # force Connection: close after this response
        self.raw = b""  # header fields already serialized (cached by the static handler)
        self.segments: list[bytes | tuple[int, int]] | None = None
        self.stream: Any = None

    def set_file(self, file: BinaryIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def set_file_segments(self, file: BinaryIO, segments: list[bytes | tuple[int, int]],
                          length: int) -> None:
        """A body of byte strings and (offset, length) slices of ``file``, ``length`` in all."""
        self.set_file(file, 0, length)
        self.segments = segments

    def file_items(self) -> list:
        """What the server queues for a file body: ``[file, offset, length]`` items to send
        with sendfile, and bytes between them. The server closes each file item once sent
        (or dropped), so the slices of one file share a ``SharedFile``."""
        if self.segments is None:
            return [[self.file, self.offset, self.length]]
        slices = sum(1 for segment in self.segments if not isinstance(segment, bytes))
        shared = SharedFile(self.file, slices)
        return [segment if isinstance(segment, bytes) else [shared, segment[0], segment[1]]
                for segment in self.segments]

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        for line in self.raw.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == lname:
                return value.strip()
        return None


class SharedFile:
    """An open file behind several queued slices: really closed when the last one is."""

    __slots__ = ("file", "users")

    def __init__(self, file: BinaryIO, users: int) -> None:
        self.file = file
        self.users = users

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.file.close()
