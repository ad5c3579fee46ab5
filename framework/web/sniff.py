"""What a file is, from its first bytes: our replacement for python-magic.

``sniff(head)`` looks at the first ``HEAD_SIZE`` bytes of a file and names its MIME type and
the storage directory (the MIME subtype, as sorting by python-magic does). The client's
Content-Type and the file name are never consulted. ``image_size`` reads the pixel size of a
PNG, GIF or JPEG from its header, for the uploads processor and anyone else who needs it.
"""
from __future__ import annotations

import codecs
import struct
from typing import BinaryIO, NamedTuple

HEAD_SIZE = 2048  # bytes looked at: the signatures, and enough text to tell text from binary
OCTET_STREAM = "application/octet-stream"

# (offset, signature, MIME type); the first match wins, so longer signatures come first.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"OggS\x00", "audio/ogg"),  # the NUL is the stream structure version
    (4, b"ftyp", "video/mp4"),
)
RIFF_FORMATS = {b"WEBP": "image/webp", b"WAVE": "audio/wav"}
# An ID3v2 tag ("ID3" + major version 2..4) or a bare MPEG audio frame sync (layer III).
MPEG_AUDIO = (b"ID3\x02", b"ID3\x03", b"ID3\x04", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
# Markup that browsers would render; only told apart so it is stored and served as what it is.
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<title",
               b"<iframe")
BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)  # BITMAPCOREHEADER ... BITMAPV5HEADER
JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF})  # start-of-frame markers; C4, C8 and CC are other segments
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field


class Sniffed(NamedTuple):
    mime: str  # e.g. "image/png"
    subtype: str  # the storage directory, e.g. "png", "plain", "octet-stream"


def sniff(head: bytes) -> Sniffed:
    """Detect the type of a file from its first bytes (``HEAD_SIZE`` are enough)."""
    mime = detect_mime(head)
    return Sniffed(mime, mime.partition("/")[2])


def detect_mime(head: bytes) -> str:
    for offset, signature, mime in SIGNATURES:
        if head.startswith(signature, offset):
            return mime
    if head[:4] == b"RIFF" and head[8:12] in RIFF_FORMATS:
        return RIFF_FORMATS[head[8:12]]
    if head.startswith(MPEG_AUDIO):
        return "audio/mpeg"
    if is_bmp(head):
        return "image/bmp"
    if head and is_text(head):
        return text_mime(head)
    return OCTET_STREAM


def is_bmp(head: bytes) -> bool:
    """"BM" alone would claim any text starting with "BMW"; check the reserved words and
    the DIB header size too."""
    if len(head) < 18 or head[:2] != b"BM" or head[6:10] != b"\x00\x00\x00\x00":
        return False
    return struct.unpack_from("<I", head, 14)[0] in BMP_HEADER_SIZES


def is_text(head: bytes) -> bool:
    """No NUL bytes and valid UTF-8; a character cut by the end of the head is allowed."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def text_mime(head: bytes) -> str:
    start = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if start.startswith(HTML_STARTS):
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in start):
        return "image/svg+xml"
    if start.startswith(b"<?xml"):
        return "text/xml"
    return "text/plain"


# Every type detect_mime can answer, for the API docs of the media routes (tested).
MEDIA_TYPES = tuple(dict.fromkeys([
    *(mime for _, _, mime in SIGNATURES), *RIFF_FORMATS.values(), "audio/mpeg", "image/bmp",
    "text/html", "image/svg+xml", "text/xml", "text/plain", OCTET_STREAM]))


def image_size(file: BinaryIO, mime: str) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG read from ``file`` (seekable); None if unknown.

    PNG keeps the size in its first chunk (IHDR) and GIF in its screen descriptor; JPEG keeps
    it in the start-of-frame segment, which may follow large EXIF blocks, so the segments are
    walked by their lengths rather than looked for in the head.
    """
    file.seek(0)
    if mime == "image/png":
        header = file.read(24)
        if len(header) == 24 and header[12:16] == b"IHDR":
            return struct.unpack(">II", header[16:24])
        return None
    if mime == "image/gif":
        header = file.read(10)
        return struct.unpack("<HH", header[6:10]) if len(header) == 10 else None
    if mime == "image/jpeg":
        return jpeg_size(file)
    return None


def jpeg_size(file: BinaryIO) -> tuple[int, int] | None:
    if file.read(2) != b"\xff\xd8":
        return None
    while True:
        byte = file.read(1)
        if byte != b"\xff":
            return None  # not at a marker: a damaged file
        marker = file.read(1)
        while marker == b"\xff":  # fill bytes before the marker code
            marker = file.read(1)
        if not marker or marker == b"\xd9":  # end of file, or end of image before a frame
            return None
        code = marker[0]
        if code in JPEG_STANDALONE:
            continue
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if length < 2:
            return None
        if code in JPEG_SOF:
            frame = file.read(5)  # precision, height, width
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        file.seek(length - 2, 1)
