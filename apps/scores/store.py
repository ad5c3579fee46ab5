"""SQL of the interests/scores app: two tables of the same shape, keyed by client_id.

``Table`` holds the statements of one of them. Table and column names are the app's own
constants, never from a request; every value goes through a ``?`` placeholder.
"""
from __future__ import annotations

import json
from typing import Any

from framework.web.db import JSON_INT_ARRAY, transaction
from framework.web.validate import timestamp

Row = tuple[Any, ...]


class Table:
    """The statements of one collection table: ``client_id``, ``columns``, ``updated_at``."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        names = ", ".join(("client_id", *columns))
        # ? = JSON array of ids; the subquery's text is the one statement per dialect
        in_filter = "client_id IN ({ids})"
        self.one = f"SELECT {names} FROM {table} WHERE client_id = ?"
        self.count_all = f"SELECT count(*) FROM {table}"
        self.count_filtered = {dialect: f"{self.count_all} WHERE {in_filter}".format(ids=ids)
                               for dialect, ids in JSON_INT_ARRAY.items()}
        self.page_all = f"SELECT {names} FROM {table} ORDER BY client_id LIMIT ? OFFSET ?"
        self.page_filtered = {dialect: (f"SELECT {names} FROM {table} WHERE {in_filter} "
                                        "ORDER BY client_id LIMIT ? OFFSET ?").format(ids=ids)
                              for dialect, ids in JSON_INT_ARRAY.items()}
        self.insert_row = (f"INSERT INTO {table} ({names}, updated_at) "
                           f"VALUES ({', '.join('?' * (len(columns) + 2))}) "
                           "ON CONFLICT (client_id) DO NOTHING")
        self.update_row = (f"UPDATE {table} SET {', '.join(c + ' = ?' for c in columns)}, "
                           "updated_at = ? WHERE client_id = ?")
        self.delete_row = f"DELETE FROM {table} WHERE client_id = ?"

    def count(self, conn: Any, client_ids: list[int] | None) -> int:
        """How many rows, of every client or of ``client_ids`` only."""
        if client_ids is None:
            return conn.execute(self.count_all).fetchone()[0]
        return conn.execute(self.count_filtered[conn.dialect], (json.dumps(client_ids),)).fetchone()[0]

    def page(self, conn: Any, client_ids: list[int] | None, limit: int,
             offset: int) -> list[Row]:
        """Rows by client_id, of every client or of ``client_ids`` only."""
        if client_ids is None:
            return conn.execute(self.page_all, (limit, offset)).fetchall()
        return conn.execute(self.page_filtered[conn.dialect],
                            (json.dumps(client_ids), limit, offset)).fetchall()

    def get(self, conn: Any, client_id: int) -> Row | None:
        return conn.execute(self.one, (client_id,)).fetchone()

    def insert(self, conn: Any, client_id: int, values: Row) -> bool:
        """Add the row; False (nothing written) if the client has one already."""
        with transaction(conn):
            return conn.execute(self.insert_row, (client_id, *values, timestamp())).rowcount > 0

    def update(self, conn: Any, client_id: int, values: Row) -> bool:
        """Replace the row's values; False if the client has none."""
        with transaction(conn):
            return conn.execute(self.update_row, (*values, timestamp(), client_id)).rowcount > 0

    def delete(self, conn: Any, client_id: int) -> bool:
        """Delete the row; False if the client has none."""
        with transaction(conn):
            return conn.execute(self.delete_row, (client_id,)).rowcount > 0
