"""What handlers give back to the server: ``Response``, plus the date format HTTP uses."""
from __future__ import annotations

import json
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
    A file body is sent with sendfile and closed by the server. A ``stream`` is an iterator
    of byte strings pulled as the socket drains (``length`` None when unknown: chunked, or
    close-delimited for HTTP/1.0); its ``close()``, if any, is called however it ends.
    """

    __slots__ = ("status", "headers", "body", "file", "offset", "length", "close", "raw",
                 "stream")

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
        self.stream: Any = None

    def set_file(self, file: BinaryIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

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


# one encoder for every response: json.dumps would build a new one per call for these options;
# allow_nan=False: NaN and Infinity are not JSON, and a handler returning one is a bug (500)
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
JSON_TYPE_FIELD = b"Content-Type: application/json; charset=utf-8\r\n"


def json_response(data: Any, status: int = 200,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    response = Response(status, encode_json(data).encode("utf-8"), headers)
    response.raw = JSON_TYPE_FIELD
    return response


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, (text + "\n").encode("utf-8"), headers, "text/plain; charset=utf-8")
