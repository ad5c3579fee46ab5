"""Static files from a root directory, as nginx serves them.

A request path is percent-decoded, split into segments and joined under the root segment by
segment (never by substring); the real path must stay inside the root, so symlinks out are
refused. Directories serve their first ``index`` file, ``/dir`` redirects to ``/dir/``; a
missing path may serve ``fallback_file`` (single-page apps), and errors may serve
``error_pages``. Validators (ETag, Last-Modified), 304s and byte ranges follow RFC 9110 §13 and
§14; several ranges answer multipart/byteranges (``framework/web/ranges.py``).

Each file version has up to three representations (``Variant``): identity, gzip made here
once and cached (``framework/web/compression.py``), and a ``FILE.gz`` beside it (``gzip_static``).
Each has its own ETag, so 304 and ranges work per representation.

Resolving a path costs several system calls, so each resolution is remembered for a second;
small files are kept in memory and revalidated with one ``stat`` at most every
``open_file_cache_valid`` seconds (nginx's ``open_file_cache_valid``; 0: on every request), so
a changed file is served within that bound.
"""
from __future__ import annotations

import fnmatch
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from framework.server.config import CORE_SETTINGS
from framework.server.protocol import REASONS, serialize_fields
from framework.web.compression import (
    GZIP,
    GZIP_MAX_FILE,
    STATIC_LEVEL,
    VARY,
    GzipCache,
    TypeSet,
    accepts_gzip,
    already_compressed,
    gzip_bytes,
)
from framework.web.content_types import content_type, merged_table
from framework.web.ranges import UNSATISFIABLE, Multipart, if_range_holds, parse_ranges
from framework.web.responses import Response, http_date, parse_http_date
from framework.web.urls import percent_decode

ALLOW = [("Allow", "GET, HEAD")]
RESOLVE_TTL = 1.0
CACHE_ENTRIES = 4096
NEVER = float("-inf")
# what an error page drops from a file's fields: they describe a 200 representation
NOT_ON_ERRORS = frozenset({"Last-Modified", "ETag", "Accept-Ranges", "Cache-Control"})


class NotServed(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass(frozen=True)
class StaticOptions:
    """The static-file settings (docs/server.md, "Static files"), checked by framework/config."""

    gzip: bool
    gzip_min_length: int
    gzip_types: TypeSet
    gzip_static: bool
    cache_control: tuple[tuple[re.Pattern, str], ...]
    max_ranges: int
    index: tuple[str, ...]
    error_pages: dict[int, str]
    fallback_file: str
    types: dict[str, str]
    cache_valid: float = 0.0  # open_file_cache_valid: seconds a cached file goes without a stat

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **override: Any) -> StaticOptions:
        """From the server settings (missing keys take their defaults), with ``override``."""
        s = {key: settings.get(key, spec[0]) for key, spec in CORE_SETTINGS.items()} | override
        return cls(
            gzip=s["gzip"],
            gzip_min_length=s["gzip_min_length"],
            gzip_types=TypeSet(s["gzip_types"]),
            gzip_static=s["gzip_static"],
            cache_control=tuple((re.compile(fnmatch.translate(glob)), value)
                                for glob, value in s["cache_control"].items()),
            max_ranges=s["max_ranges"],
            index=tuple(s["index"]),
            error_pages={int(status): path for status, path in s["error_pages"].items()},
            fallback_file=s["fallback_file"],
            types=merged_table(s["mime_types"]),
            cache_valid=s["open_file_cache_valid"],
        )


class Variant:
    """One representation of a file version: its header fields and validators."""

    __slots__ = ("fields", "raw", "etag", "last_modified", "mtime")

    def __init__(self, fields: list[tuple[str, str]], etag: str, last_modified: str,
                 mtime: int) -> None:
        self.fields = fields
        self.raw = serialize_fields(fields)  # for the common 200 answer
        self.etag = etag
        self.last_modified = last_modified
        self.mtime = mtime


