"""SQL of the uploads app: the files table as the upload handler, the list and the processor
use it. Every write is one short transaction (BEGIN IMMEDIATE).

On PostgreSQL a processor runs in every instance: a job is claimed with ``FOR UPDATE SKIP
LOCKED`` (two processors never take the same row) and marked with the claiming session's
backend pid, so that a claim whose session is gone (its processor killed mid-job, or its
host lost) is given back by ``recover``, which every processor runs at start and while idle.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from framework.web.db import transaction
from framework.web.validate import timestamp


class Claimed(NamedTuple):
    id: int
    rel_path: str
    attempts: int


def insert_file(conn: Any, rel_path: str, original_name: str, mime_type: str,
                size: int) -> str:
    """Record a stored file as pending; returns its uploaded_at."""
    uploaded_at = timestamp()
    with transaction(conn):
        conn.execute("INSERT INTO files (rel_path, original_name, mime_type, size, uploaded_at) "
                     "VALUES (?, ?, ?, ?, ?)",
                     (rel_path, original_name, mime_type, size, uploaded_at))
    return uploaded_at


def count_files(conn: Any) -> int:
    return conn.execute("SELECT count(*) FROM files").fetchone()[0]


def list_files(conn: Any, limit: int, offset: int) -> list[tuple[str, str, str]]:
    """(rel_path, uploaded_at, status) in upload order."""
    return conn.execute("SELECT rel_path, uploaded_at, status FROM files ORDER BY id "
                        "LIMIT ? OFFSET ?", (limit, offset)).fetchall()


# -- the processor's side ----------------------------------------------------------------------

# PostgreSQL: a claim is abandoned when no session has the pid that made it
ABANDONED = {"sqlite": "",
             "postgresql": " AND (claimed_by IS NULL OR claimed_by NOT IN "
                           "(SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))"}
CLAIM = {
    "sqlite": "UPDATE files SET status = 'processing', attempts = attempts + 1 "
              "WHERE id = (SELECT id FROM files WHERE status = 'pending' ORDER BY id LIMIT 1) "
              "RETURNING id, rel_path, attempts",
    "postgresql": "UPDATE files SET status = 'processing', attempts = attempts + 1, "
                  "claimed_by = pg_backend_pid() "
                  "WHERE id = (SELECT id FROM files WHERE status = 'pending' ORDER BY id "
                  "LIMIT 1 FOR UPDATE SKIP LOCKED) "
                  "RETURNING id, rel_path, attempts",
}


def recover(conn: Any, max_attempts: int) -> int:
    """After a crash: files left 'processing' go back to 'pending' (or 'failed' once they
    have used up their attempts, so a file that kills the processor cannot loop forever).
    On PostgreSQL only the claims of sessions that are gone: other instances' processors
    may be at work on theirs."""
    with transaction(conn):
        return conn.execute("UPDATE files SET status = CASE WHEN attempts >= ? THEN 'failed' "
                            "ELSE 'pending' END WHERE status = 'processing'"
                            + ABANDONED[conn.dialect], (max_attempts,)).rowcount


def claim(conn: Any) -> Claimed | None:
    """Take the oldest pending file, or None. A plain read first, so an idle processor
    never takes the write lock."""
    if conn.execute("SELECT 1 FROM files WHERE status = 'pending' LIMIT 1").fetchone() is None:
        return None
    with transaction(conn):
        rows = conn.execute(CLAIM[conn.dialect]).fetchall()
    return Claimed(*rows[0]) if rows else None


def complete(conn: Any, file_id: int, size: int, sha256: str, mime_type: str,
             meta: dict[str, Any]) -> None:
    with transaction(conn):
        conn.execute("UPDATE files SET status = 'done', processed_at = ?, size = ?, sha256 = ?, "
                     "mime_type = ?, meta = ? WHERE id = ? AND status = 'processing'",
                     (timestamp(), size, sha256, mime_type,
                      json.dumps(meta, separators=(",", ":")), file_id))


def fail(conn: Any, file_id: int, max_attempts: int) -> str:
    """A failed run: back to 'pending' for a retry, or 'failed' for good. Returns which."""
    with transaction(conn):
        rows = conn.execute("UPDATE files SET status = CASE WHEN attempts >= ? THEN 'failed' "
                            "ELSE 'pending' END WHERE id = ? AND status = 'processing' "
                            "RETURNING status", (max_attempts, file_id)).fetchall()
    return rows[0][0] if rows else "gone"


def release(conn: Any, file_id: int) -> None:
    """Give back a file claimed but not worked on (the processor is stopping)."""
    with transaction(conn):
        conn.execute("UPDATE files SET status = 'pending', attempts = attempts - 1 "
                     "WHERE id = ? AND status = 'processing'", (file_id,))
