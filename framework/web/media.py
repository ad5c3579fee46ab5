"""The media store: user files on local disk under ``media_root``, served read-only at /media/.

Layout: ``media_root/<directory>/<name>``, where the directory is
the sniffed MIME subtype for uploads (``png/``, ``plain/``...) or an app's own (``memes/``).
Uploads are received into ``media_root/.incoming/`` (the multipart parser's spool directory):
the same file system, so moving a finished file into place is atomic, and a hidden directory,
so a half-written file is never served.

Saving follows "never a row without its file": the content is fsynced, linked under its final
name (``os.link`` fails instead of replacing, which makes name collisions race-free between
workers), the directory is fsynced, and only then is the caller's ``record`` run to insert the
row; if that fails, the file is unlinked.

With ``media_store = "s3://BUCKET/PREFIX"`` the files are objects in S3 instead (s3.py, the
same interface; boto3 is imported only then); the spool stays local.

Serving reuses ``StaticFiles`` (path safety, ETag, Range, HEAD) pointed at ``media_root``;
``MediaFiles`` types each file by its content and adds ``X-Content-Type-Options: nosniff``,
and ``Content-Disposition: attachment`` for anything but raster images and plain text, so an
uploaded page can never run in our origin.
"""
from __future__ import annotations

import os
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from framework.server.config import ConfigError
from framework.server.protocol import REASONS
from framework.web.app import ApiError, ApiRequest, App, Example, error_response
from framework.web.files import StaticFiles, StaticOptions
from framework.web.multipart import FilePart
from framework.web.responses import Response
from framework.web.sniff import HEAD_SIZE, MEDIA_TYPES, sniff
from framework.web.urls import percent_encode

T = TypeVar("T")

INCOMING = ".incoming"
MAX_NAME_BYTES = 200
SUFFIX_LENGTH = 7  # as Django's storage does on a collision: "name_AbC12xY.ext"
SUFFIX_ALPHABET = string.ascii_letters + string.digits
MAX_EXTENSION_BYTES = 16  # a longer "extension" is just part of the name when truncating
STALE_INCOMING_SECONDS = 3600.0  # spool files this old belong to no request any more
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"})
UNSAFE_NAME_CHARS = re.compile(r"[^-\w.]")
DIRECTORY = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def safe_name(filename: str) -> str:
    """A file name safe to store and to put in a URL, derived from what the client sent.

    The basename after both ``/`` and ``\\``; stripped; spaces become ``_``;
    characters outside ``[-\\w.]`` are dropped (``\\w`` is Unicode: non-ASCII letters stay);
    leading dots are dropped too (our static server never serves hidden files); what is left
    empty, ``.`` or ``..`` becomes ``file``; at most 200 bytes of UTF-8, keeping the extension.
    """
    base = re.split(r"[/\\]", filename)[-1].strip().replace(" ", "_")
    name = UNSAFE_NAME_CHARS.sub("", base).lstrip(".")
    if not name:
        name = "file"
    return truncate(name, MAX_NAME_BYTES)


def split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) + 1 > MAX_EXTENSION_BYTES:
        return name, ""
    return stem, "." + ext


