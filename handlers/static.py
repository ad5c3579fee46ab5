"""Static files from a root directory, as nginx serves them.

A request path is percent-decoded, split into segments and joined under the root segment by
segment (never by substring); the real path must stay inside the root, so symlinks out are
refused. Directories serve their index.html, ``/dir`` redirects to ``/dir/``. Validators
(ETag, Last-Modified), 304s and single byte ranges follow RFC 9110 §13 and §14.

Resolving a path costs several system calls, so each resolution is remembered for a second;
small files are kept in memory and revalidated with one ``stat`` per request.
"""
from __future__ import annotations

import os
import stat
import time

from framework.messages import Response, http_date, parse_http_date
from framework.protocol import serialize_fields
from framework.urls import percent_decode
from handlers.content_types import content_type

ALLOW = [("Allow", "GET, HEAD")]
RESOLVE_TTL = 1.0
CACHE_ENTRIES = 4096


class NotServed(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Resolved:
    """Where a request path leads: a file to serve or a redirect, checked at ``checked``."""

    __slots__ = ("path", "redirect", "checked", "stat_key", "body", "fields", "raw")

    def __init__(self, path: str, redirect: str | None, checked: float) -> None:
        self.path = path
        self.redirect = redirect
        self.checked = checked
        self.stat_key: tuple[int, int, int] | None = None
        self.body: bytes | None = None  # cached content of a small file
        self.fields: list[tuple[str, str]] = []
        self.raw = b""  # ``fields`` serialized, for the common 200 answer


def html_error(status: int, reason: str, fields: list[tuple[str, str]] | None = None) -> Response:
    body = (f"<html><head><title>{status} {reason}</title></head>"
            f"<body><h1>{status} {reason}</h1></body></html>\n").encode()
    return Response(status, body, list(fields or []), "text/html")


REASON = {301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 416: "Range Not Satisfiable"}


class StaticFiles:
    def __init__(self, root: str, cache_size: int) -> None:
        self.root = os.path.realpath(root)
        self.cache_size = cache_size
        self.resolved: dict[str, Resolved] = {}

    def handle(self, method: str, raw_path: str, query: str,
               headers: dict[str, str]) -> Response:
        if method != "GET" and method != "HEAD":
            return html_error(405, REASON[405], ALLOW)
        now = time.monotonic()
        entry = self.resolved.get(raw_path)
        try:
            if entry is None or now - entry.checked > RESOLVE_TTL:
                entry = self.resolve(raw_path, now)
            if entry.redirect is not None:
                location = entry.redirect + ("?" + query if query else "")
                return html_error(301, REASON[301], [("Location", location)])
            return self.serve(entry, headers)
        except NotServed as refusal:
            return html_error(refusal.status, REASON[refusal.status])

    # -- mapping a URL path to a file ------------------------------------------------------

    def resolve(self, raw_path: str, now: float) -> Resolved:
        try:
            decoded = percent_decode(raw_path).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise NotServed(400) from None
        segments = self.safe_segments(decoded)
        full = os.path.join(self.root, *segments)
        wants_dir = decoded.endswith("/")
        try:
            st = os.stat(full)
        except (OSError, ValueError):
            raise NotServed(404) from None
        redirect = None
        if stat.S_ISDIR(st.st_mode):
            if not wants_dir:
                redirect = raw_path + "/"
            full = os.path.join(full, "index.html")
        elif wants_dir:
            raise NotServed(404)  # a file named with a trailing slash
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise NotServed(403)  # a symlink leading out of the root
        if redirect is None and not os.path.isfile(real):
            raise NotServed(404)  # a directory without index.html: never a listing
        entry = Resolved(real, redirect, now)
        if len(self.resolved) >= CACHE_ENTRIES:
            self.resolved.clear()
        self.resolved[raw_path] = entry
        return entry

    @staticmethod
    def safe_segments(decoded: str) -> list[str]:
        """Split a decoded path into segments, refusing anything that could leave the root."""
        if "\x00" in decoded or "\\" in decoded:
            raise NotServed(404)
        segments: list[str] = []
        for segment in decoded.split("/"):
            if segment == "" or segment == ".":
                continue
            if segment == "..":
                if not segments:
                    raise NotServed(403)  # climbs above the root
                segments.pop()
                continue
            if segment[0] == "." and not (segment == ".well-known" and not segments):
                raise NotServed(404)  # hidden files stay hidden
            segments.append(segment)
        return segments

    # -- answering -------------------------------------------------------------------------

    def serve(self, entry: Resolved, headers: dict[str, str]) -> Response:
        try:
            st = os.stat(entry.path)
        except OSError:
            raise NotServed(404) from None
        if not stat.S_ISREG(st.st_mode):
            raise NotServed(404)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if entry.stat_key != key:
            self.refresh(entry, st, key)
        if entry.body is not None:
            if ("if-none-match" not in headers and "if-modified-since" not in headers
                    and "range" not in headers):
                response = Response(200, entry.body)  # the common case, kept cheap
                response.raw = entry.raw
                return response
            return self.answer(entry, headers, st.st_size, None)
        # large file: send the very file we stat, so its length cannot change under us
        try:
            file = open(entry.path, "rb", buffering=0)
        except OSError:
            raise NotServed(404) from None
        try:
            st = os.fstat(file.fileno())
            if (st.st_size, st.st_mtime_ns, st.st_ino) != entry.stat_key:
                self.refresh(entry, st, (st.st_size, st.st_mtime_ns, st.st_ino))
            response = self.answer(entry, headers, st.st_size, file)
        except BaseException:
            file.close()
            raise
        if response.file is None:
            file.close()
        return response

    def type_fields(self, path: str) -> list[tuple[str, str]]:
        """Content-Type (first) and any fields that depend on what the file is.

        Called once per version of a file; a subclass may look at the content (the media
        store sniffs it and adds nosniff and attachment fields).
        """
        return [("Content-Type", content_type(path))]

    def refresh(self, entry: Resolved, st: os.stat_result, key: tuple) -> None:
        entry.stat_key = key
        type_field, *extra = self.type_fields(entry.path)
        entry.fields = [
            type_field,
            ("Last-Modified", http_date(st.st_mtime)),
            ("ETag", f'"{st.st_size:x}-{st.st_mtime_ns:x}"'),
            ("Accept-Ranges", "bytes"),
            *extra,
        ]
        entry.raw = serialize_fields(entry.fields)
        entry.body = None
        if st.st_size <= self.cache_size:
            try:
                with open(entry.path, "rb") as f:
                    data = f.read(st.st_size + 1)
            except OSError:
                raise NotServed(404) from None
            if len(data) == st.st_size:
                entry.body = data
            else:
                entry.stat_key = None  # changed while we read it: do not trust the cache

    def answer(self, entry: Resolved, headers: dict[str, str], size: int, file) -> Response:
        fields = list(entry.fields)
        etag = fields[2][1]
        if not_modified(headers, etag, entry.stat_key[1] // 1_000_000_000):
            return Response(304, b"", [f for f in fields if f[0] != "Content-Type"])
        start, length, status = 0, size, 200
        range_header = headers.get("range")
        if range_header is not None and if_range_holds(headers.get("if-range"), etag, fields[1][1]):
            parsed = parse_range(range_header, size)
            if parsed == "unsatisfiable":
                return html_error(416, REASON[416], [("Content-Range", f"bytes */{size}")])
            if parsed is not None:
                start, length = parsed
                status = 206
                fields.append(("Content-Range", f"bytes {start}-{start + length - 1}/{size}"))
        if entry.body is not None:
            return Response(status, entry.body[start:start + length] if status == 206
                            else entry.body, fields)
        response = Response(status, b"", fields)
        response.set_file(file, start, length)
        return response


def not_modified(headers: dict[str, str], etag: str, mtime: int) -> bool:
    """RFC 9110 §13.1.2 and §13.1.3; If-None-Match wins over If-Modified-Since."""
    inm = headers.get("if-none-match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        return any(tag.strip().removeprefix("W/") == etag for tag in inm.split(","))
    ims = headers.get("if-modified-since")
    if ims is not None:
        since = parse_http_date(ims)
        return since is not None and mtime <= since
    return False


def if_range_holds(if_range: str | None, etag: str, last_modified: str) -> bool:
    if if_range is None:
        return True
    if_range = if_range.strip()
    return if_range == etag or if_range == last_modified


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One byte range (RFC 9110 §14.1.2) as (start, length); None ignores the header.

    Several ranges are answered with the whole file (allowed by §14.2), which spares us
    multipart/byteranges.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        suffix = min(suffix, size)
        return size - suffix, suffix
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range is ignored (§14.1.1), not refused
    if start >= size:
        return "unsatisfiable"  # also for an open range ("5000-") past the end
    end = min(int(last), size - 1) if last else size - 1
    return start, end - start + 1
