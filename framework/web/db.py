"""The database of a prefork server: one connection per process, opened after fork.

Two backends behind one small seam. sqlite3 (the default, a file path in ``database``) and
PostgreSQL (a libpq URL in ``database``) through psycopg 3, imported only then. A
PostgreSQL connection is wrapped so that it answers the part of the sqlite3 API the apps use
(``execute`` with ``?`` placeholders, ``executemany``, ``in_transaction``); every
connection has a ``dialect`` ("sqlite" or "postgresql") for the few statements that differ.

Writes go through ``transaction()``. On sqlite it takes the write lock up front (BEGIN
IMMEDIATE) so a read-modify-write can never be overtaken; on PostgreSQL it is a READ
COMMITTED transaction and the stores lock what a read-modify-write depends on with
``SELECT ... FOR UPDATE`` (see ``for_update``). Read-only blocks (``immediate=False``) get
one snapshot on both. Each app ships its schema as numbered migrations (one list per
dialect), applied once at start-up and recorded per app; on PostgreSQL under an advisory
lock, so instances starting together migrate once.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from framework.server import heartbeat

log = logging.getLogger("httpd.db")
PROGRESS_STEPS = 1_000_000  # SQLite VM steps between heartbeats (about a few ms of work)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
PG_CONNECT_TIMEOUT = 5  # seconds; libpq's connect_timeout (a dead host answers 503 by then)
MIGRATION_LOCK = 0x68747470  # pg_advisory_xact_lock key: "http"
PG_REQUIREMENT = "framework/web/requirements-postgres.txt"


class SqliteConnection(sqlite3.Connection):
    dialect = "sqlite"


class ConstraintError(Exception):
    """PostgreSQL refused a write on a constraint (the wrapper's sqlite3.IntegrityError)."""


# ``except db.IntegrityError:`` catches a refused constraint on either backend
IntegrityError = (sqlite3.IntegrityError, ConstraintError)

_connection: Any = None
touched = False  # connection() was called since the last abandon_transaction()


def _forget_connection() -> None:
    global _connection
    _connection = None  # a child process opens its own; sqlite handles must not cross a fork


os.register_at_fork(after_in_child=_forget_connection)


def is_postgres(database: str) -> bool:
    return database.startswith(POSTGRES_SCHEMES)


def open_connection(settings: dict[str, Any]) -> Any:
    """A new connection to the configured database (sqlite path or PostgreSQL URL)."""
    if is_postgres(settings["database"]):
        return PostgresConnection(settings)
    path = settings["database"]
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=settings["sqlite_busy_timeout"] / 1000,
                           factory=SqliteConnection)
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


def connection(settings: dict[str, Any]) -> Any:
    """This process's connection, opened on first use (so never inherited across a fork),
    and opened again after a PostgreSQL connection broke (server restart, network)."""
    global _connection, touched
    touched = True
    if _connection is not None and _connection.dialect == "postgresql" and _connection.broken:
        _connection.close()
        _connection = None
    if _connection is None:
        _connection = open_connection(settings)
    return _connection


def close_connection() -> None:
    global _connection
    if _connection is not None:
        _connection.close()
    _connection = None