def truncate(name: str, max_bytes: int, suffix: str = "") -> str:
    """``stem + suffix + extension`` cut to ``max_bytes`` of UTF-8 by shortening the stem."""
    stem, ext = split_extension(name)
    room = max_bytes - len(ext.encode()) - len(suffix.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore")  # never half a character
    return stem + suffix + ext


def with_random_suffix(name: str) -> str:
    suffix = "_" + "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return truncate(name, MAX_NAME_BYTES, suffix)


def fsync_path(path: str) -> None:
    """Flush a file's or a directory's content to disk (Linux allows it on a read-only fd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MediaStore:
    """Files under one ``media_root``; names are relative paths like ``png/cat.png``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.incoming = os.path.join(self.root, INCOMING)

    def prepare(self) -> None:
        """Create the directories and remove spool files left behind by a crash."""
        os.makedirs(self.incoming, exist_ok=True)
        cutoff = time.time() - STALE_INCOMING_SECONDS
        with os.scandir(self.incoming) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    def save(self, part: FilePart, directory: str, filename: str,
             record: Callable[[str], T]) -> T:
        """Move an uploaded part into ``directory`` under a unique safe name, then record it.

        ``filename`` goes through ``safe_name``; if the name is taken, a random suffix is
        added. ``record(rel_path)`` writes the database row (its result is returned); if it
        raises, the file is removed and the exception propagates.
        """
        target = self.directory(directory)
        fsync_path(part.path)
        os.chmod(part.path, 0o644)
        name = self.link_unique(part.path, target, safe_name(filename))
        os.unlink(part.path)
        fsync_path(target)
        rel_path = f"{directory}/{name}"
        try:
            return record(rel_path)
        except BaseException:
            os.unlink(os.path.join(target, name))
            raise

    def directory(self, directory: str) -> str:
        if not DIRECTORY.fullmatch(directory):
            raise ValueError(f"invalid media directory {directory!r}")
        path = os.path.join(self.root, directory)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def link_unique(source: str, target: str, name: str) -> str:
        candidate = name
        for _ in range(100):
            try:
                os.link(source, os.path.join(target, candidate))
                return candidate
            except FileExistsError:
                candidate = with_random_suffix(name)
        raise FileExistsError(f"no free name for {name!r} in {target}")

    def path(self, rel_path: str) -> str:
        """The absolute path of a stored file; refuses names that could leave the store."""
        parts = rel_path.split("/")
        if len(parts) != 2 or not DIRECTORY.fullmatch(parts[0]) or parts[1] in ("", ".", "..") \
                or parts[1].startswith(".") or "\\" in parts[1] or "\x00" in parts[1]:
            raise ValueError(f"invalid media path {rel_path!r}")
        return os.path.join(self.root, parts[0], parts[1])

    @contextmanager
    def local_copy(self, rel_path: str) -> Iterator[str]:
        """A local file with the stored content, for readers that need one (the file itself)."""
        yield self.path(rel_path)

    def remove(self, rel_path: str) -> bool:
        """Delete a stored file; False if it was already gone."""
        try:
            os.unlink(self.path(rel_path))
        except FileNotFoundError:
            return False
        return True

    def names(self, directory: str) -> list[str]:
        """The relative paths of the files stored in ``directory`` (for orphan sweeps)."""
        try:
            with os.scandir(os.path.join(self.root, directory)) as entries:
                return sorted(f"{directory}/{e.name}" for e in entries
                              if e.is_file(follow_symlinks=False) and not e.name.startswith("."))
        except FileNotFoundError:
            return []


_stores: dict[str, MediaStore] = {}


def media_store(settings: dict[str, Any]) -> MediaStore:
    """This process's store for ``settings["media_root"]`` (and ``media_store``)."""
    location = settings.get("media_store", "local")
    root = settings["media_root"]
    store = _stores.get(location + "\0" + root)
    if store is None:
        if location == "local":
            store = MediaStore(root)
        else:
            from framework.web.s3 import S3MediaStore  # boto3 only when configured
            store = S3MediaStore(settings)
        _stores[location + "\0" + root] = store
    return store


def media_url(req: ApiRequest, rel_path: str) -> str:
    """The absolute URL of a stored file, e.g. ``http://host/media/plain/caf%C3%A9.txt``."""
    return req.url("/media/" + percent_encode(rel_path))


def prepare_media(settings: dict[str, Any]) -> None:
    """Start-up check: the store must lie outside DOCUMENT_ROOT; create it, sweep the spool."""
    media = os.path.realpath(settings["media_root"])
    docroot = os.path.realpath(settings["document_root"])
    if media == docroot or media.startswith(docroot + os.sep):
        raise ConfigError(f"media_root {media} must not lie inside document_root {docroot}")
    media_store(settings).prepare()


# -- serving ---------------------------------------------------------------------------------

class MediaFiles(StaticFiles):
    """Static serving of the media store, typed by content and safe to open in a browser."""

    def type_fields(self, path: str) -> list[tuple[str, str]]:
        return serving_fields(read_head(path))


def read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_SIZE)
    except OSError:
        return b""  # gone since it was resolved; serving it fails with a 404 next


def served_type(mime: str) -> str:
    """The Content-Type a file of this sniffed type is served with."""
    return mime + "; charset=utf-8" if mime == "text/plain" else mime


def serving_fields(head: bytes) -> list[tuple[str, str]]:
    """Content-Type, nosniff, and ``attachment`` unless a raster image or plain text."""
    return mime_fields(sniff(head).mime)


