"""All SQL of the sales app: parameterized statements, one function per use.

Functions that write take the connection and open their own IMMEDIATE transaction, except
``wipe`` and ``fill_demo``, which the admin helpers combine into one. Every statement is
shared by sqlite and PostgreSQL but for the id sequences (``restart_ids``, ``reserve_ids``).
"""
from __future__ import annotations

import random
from typing import Any

from framework.web.db import IntegrityError, transaction

DEMO_ITEMS = 50
DEMO_STORES = 50
DEMO_SALES_PER_MONTH = 300
DEMO_PRICES = (100, 10000)


def list_items(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, name, price FROM item ORDER BY id")
    return [{"id": i, "name": name, "price": price} for i, name, price in rows]


def list_stores(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, address FROM store ORDER BY id")
    return [{"id": i, "address": address} for i, address in rows]


def insert_item(conn: Any, name: str, price: int) -> dict[str, Any]:
    with transaction(conn):
        item_id = conn.execute("INSERT INTO item (name, price) VALUES (?, ?) RETURNING id",
                               (name, price)).fetchall()[0][0]
    return {"id": item_id, "name": name, "price": price}


def insert_store(conn: Any, address: str) -> dict[str, Any]:
    with transaction(conn):
        store_id = conn.execute("INSERT INTO store (address) VALUES (?) RETURNING id",
                                (address,)).fetchall()[0][0]
    return {"id": store_id, "address": address}


class UnknownReference(LookupError):
    """A sale names an item or a store that does not exist; ``names`` says which ids."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def insert_sale(conn: Any, item_id: int, store_id: int,
                sale_time: str) -> dict[str, Any]:
    """Store one sale and return it; UnknownReference if the item or the store is unknown.

    One statement in one short IMMEDIATE transaction (the rollup trigger runs inside it,
    on PostgreSQL too, where its upserts lock the rollup rows they add to, so concurrent
    sales from any number of instances add up exactly). The happy path does no existence
    check of its own: the constraints do it, and only a refused insert pays for finding
    out, after the rollback, which id was unknown.
    """
    try:
        with transaction(conn):
            sale_id = conn.execute(
                "INSERT INTO sales (sale_time, item_id, store_id) VALUES (?, ?, ?) RETURNING id",
                (sale_time, item_id, store_id)).fetchall()[0][0]
    except IntegrityError:
        missing = missing_references(conn, item_id, store_id)
        if not missing:
            raise
        raise UnknownReference(missing) from None
    return {"id": sale_id, "sale_time": sale_time, "item_id": item_id, "store_id": store_id}


def missing_references(conn: Any, item_id: int, store_id: int) -> list[str]:
    """The names of the ids, ``item_id`` and/or ``store_id``, that no row has."""
    item_found, store_found = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM item WHERE id = ?),"
        " EXISTS (SELECT 1 FROM store WHERE id = ?)", (item_id, store_id)).fetchone()
    return [name for name, found in (("item_id", item_found), ("store_id", store_found))
            if not found]


# EXPLAIN QUERY PLAN (1,000,000 sales, 200 stores, 24 months):
#   SEARCH m USING COVERING INDEX store_month_top (month=?)
#   SEARCH s USING INTEGER PRIMARY KEY (rowid=?)
# The index hands out the month's stores already in answer order: LIMIT stops the walk after
# cnt rows, no temp b-tree. The same query over raw sales was 92 ms (see tables.py).
TOP_STORES = """
SELECT s.id, s.address, m.income
  FROM store_month_income AS m JOIN store AS s ON s.id = m.store_id
 WHERE m.month = ?
 ORDER BY m.income DESC, m.store_id
 LIMIT ?"""

# EXPLAIN QUERY PLAN:
#   SCAN c USING COVERING INDEX item_sales_top
#   SEARCH i USING INTEGER PRIMARY KEY (rowid=?)
# "SCAN" is a walk in answer order that LIMIT stops after cnt rows, not a full scan.
TOP_ITEMS = """
SELECT i.id, i.name, c.sales_amount
  FROM item_sales AS c JOIN item AS i ON i.id = c.item_id
 ORDER BY c.sales_amount DESC, c.item_id
 LIMIT ?"""


def month_key(year: int, month: int) -> str:
    """The rollup's key of a UTC month: the ``YYYY-MM`` that starts every sale_time in it."""
    return f"{year:04d}-{month:02d}"


def top_stores(conn: Any, year: int, month: int,
               cnt: int) -> list[dict[str, Any]]:
    """Stores by income in the half-open UTC month, highest first, ties by id."""
    rows = conn.execute(TOP_STORES, (month_key(year, month), cnt))
    return [{"id": i, "address": address, "income": income} for i, address, income in rows]


def top_items(conn: Any, cnt: int) -> list[dict[str, Any]]:
    """Items by number of sales over all time, highest first, ties by id."""
    rows = conn.execute(TOP_ITEMS, (cnt,))
    return [{"id": i, "name": name, "sales_amount": amount} for i, name, amount in rows]


def clear(conn: Any) -> None:
    """Delete every item, store and sale in one transaction; ids are never reused."""
    with transaction(conn):
        wipe(conn)


def replace_with_demo(conn: Any, rng: random.Random,
                      year: int) -> dict[str, int]:
    """In one transaction: delete everything, restart the ids at 1 and fill the demo set."""
    with transaction(conn):
        wipe(conn)
        restart_ids(conn)
        return fill_demo(conn, rng, year)


def wipe(conn: Any) -> None:
    """Delete every row of the app (in the caller's transaction); ids are never reused."""
    for table in ("item_sales", "store_month_income", "sales", "item", "store"):
        conn.execute(f"DELETE FROM {table}")  # a fixed name from the tuple above, not input


def restart_ids(conn: Any) -> None:
    """Make the ids start again at 1 (in the caller's transaction, after ``wipe``), as
    dropping and re-creating the tables would."""
    if conn.dialect == "postgresql":
        for table in ("item", "store", "sales"):  # fixed names, not input
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH 1")
    else:
        conn.execute("DELETE FROM sqlite_sequence WHERE name IN ('item', 'store', 'sales')")


def fill_demo(conn: Any, rng: random.Random, year: int) -> dict[str, int]:
    """The demo data (in the caller's transaction): 50 stores, 50 items priced
    100..10000, and 300 sales in each month of ``year``, on day 1..28 at 00:00 UTC, of a
    random item in a random store. Names carry the row's id (``item-7`` is item 7)."""
    store_ids = reserve_ids(conn, "store", DEMO_STORES)
    item_ids = reserve_ids(conn, "item", DEMO_ITEMS)
    conn.executemany("INSERT INTO store (id, address) VALUES (?, ?)",
                     [(i, f"store-{i}") for i in store_ids])
    conn.executemany("INSERT INTO item (id, name, price) VALUES (?, ?, ?)",
                     [(i, f"item-{i}", rng.randint(*DEMO_PRICES)) for i in item_ids])
    sales = [(f"{month_key(year, month)}-{rng.randint(1, 28):02d}T00:00:00.000000Z",
              rng.choice(item_ids), rng.choice(store_ids))
             for month in range(1, 13) for _ in range(DEMO_SALES_PER_MONTH)]
    conn.executemany("INSERT INTO sales (sale_time, item_id, store_id) VALUES (?, ?, ?)", sales)
    return {"items": DEMO_ITEMS, "stores": DEMO_STORES, "sales": len(sales)}


def reserve_ids(conn: Any, table: str, count: int) -> list[int]:
    """``count`` new ids of ``table``, past every id ever used, for rows inserted with
    explicit ids in the caller's transaction: on sqlite the next ones AUTOINCREMENT would
    give (the inserts move its counter on), on PostgreSQL taken from the identity sequence."""
    if conn.dialect == "postgresql":
        rows = conn.execute("SELECT nextval(pg_get_serial_sequence(?, 'id'))"
                            " FROM generate_series(1, ?)", (table, count)).fetchall()
        return [row[0] for row in rows]
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    first = (row[0] if row else 0) + 1
    return list(range(first, first + count))