def is_contention(exc: BaseException) -> bool:
    """True when the database, not the request, is the problem, and a retry may succeed:
    sqlite's "database is locked/busy" (another process held the write lock too long);
    on PostgreSQL a lock or statement timeout, a deadlock or serialization failure, or the
    server unreachable (refused, down, restarting: psycopg's OperationalError)."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    psycopg = sys.modules.get("psycopg")  # loaded only when PostgreSQL is configured
    return psycopg is not None and isinstance(exc, (psycopg.OperationalError,
                                                    psycopg.InterfaceError))


def abandon_transaction() -> None:
    """Roll back a transaction a request left open, so it cannot leak into the next request.

    The dispatcher calls this after every handler that asked for the connection
    (``connection()`` sets ``touched``); normally there is nothing to do.
    """
    global touched
    touched = False
    if _connection is not None and _connection.in_transaction:
        log.error("a request left a transaction open; rolling it back")
        _connection.execute("ROLLBACK")


def for_update(conn: Any) -> str:
    """The row-locking clause to end a SELECT with: sqlite has none (its BEGIN IMMEDIATE
    already holds the one write lock)."""
    return " FOR UPDATE" if conn.dialect == "postgresql" else ""


# a subquery of the integers in the JSON array bound to its one ``?``, per dialect
JSON_INT_ARRAY = {"sqlite": "SELECT value FROM json_each(?)",
                  "postgresql": "SELECT value::bigint FROM json_array_elements_text(?::json)"}


def json_int_array(conn: Any) -> str:
    return JSON_INT_ARRAY[conn.dialect]


@contextmanager
def transaction(conn: Any, immediate: bool = True) -> Iterator[Any]:
    """``with transaction(conn):`` runs the block in one transaction, rolled back on any error.

    On sqlite, IMMEDIATE takes the write lock at BEGIN, so reads inside the block see the
    data the block's writes will be based on; on PostgreSQL the block locks its rows (see
    ``for_update``). Use ``immediate=False`` only for read-only blocks: on PostgreSQL they
    run REPEATABLE READ READ ONLY, one snapshot for every read of the block.
    """
    if conn.dialect == "postgresql":
        conn.execute("BEGIN" if immediate else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL...) already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: Any, app: str, schema: list[str] | dict[str, list[str]]) -> int:
    """Apply the migrations of ``app`` not applied yet, in one transaction.

    ``schema`` is a list of scripts, or one list per dialect ({"sqlite": [...],
    "postgresql": [...]}). Migration N (1-based) is the N-th script of the list; the list
    only ever grows. On PostgreSQL the transaction first takes an advisory lock, so of
    several instances starting at once one migrates and the others then find it done.
    Returns the version the app's schema is at afterwards.
    """
    migrations = schema[conn.dialect] if isinstance(schema, dict) else schema
    with transaction(conn):
        if conn.dialect == "postgresql":
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions "
                     "(app TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_versions WHERE app = ?", (app,)).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise RuntimeError(f"the database schema of app {app!r} is at version {version}, "
                               f"newer than this code knows ({len(migrations)})")
        for number, script in enumerate(migrations[version:], start=version + 1):
            for statement in script_statements(conn, script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_versions (app, version) VALUES (?, ?) "
                         "ON CONFLICT(app) DO UPDATE SET version = excluded.version",
                         (app, number))
            version = number
    return version


def script_statements(conn: Any, script: str) -> list[str]:
    """The statements of a schema script: PostgreSQL takes a whole script at once (and its
    function bodies hold semicolons), sqlite one statement at a time."""
    return [script] if conn.dialect == "postgresql" else split_statements(script)


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


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise SystemExit("httpd: database is a PostgreSQL URL but psycopg 3 is not installed: "
                         f"pip install -r {PG_REQUIREMENT}") from None
    return psycopg


class PostgresConnection:
    """A psycopg 3 connection that speaks the sqlite3 subset the apps use.

    Autocommit at the protocol level, so that transactions are exactly the BEGIN/COMMIT
    ``transaction()`` sends. ``?`` placeholders become ``%s``. Timeouts keep a request
    from hanging: libpq's connect_timeout, a lock_timeout of ``sqlite_busy_timeout`` (the
    same "waited too long for a writer" as sqlite's) and a statement_timeout of half the
    worker_timeout, all answered 503 by the dispatcher.
    """

    dialect = "postgresql"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.psycopg = psycopg = import_psycopg()
        self.errors = psycopg.errors
        lock_ms = max(1, int(settings["sqlite_busy_timeout"]))
        statement_ms = max(lock_ms, int(settings["worker_timeout"] * 500))
        self.url = settings["database"]
        self.options = (f"-c lock_timeout={lock_ms} -c statement_timeout={statement_ms} "
                        "-c TimeZone=UTC")
        self.raw = self.connect()
        self.idle = psycopg.pq.TransactionStatus.IDLE
        self.in_error = psycopg.pq.TransactionStatus.INERROR
        self.intrans = psycopg.pq.TransactionStatus.INTRANS
        self.queries: dict[str, str] = {}

    def connect(self) -> Any:
        return self.psycopg.connect(self.url, autocommit=True,
                                    connect_timeout=PG_CONNECT_TIMEOUT, options=self.options)

    @property
    def broken(self) -> bool:
        return self.raw.closed or self.raw.broken

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in (self.intrans, self.in_error)

    def query(self, sql: str) -> str:
        text = self.queries.get(sql)
        if text is None:
            text = self.queries[sql] = sql.replace("%", "%%").replace("?", "%s")
        return text

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run one statement. If the connection turns out to be dead (the server restarted
        since the last request) on a statement that starts a transaction or reads outside
        one, connect again and run it once more: nothing of it can have happened, so the
        request need not fail."""
        fresh = not self.in_transaction
        try:
            return self.run(sql, params)
        except self.psycopg.OperationalError:
            first_word = sql.split(None, 1)[0].upper() if sql.strip() else ""
            if not (fresh and self.broken and first_word in ("BEGIN", "SELECT")):
                raise
        log.warning("the database connection was lost; connecting again")
        self.raw.close()
        self.raw = self.connect()
        return self.run(sql, params)

    def run(self, sql: str, params: Any) -> Any:
        cursor = self.raw.cursor()
        try:
            if params:
                cursor.execute(self.query(sql), params)
            else:
                cursor.execute(sql)
        except self.errors.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc
        return cursor

    def executemany(self, sql: str, rows: Any) -> Any:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(self.query(sql), rows)
        except self.errors.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc
        return cursor

    def close(self) -> None:
        self.raw.close()
