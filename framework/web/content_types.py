"""The Content-Type of a static file, by its extension (case-insensitive).

Our own table rather than ``mimetypes``, whose answers depend on the host's /etc/mime.types
(Debian's maps .swf to the wrong type, for one). The ``mime_types`` setting is merged over it,
and text types are labelled UTF-8 unless the configured type names a charset itself.
"""
from __future__ import annotations

DEFAULT = "application/octet-stream"

TYPES = {
    # text and the web
    "html": "text/html", "htm": "text/html", "css": "text/css", "js": "application/javascript",
    "mjs": "application/javascript", "json": "application/json", "map": "application/json",
    "txt": "text/plain", "text": "text/plain", "csv": "text/csv", "md": "text/markdown",
    "xml": "application/xml", "xhtml": "application/xhtml+xml", "rss": "application/rss+xml",
    "atom": "application/atom+xml", "webmanifest": "application/manifest+json",
    "wasm": "application/wasm", "ics": "text/calendar", "vtt": "text/vtt",
    # images
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "svg": "image/svg+xml", "svgz": "image/svg+xml", "ico": "image/x-icon",
    "webp": "image/webp", "avif": "image/avif", "bmp": "image/bmp", "tif": "image/tiff",
    "tiff": "image/tiff",
    # fonts
    "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    # audio and video
    "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "wav": "audio/wav",
    "flac": "audio/flac", "m4a": "audio/mp4", "aac": "audio/aac", "mp4": "video/mp4",
    "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg", "mov": "video/quicktime",
    "avi": "video/x-msvideo", "mpeg": "video/mpeg", "mpg": "video/mpeg",
    # documents, archives, flash
    "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
    "tgz": "application/gzip", "tar": "application/x-tar", "bz2": "application/x-bzip2",
    "xz": "application/x-xz", "7z": "application/x-7z-compressed", "rar": "application/vnd.rar",
    "doc": "application/msword", "rtf": "application/rtf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "swf": "application/x-shockwave-flash",
}

# types whose bytes are text in some charset, besides text/*
TEXT_TYPES = frozenset({"application/javascript", "application/json", "application/xml"})


def content_type(name: str, table: dict[str, str] = TYPES) -> str:
    dot = name.rfind(".")
    if dot < 0 or "/" in name[dot:]:
        return table.get("", DEFAULT)
    return table.get(name[dot + 1:].lower(), table.get("", DEFAULT))


def is_text(mime: str) -> bool:
    """text/*, JavaScript, JSON and XML, the +json and +xml application types included."""
    base = mime.partition(";")[0].strip().lower()
    return (base.startswith("text/") or base in TEXT_TYPES
            or (base.startswith("application/") and base.endswith(("+json", "+xml"))))


def with_charset(mime: str) -> str:
    """``mime`` with ``charset=utf-8`` added to a text type that does not name a charset."""
    if not is_text(mime) or "charset=" in mime.lower().replace(" ", ""):
        return mime
    return mime + "; charset=utf-8"


def merged_table(overrides: dict[str, str]) -> dict[str, str]:
    """The built-in table with ``mime_types`` (keys like ``".wasm"``) over it, charsets added.

    Keys are extensions without the dot, lower-case; "" holds the type of unknown files.
    """
    table = {**TYPES, **{ext[1:].lower(): mime for ext, mime in overrides.items()}}
    return {ext: with_charset(mime) for ext, mime in table.items()} | {"": DEFAULT}
