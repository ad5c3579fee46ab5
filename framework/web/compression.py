"""gzip content coding: who accepts it (RFC 9110 §12.5.3), what is worth compressing, and the
compressed bytes of static files, kept once per file version within a memory budget.

Compression runs with ``zlib`` in gzip framing and mtime 0, so every worker produces the very
same bytes for the same file and the ``-gz`` ETag names one representation everywhere.
"""
from __future__ import annotations

import zlib
from collections import OrderedDict

from framework.web.responses import Response

VARY = ("Vary", "Accept-Encoding")
GZIP = ("Content-Encoding", "gzip")
STATIC_LEVEL = 6  # static files are compressed once per version: worth a better ratio
DYNAMIC_LEVEL = 1  # app answers are compressed per request, as nginx's default level
GZIP_MAX_FILE = 8 * 1024 * 1024  # larger files go out as they are (or as their FILE.gz)
GZIP_CACHE_BYTES = 32 * 1024 * 1024  # compressed bytes kept per worker

# types whose content is compressed already: gzip would only cost CPU
COMPRESSED_TYPES = frozenset({
    "application/zip", "application/gzip", "application/x-gzip", "application/x-bzip2",
    "application/x-xz", "application/x-7z-compressed", "application/vnd.rar", "application/zstd",
    "application/pdf", "application/x-shockwave-flash", "font/woff", "font/woff2",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
})
COMPRESSED_EXTENSIONS = frozenset({"gz", "tgz", "svgz", "zip", "bz2", "xz", "zst", "br", "7z",
                                   "rar"})

ACCEPT_CACHE_SIZE = 256
_accepts: dict[str, bool] = {}


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when the client takes gzip: listed (or ``x-gzip``, or ``*``) with q > 0, and not
    ranked below an explicitly listed ``identity``. Remembered per distinct header value."""
    if not accept_encoding:
        return False
    known = _accepts.get(accept_encoding)
    if known is None:
        known = _parse_accept(accept_encoding)
        if len(_accepts) >= ACCEPT_CACHE_SIZE:
            _accepts.clear()
        _accepts[accept_encoding] = known
    return known


def _parse_accept(value: str) -> bool:
    qualities: dict[str, float] = {}
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, text = param.partition("=")
            if name.strip().lower() == "q":
                q = qvalue(text.strip())
        if coding == "x-gzip":  # an alias of gzip (RFC 9110 §8.4.1.3)
            coding = "gzip"
        qualities[coding] = max(q, qualities.get(coding, 0.0))
    gzip_q = qualities.get("gzip", qualities.get("*", 0.0))
    return gzip_q > 0 and gzip_q >= qualities.get("identity", 0.0)


def qvalue(text: str) -> float:
    """A weight (RFC 9110 §12.4.2): 0 to 1 with at most three decimals; anything else is 0."""
    whole, _, decimals = text.partition(".")
    if (whole not in ("0", "1") or len(decimals) > 3
            or (decimals and not (decimals.isascii() and decimals.isdigit()))):
        return 0.0
    q = float(text)
    return q if q <= 1.0 else 0.0


class TypeSet:
    """The ``gzip_types`` patterns: exact types, ``main/*`` wildcards, or ``*`` for all."""

    def __init__(self, patterns: list[str] | tuple[str, ...]) -> None:
        lowered = [p.strip().lower() for p in patterns]
        self.any = "*" in lowered or "*/*" in lowered
        self.exact = frozenset(p for p in lowered if not p.endswith("/*"))
        self.mains = tuple(p[:-1] for p in lowered if p.endswith("/*"))

    def __contains__(self, mime: str) -> bool:
        base = mime.partition(";")[0].strip().lower()
        return self.any or base in self.exact or base.startswith(self.mains)


def already_compressed(mime: str, path: str) -> bool:
    """Raster images, audio, video, archives and their like: never compressed again."""
    base = mime.partition(";")[0].strip().lower()
    main = base.partition("/")[0]
    if main in ("image", "audio", "video") and not base.endswith("+xml"):
        return True
    extension = path.rpartition(".")[2].lower() if "." in path.rpartition("/")[2] else ""
    return base in COMPRESSED_TYPES or extension in COMPRESSED_EXTENSIONS


def gzip_bytes(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip framing, mtime 0
    return compressor.compress(data) + compressor.flush()


class GzipCache:
    """Compressed bytes per file version, least recently used dropped past ``budget`` bytes.

    A value of ``b""`` records a version not worth compressing (gzip made it no smaller).
    """

    def __init__(self, budget: int = GZIP_CACHE_BYTES) -> None:
        self.budget = budget
        self.size = 0
        self.items: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        data = self.items.get(key)
        if data is not None:
            self.items.move_to_end(key)
        return data

    def put(self, key: tuple, data: bytes) -> None:
        if len(data) > self.budget:
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self.items[key] = data
        self.size += len(data)
        while self.size > self.budget:
            _, dropped = self.items.popitem(last=False)
            self.size -= len(dropped)


def compress_app_response(response: Response, accept_encoding: str | None, min_length: int,
                          types: TypeSet) -> None:
    """gzip an app's answer in place: a body of a ``gzip_types`` type (JSON by default) of at
    least ``min_length`` bytes, when the client accepts it. Answers that carry their own
    validators or coding (a media file) are left alone: their ETag names their bytes."""
    if (response.file is not None or len(response.body) < min_length
            or response.status in (204, 206, 304)):
        return
    mime = response.header("Content-Type")
    if (mime is None or mime not in types or response.header("Content-Encoding") is not None
            or response.header("ETag") is not None or response.header("Content-Range") is not None):
        return
    response.headers.append(VARY)
    if not accepts_gzip(accept_encoding):
        return
    data = gzip_bytes(response.body, DYNAMIC_LEVEL)
    if len(data) < len(response.body):
        response.body = data
        response.length = len(data)
        response.headers.append(GZIP)
