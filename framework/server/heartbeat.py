"""The worker's sign of life, which the master's watchdog reads (``worker_timeout``).

The epoll loop beats once a second. Long request work beats too, by calling ``beat()`` as
it makes progress: the validation kit every few thousand items, and the database through
SQLite's progress handler while a statement runs. So a handler that is working, however
long, keeps its worker alive, while a loop that is truly stuck (an infinite Python loop, a
deadlock, a blocking call that never returns) stops beating and is killed.
"""
from __future__ import annotations

import os
import time

_fd = -1
_next = 0.0
INTERVAL = 1.0


def install(fd: int) -> None:
    """In a worker: the file whose mtime the master watches."""
    global _fd, _next
    _fd = fd
    _next = 0.0


def beat() -> None:
    """Refresh the heartbeat, at most once a second; a no-op outside a worker. Cheap."""
    global _next
    if _fd < 0:
        return
    now = time.monotonic()
    if now >= _next:
        _next = now + INTERVAL
        os.utime(_fd)


def progress_handler() -> int:
    """For ``sqlite3.Connection.set_progress_handler``: beats; 0 lets the statement go on."""
    beat()
    return 0


def _forget() -> None:
    global _fd
    _fd = -1  # a child of a worker (none today) would not be the worker the master watches


os.register_at_fork(after_in_child=_forget)