def mime_fields(mime: str) -> list[tuple[str, str]]:
    """The fields of ``serving_fields`` for a type sniffed before (stored with an object)."""
    fields = [("Content-Type", served_type(mime)), ("X-Content-Type-Options", "nosniff")]
    if mime not in INLINE_TYPES:
        fields.append(("Content-Disposition", "attachment"))
    return fields


_servers: dict[str, MediaFiles] = {}


def serve_media(req: ApiRequest, rel_path: str) -> Response:
    """Answer GET/HEAD for a stored file; errors in the JSON envelope, no directory views."""
    store = media_store(req.settings)
    if hasattr(store, "answer"):  # S3: streamed from the bucket, or a presigned redirect
        return envelope_errors(store.answer(req.method, rel_path, req.headers))
    root = req.settings["media_root"]
    server = _servers.get(root)
    if server is None:
        # users' files: no FILE.gz stand-ins (one upload must not replace another's bytes),
        # and none of the document root's pages, types or caching rules
        options = StaticOptions.from_settings(req.settings, gzip_static=False, cache_control={},
                                              error_pages={}, fallback_file="", mime_types={},
                                              index=["index.html"])
        server = _servers[root] = MediaFiles(root, req.settings["static_cache_size"], options)
    response = server.handle(req.method, "/" + percent_encode(rel_path), "", req.headers)
    if response.status == 301:  # a directory: the store lists nothing
        raise ApiError(404, "no such file")
    return envelope_errors(response)


def envelope_errors(response: Response) -> Response:
    if response.status >= 400:
        fields = [f for f in response.headers if f[0] != "Content-Type"]
        return error_response(response.status, REASONS.get(response.status, "error"), None,
                              fields)
    return response


# how a stored file is answered, for the docs (see StaticFiles.answer and serving_fields)
MEDIA_HEADERS = {
    "ETag": {"required": True, "schema": {"type": "string"}, "description": "of this version"},
    "Last-Modified": {"required": True, "schema": {"type": "string"}},
    "X-Content-Type-Options": {"required": True, "schema": {"type": "string", "enum": ["nosniff"]}},
    "Content-Disposition": {"schema": {"type": "string", "enum": ["attachment"]},
                            "description": "for anything but raster images and plain text"},
}
CONDITIONAL_HEADERS = {
    "Range": {"in": "header", "type": "string", "example": "bytes=0-99",
              "description": "one byte range (206); several ranges get the whole file"},
    "If-None-Match": {"in": "header", "type": "string", "description": "an ETag seen before (304)"},
}
MEDIA_RESPONSES = {206: "the requested range (Content-Range says which)",
                   304: "unchanged since the ETag or date given",
                   400: "a malformed escape in the name", 403: "outside the media store",
                   404: "no such file", 416: "the range lies outside the file"}


def mount(app: App, directory: str | None = None, media_types: tuple[str, ...] = MEDIA_TYPES,
          example: Example | None = None) -> None:
    """Serve the store at ``/media/<path>`` from ``app``, and prepare it at start-up.

    Uploads (app C) mount the whole store; an app that serves one directory of it mounts
    ``/media/<directory>/<name>`` (memes: ``mount(app, "memes")``), so both can be enabled
    together without claiming the same route. ``media_types`` are the types its files can
    have (for the docs: every type the sniffer knows, unless the app stores fewer).
    """
    prefix = "/media/" if directory is None else f"/media/{directory}/"

    @app.get(prefix + "<path:name>", media_type=tuple(served_type(t) for t in media_types),
             response_schema={"type": "string", "format": "binary"}, query=CONDITIONAL_HEADERS,
             response_headers=MEDIA_HEADERS, responses=MEDIA_RESPONSES,
             example=example or Example(params={"name": "plain/notes.txt"}, response="hello\n",
                                        media_type="text/plain; charset=utf-8"))
    def media_file(req: ApiRequest, name: str) -> Response:
        """A stored file, read-only (ETag, Range and HEAD as for static files).

        Content-Type is detected from the content; every answer carries
        X-Content-Type-Options: nosniff, and anything but PNG, JPEG, GIF, WebP or plain text
        is sent as an attachment.
        """
        return serve_media(req, name if directory is None else f"{directory}/{name}")

    app.on_startup(prepare_media)