class Resolved:
    """Where a request path leads: a file to serve or a redirect, checked at ``checked``."""

    __slots__ = ("path", "url_path", "redirect", "checked", "cache_control", "stat_key", "size",
                 "mtime_ns", "validated", "body", "type_field", "extra", "compressible", "identity", "gzipped",
                 "gz_checked", "gz_present", "gz_static")

    def __init__(self, path: str, url_path: str, redirect: str | None, checked: float,
                 cache_control: str | None) -> None:
        self.path = path
        self.url_path = url_path  # of the file served ("/dir/index.html"), decoded
        self.redirect = redirect
        self.checked = checked
        self.cache_control = cache_control
        self.stat_key: tuple[int, int, int] | None = None
        self.size = 0
        self.mtime_ns = 0
        self.validated = NEVER  # when ``body`` was last found current by a stat
        self.body: bytes | None = None  # cached content of a small file
        self.type_field = ("Content-Type", "")
        self.extra: list[tuple[str, str]] = []
        self.compressible = False  # gzip made here is allowed for this version
        self.identity: Variant | None = None
        self.gzipped: Variant | None = None
        self.gz_checked = NEVER  # when FILE.gz was last looked for
        self.gz_present = False
        self.gz_static: tuple[tuple, Variant] | None = None  # FILE.gz's stat key and fields


def html_error(status: int, reason: str, fields: list[tuple[str, str]] | None = None) -> Response:
    body = (f"<html><head><title>{status} {reason}</title></head>"
            f"<body><h1>{status} {reason}</h1></body></html>\n").encode()
    return Response(status, body, list(fields or []), "text/html")




