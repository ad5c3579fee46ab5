"""The citizens app's SQL: storing imports, patching a citizen two-sidedly, and the reads.

Every function takes the connection and the import id; every query filters by import, which
is what keeps imports isolated. Citizens are rendered to JSON by the database itself
(sqlite's ``json_object``, PostgreSQL's ``json_build_object``): on 10,000 citizens that is
several times faster than building Python dicts and calling json.dumps. Those two texts,
and the JSON array of relative ids, are the only statements that differ per dialect.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from apps.citizens.tables import SCHEMA
from framework.web.db import for_update, json_int_array, script_statements, transaction
from framework.web.validate import timestamp

# relatives ascending; birth_date back from ISO to DD.MM.YYYY
CITIZEN_JSON = """json_object(
  'citizen_id', c.citizen_id, 'town', c.town, 'street', c.street, 'building', c.building,
  'apartment', c.apartment, 'name', c.name,
  'birth_date', substr(c.birth_date, 9, 2) || '.' || substr(c.birth_date, 6, 2) || '.'
                || substr(c.birth_date, 1, 4),
  'gender', c.gender,
  'relatives', json((SELECT json_group_array(relative_id) FROM (
      SELECT r.relative_id FROM relations r
      WHERE r.import_id = c.import_id AND r.citizen_id = c.citizen_id
      ORDER BY r.relative_id))))"""
CITIZEN_JSON_POSTGRES = """json_build_object(
  'citizen_id', c.citizen_id, 'town', c.town, 'street', c.street, 'building', c.building,
  'apartment', c.apartment, 'name', c.name,
  'birth_date', substr(c.birth_date, 9, 2) || '.' || substr(c.birth_date, 6, 2) || '.'
                || substr(c.birth_date, 1, 4),
  'gender', c.gender,
  'relatives', (SELECT coalesce(json_agg(r.relative_id ORDER BY r.relative_id), '[]'::json)
                  FROM relations r
                 WHERE r.import_id = c.import_id AND r.citizen_id = c.citizen_id))::text"""
ALL_CITIZENS = {dialect: f"SELECT {json} FROM citizens c WHERE c.import_id = ? "
                         "ORDER BY c.citizen_id"
                for dialect, json in (("sqlite", CITIZEN_JSON),
                                      ("postgresql", CITIZEN_JSON_POSTGRES))}
ONE_CITIZEN = {dialect: f"SELECT {json} FROM citizens c WHERE c.import_id = ? "
                        "AND c.citizen_id = ?"
               for dialect, json in (("sqlite", CITIZEN_JSON),
                                     ("postgresql", CITIZEN_JSON_POSTGRES))}
# the columns a PATCH may set; names come from this table, never from the request
COLUMNS = ("town", "street", "building", "apartment", "name", "birth_date", "gender")


class NotFound(LookupError):
    """No such import, or no such citizen in the import; the message says which."""


class UnknownRelatives(ValueError):
    """A patch names relatives that are not citizens of the import."""

    def __init__(self, import_id: int, ids: list[int]) -> None:
        super().__init__(f"citizens not in import {import_id}: {', '.join(map(str, ids))}")


def insert_import(conn: Any, citizens: list[dict[str, Any]]) -> int:
    """Store validated citizens and their relations as a new import; one transaction.

    The write lock is held for the inserts only (validation happened before), and for as
    short a time as possible: validation has proven that every relative is a citizen of this
    import, so the two foreign-key probes per relation row (a third of the time of a
    16-million-row import) are skipped on sqlite, and rows are streamed, never listed in
    memory.
    """
    if conn.dialect == "postgresql":
        return insert_validated(conn, citizens)
    conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set before BEGIN
    try:
        return insert_validated(conn, citizens)
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def insert_validated(conn: Any, citizens: list[dict[str, Any]]) -> int:
    with transaction(conn):
        import_id = conn.execute(
            "INSERT INTO imports (created_at) VALUES (?) RETURNING import_id",
            (timestamp(),)).fetchall()[0][0]
        conn.executemany(
            "INSERT INTO citizens (import_id, citizen_id, town, street, building, apartment,"
            " name, birth_date, gender) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(import_id, c["citizen_id"], c["town"], c["street"], c["building"],
              c["apartment"], c["name"], c["birth_date"], c["gender"]) for c in citizens])
        # relations are mutual (validated), so each direction appears exactly once here
        conn.executemany(
            "INSERT INTO relations (import_id, citizen_id, relative_id) VALUES (?, ?, ?)",
            ((import_id, c["citizen_id"], r) for c in citizens for r in c["relatives"]))
    return import_id


def require_import(conn: Any, import_id: int) -> None:
    if conn.execute("SELECT 1 FROM imports WHERE import_id = ?", (import_id,)).fetchone() is None:
        raise NotFound(f"import {import_id} not found")


def citizens_json(conn: Any, import_id: int) -> bytes:
    """``{"data": [<citizen>, ...]}`` of an import, ordered by citizen_id."""
    with transaction(conn, immediate=False):  # one snapshot for the check and the read
        require_import(conn, import_id)
        parts = [row[0] for row in conn.execute(ALL_CITIZENS[conn.dialect], (import_id,))]
    return ('{"data":[' + ",".join(parts) + "]}").encode("utf-8")


def patch_citizen(conn: Any, import_id: int, citizen_id: int,
                  values: dict[str, Any]) -> bytes:
    """Apply a validated PATCH and return ``{"data": <citizen>}`` as committed; NotFound or
    UnknownRelatives (nothing changed) otherwise.

    The write lock is taken before the current relatives are read (BEGIN IMMEDIATE), so two
    PATCHes of one citizen cannot both start from the same old state. On PostgreSQL the
    import's row is locked first (``SELECT ... FOR UPDATE``): the PATCHes of one import run
    one after the other, as on sqlite, so two PATCHes linking or unlinking the same pair
    from both sides always leave the relation symmetric; other imports are not held up.
    """
    with transaction(conn):
        if conn.dialect == "postgresql":
            conn.execute("SELECT 1 FROM imports WHERE import_id = ?" + for_update(conn),
                         (import_id,)).fetchall()
        row = conn.execute("SELECT 1 FROM citizens WHERE import_id = ? AND citizen_id = ?",
                           (import_id, citizen_id)).fetchone()
        if row is None:
            require_import(conn, import_id)
            raise NotFound(f"citizen {citizen_id} not found in import {import_id}")
        if "relatives" in values:
            replace_relatives(conn, import_id, citizen_id, set(values["relatives"]))
        columns = [name for name in COLUMNS if name in values]
        if columns:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(f"UPDATE citizens SET {assignments}"
                         " WHERE import_id = ? AND citizen_id = ?",
                         [values[name] for name in columns] + [import_id, citizen_id])
        citizen = conn.execute(ONE_CITIZEN[conn.dialect], (import_id, citizen_id)).fetchone()[0]
    return ('{"data":' + citizen + "}").encode("utf-8")


def replace_relatives(conn: Any, import_id: int, citizen_id: int,
                      new: set[int]) -> None:
    """Make ``new`` the citizen's relatives, updating the other side of every changed link."""
    known = {row[0] for row in conn.execute(
        "SELECT citizen_id FROM citizens WHERE import_id = ?"
        f" AND citizen_id IN ({json_int_array(conn)})",
        (import_id, "[" + ",".join(map(str, new)) + "]"))}
    unknown = new - known
    if unknown:
        raise UnknownRelatives(import_id, sorted(unknown))
    old = {row[0] for row in conn.execute(
        "SELECT relative_id FROM relations WHERE import_id = ? AND citizen_id = ?",
        (import_id, citizen_id))}
    conn.executemany(
        "DELETE FROM relations WHERE import_id = ? AND citizen_id = ? AND relative_id = ?",
        both_directions(import_id, citizen_id, old - new))
    conn.executemany(
        "INSERT INTO relations (import_id, citizen_id, relative_id) VALUES (?, ?, ?)",
        both_directions(import_id, citizen_id, new - old))


