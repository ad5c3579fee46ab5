"""sqlite3 for a prefork server: one connection per process, opened after fork.

Writes go through ``transaction()``, which takes the write lock up front (BEGIN IMMEDIATE)
so a read-modify-write can never be overtaken, and rolls back on any error. Each app ships
its schema as numbered migrations, applied once at start-up and recorded per app.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from framework.server import heartbeat

log = logging.getLogger("httpd.db")
PROGRESS_STEPS = 1_000_000  # SQLite VM steps between heartbeats (about a few ms of work)

_connection: sqlite3.Connection | None = None


def _forget_connection() -> None:
    global _connection
    _connection = None  # a child process opens its own; sqlite handles must not cross a fork


os.register_at_fork(after_in_child=_forget_connection)


def open_connection(settings: dict[str, Any]) -> sqlite3.Connection:
    path = settings["database"]
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=settings["sqlite_busy_timeout"] / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(settings['sqlite_busy_timeout'])}")
    synchronous = settings["sqlite_synchronous"].upper()
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):  # validated by config too
        raise ValueError(synchronous)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    # a long statement (a huge import) keeps the worker's heartbeat going; a stuck one not
    conn.set_progress_handler(heartbeat.progress_handler, PROGRESS_STEPS)
    return conn


def connection(settings: dict[str, Any]) -> sqlite3.Connection:
    """This process's connection, opened on first use (so never inherited across a fork)."""
    global _connection
    if _connection is None:
        _connection = open_connection(settings)
    return _connection


def close_connection() -> None:
    global _connection
    if _connection is not None:
        _connection.close()
    _connection = None


def is_contention(exc: BaseException) -> bool:
    """True for "database is locked/busy": another process held the write lock too long."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc))


def abandon_transaction() -> None:
    """Roll back a transaction a request left open, so it cannot leak into the next request.

    The dispatcher calls this after every handler; normally there is nothing to do.
    """
    if _connection is not None and _connection.in_transaction:
        log.error("a request left a transaction open; rolling it back")
        _connection.execute("ROLLBACK")


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """``with transaction(conn):`` runs the block in one transaction, rolled back on any error.

    IMMEDIATE takes the write lock at BEGIN, so reads inside the block see the data the
    block's writes will be based on; use ``immediate=False`` only for read-only blocks.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL...) already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, app: str, migrations: list[str]) -> int:
    """Apply the migrations of ``app`` not applied yet, each in its own transaction.

    Migration N (1-based) is the N-th script of the list; the list only ever grows.
    Returns the version the app's schema is at afterwards.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions "
                 "(app TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    with transaction(conn):
        row = conn.execute("SELECT version FROM schema_versions WHERE app = ?", (app,)).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise RuntimeError(f"the database schema of app {app!r} is at version {version}, "
                               f"newer than this code knows ({len(migrations)})")
        for number, script in enumerate(migrations[version:], start=version + 1):
            for statement in split_statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_versions (app, version) VALUES (?, ?) "
                         "ON CONFLICT(app) DO UPDATE SET version = excluded.version",
                         (app, number))
            version = number
    return version


def split_statements(script: str) -> list[str]:
    """Split a schema script into statements (``executescript`` would commit our transaction)."""
    statements, current = [], []
    for line in script.splitlines(keepends=True):
        current.append(line)
        candidate = "".join(current)
        if sqlite3.complete_statement(candidate):
            if candidate.strip():
                statements.append(candidate.strip())
            current = []
    rest = "".join(current).strip()
    if rest:
        statements.append(rest)
    return statements