class StaticFiles:
    def __init__(self, root: str, cache_size: int, options: StaticOptions | None = None) -> None:
        self.root = os.path.realpath(root)
        self.cache_size = cache_size
        self.options = options or StaticOptions.from_settings({})
        self.accept_ranges = ("Accept-Ranges", "bytes" if self.options.max_ranges else "none")
        self.resolved: dict[str, Resolved] = {}
        self.gz_cache = GzipCache()

    def handle(self, method: str, raw_path: str, query: str,
               headers: dict[str, str]) -> Response:
        if method != "GET" and method != "HEAD":
            return self.error(405, headers, ALLOW)
        now = time.monotonic()
        entry = self.resolved.get(raw_path)
        try:
            if entry is None or now - entry.checked > RESOLVE_TTL:
                entry = self.resolve(raw_path, now)
            if entry.redirect is not None:
                location = entry.redirect + ("?" + query if query else "")
                return html_error(301, REASONS[301], [("Location", location)])
            return self.serve(entry, headers, now)
        except NotServed as refusal:
            if refusal.status == 404 and self.options.fallback_file:
                return self.fallback(headers, now)
            return self.error(refusal.status, headers)

    def error(self, status: int, headers: dict[str, str] | None = None,
              fields: list[tuple[str, str]] | tuple = (), reason: str | None = None) -> Response:
        """An error answer: the ``error_pages`` file for ``status`` if it can be served, else
        a small built-in HTML page."""
        page = self.options.error_pages.get(status)
        if page is not None:
            now = time.monotonic()
            try:
                entry = self.configured(page, now)
                if entry.redirect is None:
                    return self.serve(entry, headers or {}, now, status, list(fields))
            except NotServed:
                pass
        return html_error(status, reason or REASONS.get(status, "Error"), list(fields))

    def fallback(self, headers: dict[str, str], now: float) -> Response:
        """``fallback_file`` with 200, for a GET or HEAD of a path that does not exist."""
        try:
            entry = self.configured(self.options.fallback_file, now)
            if entry.redirect is not None:
                raise NotServed(404)
            return self.serve(entry, headers, now)
        except NotServed as refusal:
            return self.error(refusal.status, headers)

    # -- mapping a URL path to a file ------------------------------------------------------

    def resolve(self, raw_path: str, now: float) -> Resolved:
        try:
            decoded = percent_decode(raw_path).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise NotServed(400) from None
        return self.remember(raw_path, self.locate(decoded, raw_path, now))

    def configured(self, path: str, now: float) -> Resolved:
        """A file named in the settings (an error page, the fallback), under the same rules."""
        key = "\x00" + path  # never a request path: those hold no NUL
        entry = self.resolved.get(key)
        if entry is None or now - entry.checked > RESOLVE_TTL:
            entry = self.remember(key, self.locate("/" + path.lstrip("/"), None, now))
        return entry

    def remember(self, key: str, entry: Resolved) -> Resolved:
        if len(self.resolved) >= CACHE_ENTRIES:
            self.resolved.clear()
        self.resolved[key] = entry
        return entry

    def locate(self, decoded: str, raw_path: str | None, now: float) -> Resolved:
        """The file (or redirect) for a decoded path; ``raw_path`` is what a redirect keeps."""
        segments = self.safe_segments(decoded)
        full = os.path.join(self.root, *segments)
        wants_dir = decoded.endswith("/")
        try:
            st = os.stat(full)
        except (OSError, ValueError):
            raise NotServed(404) from None
        if stat.S_ISDIR(st.st_mode):
            if not wants_dir:
                self.inside(os.path.realpath(full))
                if raw_path is None:
                    raise NotServed(404)
                return Resolved(full, "", raw_path + "/", now, None)
            for name in self.options.index:
                real = self.inside(os.path.realpath(os.path.join(full, name)))
                if os.path.isfile(real):
                    return self.entry(real, [*segments, name], now)
            raise NotServed(404)  # a directory without an index file: never a listing
        if wants_dir:
            raise NotServed(404)  # a file named with a trailing slash
        real = self.inside(os.path.realpath(full))
        if not os.path.isfile(real):
            raise NotServed(404)
        return self.entry(real, segments, now)

    def inside(self, real: str) -> str:
        if real != self.root and not real.startswith(self.root + os.sep):
            raise NotServed(403)  # a symlink leading out of the root
        return real

    def entry(self, real: str, segments: list[str], now: float) -> Resolved:
        url_path = "/" + "/".join(segments)
        cache_control = next((value for pattern, value in self.options.cache_control
                              if pattern.match(url_path)), None)
        return Resolved(real, url_path, None, now, cache_control)

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

    def serve(self, entry: Resolved, headers: dict[str, str], now: float, status: int = 200,
              extra: list[tuple[str, str]] | tuple = ()) -> Response:
        """The file with ``status``: 200 (with 304 and ranges) or an error page's status.

        A file kept in memory whose ``stat`` matched less than ``cache_valid`` seconds ago is
        served without another ``stat``: a change shows within that bound.
        """
        if entry.body is None or now - entry.validated >= self.options.cache_valid:
            try:
                st = os.stat(entry.path)
            except OSError:
                raise NotServed(404) from None
            if not stat.S_ISREG(st.st_mode):
                raise NotServed(404)
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            if entry.stat_key != key:
                self.refresh(entry, st, key)
            if entry.stat_key is not None:
                entry.validated = now
        if self.options.gzip_static and now - entry.gz_checked > RESOLVE_TTL:
            self.look_for_gz(entry, now)
        if ((entry.compressible or entry.gz_present)
                and accepts_gzip(headers.get("accept-encoding"))):
            response = self.serve_gzip(entry, headers, status, extra)
            if response is not None:
                return response
        if entry.body is not None:
            if (status == 200 and "if-none-match" not in headers
                    and "if-modified-since" not in headers and "range" not in headers):
                response = Response(200, entry.body)  # the common case, kept cheap
                response.raw = entry.identity.raw
                return response
            return self.answer(entry.identity, headers, entry.size, entry.body, None, status,
                               extra)
        # large file: send the very file we stat, so its length cannot change under us
        file = self.open(entry.path)
        try:
            st = os.fstat(file.fileno())
            if (st.st_size, st.st_mtime_ns, st.st_ino) != entry.stat_key:
                self.refresh(entry, st, (st.st_size, st.st_mtime_ns, st.st_ino))
            return self.answer_file(entry.identity, headers, st.st_size, file, status, extra)
        except BaseException:
            file.close()
            raise

    def serve_gzip(self, entry: Resolved, headers: dict[str, str], status: int,
                   extra: list[tuple[str, str]] | tuple) -> Response | None:
        """The FILE.gz beside the file, else gzip made here; None to send identity.

        gzip is never made for a range request: the identity ranges answer it.
        """
        if entry.gz_present:
            response = self.serve_gz_file(entry, headers, status, extra)
            if response is not None:
                return response
        if not entry.compressible or (status == 200 and "range" in headers):
            return None
        data = self.compressed(entry)
        if not data:
            return None
        if status == 200 and "if-none-match" not in headers and "if-modified-since" not in headers:
            response = Response(200, data)
            response.raw = entry.gzipped.raw
            return response
        return self.answer(entry.gzipped, headers, len(data), data, None, status, extra)

    def serve_gz_file(self, entry: Resolved, headers: dict[str, str], status: int,
                      extra: list[tuple[str, str]] | tuple) -> Response | None:
        """``gzip_static``: FILE.gz as it is, if it is a regular file no older than FILE.

        Opened without following a symlink; its directory is FILE's, already inside the root.
        """
        try:
            fd = os.open(entry.path + ".gz", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        file = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the server after sending
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns < entry.mtime_ns:
                file.close()  # a stale FILE.gz is ignored
                return None
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            if entry.gz_static is None or entry.gz_static[0] != key:
                variant = self.variant(entry, st.st_size, st.st_mtime_ns, "-gz", [VARY, GZIP])
                entry.gz_static = (key, variant)
            return self.answer_file(entry.gz_static[1], headers, st.st_size, file, status, extra)
        except BaseException:
            file.close()
            raise

    def look_for_gz(self, entry: Resolved, now: float) -> None:
        """Whether a FILE.gz may be there, checked once a second; it changes the Vary field."""
        entry.gz_checked = now
        try:
            st = os.lstat(entry.path + ".gz")
            present = stat.S_ISREG(st.st_mode) and st.st_mtime_ns >= entry.mtime_ns
        except OSError:
            present = False
        if present != entry.gz_present:
            entry.gz_present = present
            entry.identity = self.identity(entry)

    @staticmethod
    def open(path: str) -> BinaryIO:
        try:
            return open(path, "rb", buffering=0)
        except OSError:
            raise NotServed(404) from None

    def type_fields(self, path: str) -> list[tuple[str, str]]:
        """Content-Type (first) and any fields that depend on what the file is.

        Called once per version of a file; a subclass may look at the content (the media
        store sniffs it and adds nosniff and attachment fields).
        """
        return [("Content-Type", content_type(path, self.options.types))]

    def refresh(self, entry: Resolved, st: os.stat_result, key: tuple) -> None:
        entry.stat_key = key
        entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
        entry.type_field, *entry.extra = self.type_fields(entry.path)
        options = self.options
        entry.compressible = (options.gzip and entry.type_field[1] in options.gzip_types
                              and options.gzip_min_length <= st.st_size <= GZIP_MAX_FILE
                              and not already_compressed(entry.type_field[1], entry.path))
        entry.gz_checked = NEVER
        entry.gz_present = False
        entry.identity = self.identity(entry)
        entry.gzipped = (self.variant(entry, st.st_size, st.st_mtime_ns, "-gz", [VARY, GZIP],
                                      ranges=False) if entry.compressible else None)
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

    def identity(self, entry: Resolved) -> Variant:
        """The file as it is; Vary when a gzip representation may be chosen instead."""
        coding = [VARY] if entry.compressible or entry.gz_present else []
        return self.variant(entry, entry.size, entry.mtime_ns, "", coding)

    def variant(self, entry: Resolved, size: int, mtime_ns: int, suffix: str,
                coding: list[tuple[str, str]], ranges: bool = True) -> Variant:
        """A representation's fields; ``ranges`` False for gzip made here (never ranged).

        The ETag is ``"<size hex>-<mtime ns hex>"`` of the file, with ``-gz`` for gzip.
        """
        etag = f'"{size:x}-{mtime_ns:x}{suffix}"'
        mtime = mtime_ns // 1_000_000_000
        last_modified = http_date(mtime)
        fields = [entry.type_field, ("Last-Modified", last_modified), ("ETag", etag),
                  *([self.accept_ranges] if ranges else []), *coding]
        if entry.cache_control is not None:
            fields.append(("Cache-Control", entry.cache_control))
        return Variant(fields + entry.extra, etag, last_modified, mtime)

    def compressed(self, entry: Resolved) -> bytes:
        """The gzip bytes of this file version, made on first use; b"" when not worth it."""
        key = (entry.path, entry.stat_key)
        data = self.gz_cache.get(key)
        if data is None:
            source = entry.body
            if source is None:
                source = self.read_version(entry)
                if source is None:
                    return b""  # changed under us: identity this time, gzip on the next
            data = gzip_bytes(source, STATIC_LEVEL)
            if len(data) >= len(source):
                data = b""
            self.gz_cache.put(key, data)
        if not data:
            entry.compressible = False
        return data

    def read_version(self, entry: Resolved) -> bytes | None:
        """The whole file, if it is still the version ``entry`` describes."""
        try:
            with open(entry.path, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_size, st.st_mtime_ns, st.st_ino) != entry.stat_key:
                    return None
                data = f.read(st.st_size + 1)
        except OSError:
            return None
        return data if len(data) == st.st_size else None

    def answer_file(self, variant: Variant, headers: dict[str, str], size: int, file: BinaryIO,
                    status: int, extra: list[tuple[str, str]] | tuple) -> Response:
        response = self.answer(variant, headers, size, None, file, status, extra)
        if response.file is None:
            file.close()
        return response

    def answer(self, variant: Variant, headers: dict[str, str], size: int, body: bytes | None,
               file: BinaryIO | None, status: int = 200,
               extra: list[tuple[str, str]] | tuple = ()) -> Response:
        """One representation, from ``body`` in memory or from ``file``: 304, 206 (one range
        or multipart), 416 or 200; an error page (``status`` >= 400) skips validators."""
        if status != 200:
            fields = [f for f in variant.fields if f[0] not in NOT_ON_ERRORS] + list(extra)
            return self.respond(Response(status, b"", fields), body, file, 0, size)
        if not_modified(headers, variant.etag, variant.mtime):
            return Response(304, b"", [f for f in variant.fields
                                       if f[0] != "Content-Type" and f[0] != "Content-Encoding"])
        fields = list(variant.fields)
        range_header = headers.get("range")
        if range_header is None or not if_range_holds(headers.get("if-range"), variant.etag,
                                                      variant.last_modified):
            return self.respond(Response(200, b"", fields), body, file, 0, size)
        ranges = parse_ranges(range_header, size, self.options.max_ranges)
        if ranges is None:
            return self.respond(Response(200, b"", fields), body, file, 0, size)
        if ranges == UNSATISFIABLE:
            return self.error(416, headers, [("Content-Range", f"bytes */{size}")])
        if len(ranges) == 1:
            start, length = ranges[0]
            fields.append(("Content-Range", f"bytes {start}-{start + length - 1}/{size}"))
            return self.respond(Response(206, b"", fields), body, file, start, length)
        multipart = Multipart(ranges, size, variant.fields[0][1])
        fields[0] = ("Content-Type", multipart.content_type)
        response = Response(206, b"", fields)
        if body is not None:
            response.body = multipart.body(body)
            response.length = multipart.length
        else:
            response.set_file_segments(file, multipart.segments(), multipart.length)
        return response

    @staticmethod
    def respond(response: Response, body: bytes | None, file: BinaryIO | None, start: int,
                length: int) -> Response:
        """Give ``response`` its bytes: a slice of ``body``, or of ``file`` for sendfile."""
        if body is not None:
            response.body = body if length == len(body) else body[start:start + length]
            response.length = length
        else:
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