def both_directions(import_id: int, citizen_id: int,
                    relatives: set[int]) -> set[tuple[int, int, int]]:
    """The relation rows linking a citizen with each relative; a self-link is a single row."""
    rows = set()
    for relative in relatives:
        rows.add((import_id, citizen_id, relative))
        rows.add((import_id, relative, citizen_id))
    return rows


def birthdays(conn: Any, import_id: int) -> dict[str, list[dict[str, int]]]:
    """Month "1".."12" -> presents each citizen buys for relatives born that month."""
    months: dict[str, list[dict[str, int]]] = {str(month): [] for month in range(1, 13)}
    with transaction(conn, immediate=False):
        require_import(conn, import_id)
        rows = conn.execute(
            "SELECT CAST(substr(c.birth_date, 6, 2) AS INTEGER) AS month, r.citizen_id, count(*)"
            " FROM relations r JOIN citizens c"
            "  ON c.import_id = r.import_id AND c.citizen_id = r.relative_id"
            " WHERE r.import_id = ?"
            " GROUP BY month, r.citizen_id ORDER BY month, r.citizen_id",
            (import_id,)).fetchall()
    for month, citizen_id, presents in rows:
        months[str(month)].append({"citizen_id": citizen_id, "presents": presents})
    return months


def town_ages(conn: Any, import_id: int, today: date) -> list[tuple[str, int]]:
    """(town, age in full years at ``today``) for every citizen, sorted by town.

    Age is year difference minus one if this year's birthday is still ahead: comparing the
    ISO "MM-DD" tails does exactly that, and makes a 29.02 birthday fall on 01.03 in common years.
    """
    with transaction(conn, immediate=False):
        require_import(conn, import_id)
        rows = conn.execute(
            "SELECT town, ? - CAST(substr(birth_date, 1, 4) AS INTEGER)"
            "             - CASE WHEN substr(birth_date, 6) > ? THEN 1 ELSE 0 END AS age"
            " FROM citizens WHERE import_id = ? ORDER BY town",
            (today.year, today.isoformat()[5:], import_id)).fetchall()
    return rows


def create_tables(conn: Any) -> None:
    """Run the schema again; every statement is IF NOT EXISTS, so this is idempotent."""
    with transaction(conn):
        for statement in script_statements(conn, SCHEMA[conn.dialect][0]):
            conn.execute(statement)


def clear(conn: Any) -> None:
    """Delete every import (rows only: AUTOINCREMENT keeps counting, so ids are never reused)."""
    with transaction(conn):
        for table in ("relations", "citizens", "imports"):
            conn.execute(f"DELETE FROM {table}")
