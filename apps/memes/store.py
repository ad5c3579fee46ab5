"""SQL of the memes app: rows only. Files are images.py's business; routes.py orders the two
so that a failure never leaves a row without its image."""
from __future__ import annotations

from typing import Any

from framework.web.db import for_update, transaction
from framework.web.validate import timestamp

COLUMNS = "id, title, description, created_at, image_key"
UPDATABLE = frozenset({"title", "description", "image_key", "image_mime"})


def get(conn: Any, meme_id: int) -> tuple | None:
    return conn.execute(f"SELECT {COLUMNS} FROM memes WHERE id = ?", (meme_id,)).fetchone()


def count(conn: Any) -> int:
    return conn.execute("SELECT count(*) FROM memes").fetchone()[0]


def newest(conn: Any, limit: int, offset: int) -> list[tuple]:
    return conn.execute(f"SELECT {COLUMNS} FROM memes ORDER BY created_at DESC, id DESC "
                        "LIMIT ? OFFSET ?", (limit, offset)).fetchall()


def insert(conn: Any, title: str, description: str, image_key: str,
           image_mime: str) -> tuple:
    now = timestamp()
    with transaction(conn):
        meme_id = conn.execute("INSERT INTO memes (title, description, image_key, image_mime, "
                               "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                               (title, description, image_key, image_mime, now,
                                now)).fetchall()[0][0]
        return (meme_id, title, description, now, image_key)


def update(conn: Any, meme_id: int,
           values: dict[str, str]) -> tuple[tuple, str] | None:
    """Set some of a meme's columns: (the updated row, the image key it had before), or
    None if there is no such meme."""
    if not UPDATABLE.issuperset(values):  # names go into the SQL text: only our own
        raise ValueError(f"cannot update {sorted(set(values) - UPDATABLE)}")
    names = sorted(values)
    assignments = "".join(f"{name} = ?, " for name in names)
    with transaction(conn):
        before = conn.execute("SELECT image_key FROM memes WHERE id = ?" + for_update(conn),
                              (meme_id,)).fetchone()
        if before is None:
            return None
        conn.execute(f"UPDATE memes SET {assignments}updated_at = ? WHERE id = ?",
                     (*(values[name] for name in names), timestamp(), meme_id))
        return get(conn, meme_id), before[0]


def delete(conn: Any, meme_id: int) -> str | None:
    """Delete a meme's row; its image key, or None if there was no such meme."""
    with transaction(conn):
        # fetchall: a RETURNING statement must finish before the COMMIT
        rows = conn.execute("DELETE FROM memes WHERE id = ? RETURNING image_key",
                            (meme_id,)).fetchall()
    return rows[0][0] if rows else None


def image_keys(conn: Any) -> set[str]:
    return {key for (key,) in conn.execute("SELECT image_key FROM memes")}

