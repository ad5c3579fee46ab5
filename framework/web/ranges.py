"""Byte ranges (RFC 9110 §14): the Range header, If-Range, and multipart/byteranges bodies.

Against amplification (§14.2): overlapping and adjacent ranges are coalesced, so the parts
never hold a byte twice and never more than the whole representation; more than
``max_ranges`` ranges are ignored (the whole file is sent).
"""
from __future__ import annotations

import secrets

UNSATISFIABLE = "unsatisfiable"
DIGITS_LIMIT = 18  # a longer number is past any file's end; int() never sees 4300 digits
FAR = 10 ** DIGITS_LIMIT


def parse_ranges(header: str, size: int, max_ranges: int) -> list[tuple[int, int]] | str | None:
    """The ranges of a ``bytes=`` Range header as (start, length), coalesced.

    UNSATISFIABLE when no range overlaps the representation (416); None when the header is
    to be ignored and the whole representation sent: another unit, a syntax error or an
    invalid range (§14.1.1), or more than ``max_ranges`` ranges (0 disables ranges).
    """
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    items = [item.strip() for item in spec.split(",")]
    items = [item for item in items if item]  # empty list elements are allowed (§5.6.1)
    if not items or len(items) > max_ranges:
        return None
    ranges: list[tuple[int, int]] = []  # (first, last) byte positions, in request order
    for item in items:
        first, dash, last = item.partition("-")
        if not dash or not is_number(first, True) or not is_number(last, True):
            return None
        if first == "":
            if last == "":
                return None
            suffix = number(last)
            if suffix > 0 and size > 0:
                ranges.append((max(size - suffix, 0), size - 1))
            continue
        start = number(first)
        if last and number(last) < start:
            return None
        if start < size:
            ranges.append((start, min(number(last), size - 1) if last else size - 1))
    if not ranges:
        return UNSATISFIABLE
    return [(first, last - first + 1) for first, last in coalesce(ranges)]


def is_number(text: str, empty_ok: bool = False) -> bool:
    return (text == "" and empty_ok) or (text.isascii() and text.isdigit())


def number(text: str) -> int:
    return FAR if len(text) > DIGITS_LIMIT else int(text)


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping and adjacent ranges; the rest keep the order they were asked in
    (§14.6), a merged range taking the place of its earliest member."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i])
    merged: list[list[int]] = []  # [first, last, earliest index]
    for i in order:
        first, last = ranges[i]
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
            merged[-1][2] = min(merged[-1][2], i)
        else:
            merged.append([first, last, i])
    merged.sort(key=lambda m: m[2])
    return [(first, last) for first, last, _ in merged]


def if_range_holds(if_range: str | None, etag: str, last_modified: str) -> bool:
    """§13.1.5: the range applies when If-Range is absent or names the current validator.

    An entity tag is compared strongly (a weak tag never matches); a date must equal
    Last-Modified exactly.
    """
    if if_range is None:
        return True
    if_range = if_range.strip()
    return if_range == etag or if_range == last_modified


class Multipart:
    """The framing of a multipart/byteranges body (§14.6): one head per part and a tail."""

    def __init__(self, ranges: list[tuple[int, int]], size: int, content_type: str) -> None:
        self.boundary = secrets.token_hex(12)
        self.ranges = ranges
        self.heads = []
        for n, (start, length) in enumerate(ranges):
            lead = "--" if n == 0 else "\r\n--"
            self.heads.append((f"{lead}{self.boundary}\r\nContent-Type: {content_type}\r\n"
                               f"Content-Range: bytes {start}-{start + length - 1}/{size}\r\n\r\n"
                               ).encode("latin-1", "replace"))
        self.tail = f"\r\n--{self.boundary}--\r\n".encode("latin-1")
        self.length = (sum(len(head) for head in self.heads) + sum(n for _, n in ranges)
                       + len(self.tail))

    @property
    def content_type(self) -> str:
        return f"multipart/byteranges; boundary={self.boundary}"

    def body(self, data: bytes) -> bytes:
        """The whole body, from the representation's bytes in memory."""
        parts = [piece for head, (start, length) in zip(self.heads, self.ranges)
                 for piece in (head, data[start:start + length])]
        return b"".join([*parts, self.tail])

    def segments(self) -> list[bytes | tuple[int, int]]:
        """The body as part heads and (offset, length) slices of the file, for sendfile."""
        out: list[bytes | tuple[int, int]] = []
        for head, byte_range in zip(self.heads, self.ranges):
            out += [head, byte_range]
        out.append(self.tail)
        return out
