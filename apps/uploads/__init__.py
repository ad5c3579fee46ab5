"""File uploads: POST /upload/, GET /files/, /media/, and processing in the background."""
from apps.uploads import processor  # noqa: F401  (declares the background service on ``app``)
from apps.uploads.routes import app

MiB = 1024 * 1024

SETTINGS = {
    "upload_max_body": (100 * MiB, int, "body limit of POST /upload/ in bytes (413 past it)"),
    "upload_poll_interval": (0.15, float,
                             "seconds between the uploads processor's looks for pending files"),
    "upload_processing_delay": (0.0, float, ("extra seconds the processor waits before each "
                                             "file (to watch pending work; 0 in production)")),
    "upload_max_retries": (3, int, "retries of a file whose processing failed, then 'failed'"),
}

__all__ = ["SETTINGS", "app"]
