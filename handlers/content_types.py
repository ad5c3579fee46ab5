"""The Content-Type of a static file, by its extension (case-insensitive).

Our own table rather than ``mimetypes``, whose answers depend on the host's /etc/mime.types
(Debian's maps .swf to the wrong type, for one).
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

def content_type(name: str) -> str:
    dot = name.rfind(".")
    if dot < 0 or "/" in name[dot:]:
        return DEFAULT
    return TYPES.get(name[dot + 1:].lower(), DEFAULT)
