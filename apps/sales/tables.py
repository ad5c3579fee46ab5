"""The sales app's tables, plus two rollups that make both tops independent of
the number of sales.

A top over the raw ``sales`` table has to read every sale of the period: with 1,000,000 sales
over a year, the best covering index, ``sales(sale_time, store_id, item_id)``, still scans the
~83,000 entries of one month and joins each to ``item`` for its price (92 ms measured), and
"sales_amount over all time" scans the whole table (1.4 s). So the totals are kept as they
happen instead, by a trigger inside the inserting statement, hence inside the inserting
transaction: every reader sees a rollup that matches ``sales`` exactly.

- ``item_sales``: sales_amount per item, over all time.
- ``store_month_income``: income per store per UTC month (``'YYYY-MM'``, the first 7
  characters of ``sale_time``), adding the item's price at the time of the sale. There is no
  item-update API, so that is also the item's current price.

Sales are append-only: nothing updates or deletes single sales, and the admin wipe empties
the rollups in the same transaction as ``sales`` (see store.wipe). The two rollups carry no
foreign keys of their own: every row is derived from a sale whose keys were checked.
``sales`` needs no secondary index at all: no query filters it (the POST reads back by rowid).
"""

# A fixed-width UTC timestamp (validate.timestamp): string order is time order, the first 7
# characters are the month, and the rollup trigger may rely on both.
SALE_TIME_GLOB = ("[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T"
                  "[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z")
# Prices are capped so that no sum of them can overflow sqlite's 64-bit integers, which turns
# the rollup's "income + price" into a float (and SUM() into an error): 9.2e9 sales of the
# dearest item in one store and month would be needed.
MAX_PRICE = 1_000_000_000

SCHEMA_V1 = f"""
CREATE TABLE store (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  address TEXT NOT NULL
);
CREATE TABLE item (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  name  TEXT NOT NULL,
  price INTEGER NOT NULL CHECK (price BETWEEN 0 AND {MAX_PRICE})
);
CREATE TABLE sales (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  sale_time TEXT NOT NULL CHECK (sale_time GLOB '{SALE_TIME_GLOB}'),
  item_id   INTEGER NOT NULL REFERENCES item(id),
  store_id  INTEGER NOT NULL REFERENCES store(id)
);
CREATE TABLE item_sales (
  item_id      INTEGER PRIMARY KEY,
  sales_amount INTEGER NOT NULL
);
CREATE INDEX item_sales_top ON item_sales(sales_amount DESC, item_id);
CREATE TABLE store_month_income (
  month    TEXT NOT NULL,
  store_id INTEGER NOT NULL,
  income   INTEGER NOT NULL,
  PRIMARY KEY (month, store_id)
) WITHOUT ROWID;
CREATE INDEX store_month_top ON store_month_income(month, income DESC, store_id);
-- An unknown item makes the price NULL, so the whole INSERT fails (NOT NULL) even before the
-- foreign key check at the end of the statement: either way nothing of the sale is stored.
CREATE TRIGGER sales_rollup AFTER INSERT ON sales
BEGIN
  INSERT INTO item_sales (item_id, sales_amount) VALUES (NEW.item_id, 1)
    ON CONFLICT (item_id) DO UPDATE SET sales_amount = sales_amount + 1;
  INSERT INTO store_month_income (month, store_id, income)
    VALUES (substr(NEW.sale_time, 1, 7), NEW.store_id,
            (SELECT price FROM item WHERE id = NEW.item_id))
    ON CONFLICT (month, store_id) DO UPDATE SET income = income + excluded.income;
END;
"""

SCHEMA = [SCHEMA_V1]
