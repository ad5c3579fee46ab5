"""The uploads processor: a background process that marks files processed.

The master forks it beside the workers (``@app.service``) and restarts it if it dies. It
claims pending files oldest first, does the real work (size, sha256, detected MIME type,
image dimensions), and commits 'done'; a failed run is retried up to ``upload_max_retries``
times, then the file stays 'failed'. Files a dead processor left 'processing' are put back
to 'pending' when it starts again, so no work is lost to a crash or a restart.

TERM and INT are blocked and only collected while waiting (``sigtimedwait``), so a stop never
lands in the middle of a transaction or of a file: the processor finishes the file in hand,
or gives back the one it was only waiting on, and exits.
"""
from __future__ import annotations

import hashlib
import logging
import signal
import time
from typing import Any

from apps.uploads import store
from apps.uploads.routes import app
from framework.web import db, media
from framework.web.sniff import HEAD_SIZE, image_size, sniff

log = logging.getLogger("httpd.uploads")

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
READ_SIZE = 1024 * 1024
RECOVER_EVERY = 2.0  # seconds between idle looks for claims of dead sessions (PostgreSQL)
PROCESS_NAME = b"uploads-proc"  # what ps and top show for this process


@app.service("uploads-processor")
def run_processor(settings: dict[str, Any]) -> None:
    Processor(settings).run()


class Processor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.store = media.media_store(settings)
        self.poll_interval = settings["upload_poll_interval"]
        self.delay = settings["upload_processing_delay"]
        self.max_attempts = 1 + settings["upload_max_retries"]

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        name_process(PROCESS_NAME)
        self.recover()
        recovered_at = time.monotonic()
        while True:
            claimed = store.claim(self.conn)
            if claimed is None:
                # with PostgreSQL other instances' processors may die mid-job at any time
                if (self.conn.dialect == "postgresql"
                        and time.monotonic() - recovered_at > RECOVER_EVERY):
                    self.recover()
                    recovered_at = time.monotonic()
                if self.stop_requested(self.poll_interval):
                    return
                continue
            if self.delay and self.stop_requested(self.delay):
                store.release(self.conn, claimed.id)
                return
            self.process(claimed)
            if self.stop_requested(0):
                return

    @property
    def conn(self) -> Any:
        return db.connection(self.settings)  # opened again if a PostgreSQL connection broke

    def recover(self) -> None:
        recovered = store.recover(self.conn, self.max_attempts)
        if recovered:
            log.info("uploads processor: %d interrupted file(s) back in the queue", recovered)

    @staticmethod
    def stop_requested(timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for TERM/INT; True if one came (now or earlier)."""
        return signal.sigtimedwait(STOP_SIGNALS, timeout) is not None

    def process(self, claimed: store.Claimed) -> None:
        try:
            with self.store.local_copy(claimed.rel_path) as path:  # S3: downloaded
                size, digest, mime, meta = inspect(path)
        except (OSError, ValueError) as exc:
            status = store.fail(self.conn, claimed.id, self.max_attempts)
            log.warning("uploads processor: %s (attempt %d) failed: %s; now %s",
                        claimed.rel_path, claimed.attempts, exc, status)
            return
        store.complete(self.conn, claimed.id, size, digest, mime, meta)


def inspect(path: str) -> tuple[int, str, str, dict[str, Any]]:
    """Read a stored file once: (size, sha256 hex, detected MIME type, metadata)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        head = f.read(HEAD_SIZE)
        chunk = head
        while chunk:
            digest.update(chunk)
            size += len(chunk)
            chunk = f.read(READ_SIZE)
        mime = sniff(head).mime
        meta: dict[str, Any] = {}
        dimensions = image_size(f, mime)
        if dimensions is not None:
            meta["width"], meta["height"] = dimensions
    return size, digest.hexdigest(), mime, meta


def name_process(name: bytes) -> None:
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name)
    except OSError:
        pass  # cosmetic; not every system has it

