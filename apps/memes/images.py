"""The memes' image files: a private media service over the shared media
store (put, delete, sweep of blobs under ``MEDIA_ROOT/memes/``), served at /media/memes/<key>.

A key is ``<uuid4>.<png|jpg>``. Writers hold a shared lock on the directory from the moment
a new file appears until its row is committed; the start-up sweep holds it exclusively, so
it can never take a file whose row is about to be written for an orphan (on a reload, the
old workers are still serving while the master sweeps).
"""
from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from apps.memes.store import image_keys
from framework.web import db
from framework.web.media import media_store
from framework.web.multipart import FilePart

T = TypeVar("T")

DIRECTORY = "memes"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}

log = logging.getLogger("httpd.memes")


def url_path(key: str) -> str:
    return f"/media/{DIRECTORY}/{key}"


def spool_dir(settings: dict[str, Any]) -> str:
    """Where the multipart parser writes uploads: the store's file system, so moves are atomic."""
    return media_store(settings).incoming


def put(settings: dict[str, Any], part: FilePart, mime: str, record: Callable[[str], T]) -> T:
    """Store an uploaded image under a new key, then run ``record(key)`` to write its row.

    If ``record`` raises, the file is removed again and the exception propagates.
    """
    key = f"{uuid.uuid4().hex}.{EXTENSIONS[mime]}"
    with locked(settings, fcntl.LOCK_SH):
        return media_store(settings).save(part, DIRECTORY, key,
                                          lambda rel_path: record(rel_path.partition("/")[2]))


def remove(settings: dict[str, Any], key: str) -> None:
    media_store(settings).remove(f"{DIRECTORY}/{key}")


def sweep(settings: dict[str, Any]) -> None:
    """Remove the image files that no meme references (a crash between file and row)."""
    store = media_store(settings)
    with locked(settings, fcntl.LOCK_EX):
        referenced = image_keys(db.connection(settings))
        for rel_path in store.names(DIRECTORY):
            if rel_path.partition("/")[2] not in referenced:
                store.remove(rel_path)
                log.warning("removed orphan meme image %s", rel_path)


@contextmanager
def locked(settings: dict[str, Any], operation: int) -> Iterator[None]:
    """flock on the memes directory itself (no lock file to serve or to sweep)."""
    fd = os.open(media_store(settings).directory(DIRECTORY), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
