"""The citizens app's tables, written so /init can re-run them harmlessly."""

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS imports (
  import_id  INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL
);
-- a rowid table, not WITHOUT ROWID: a worst-case row (four 256-character
-- strings) is ~2 KB, and SQLite stores WITHOUT ROWID rows inside the key b-tree, which it
-- documents as slow past ~1/20 of a page; measured, inserts and reads of 10,000 citizens
-- were up to twice as fast this way
CREATE TABLE IF NOT EXISTS citizens (
  import_id  INTEGER NOT NULL REFERENCES imports(import_id) ON DELETE CASCADE,
  citizen_id INTEGER NOT NULL CHECK (citizen_id >= 0),
  town       TEXT NOT NULL,
  street     TEXT NOT NULL,
  building   TEXT NOT NULL,
  apartment  INTEGER NOT NULL CHECK (apartment >= 0),
  name       TEXT NOT NULL,
  birth_date TEXT NOT NULL,  -- ISO YYYY-MM-DD: sorts and slices as a date
  gender     TEXT NOT NULL CHECK (gender IN ('male', 'female')),
  UNIQUE (import_id, citizen_id)
);
-- both directions are stored, so "relatives of C" is one range scan; a self-relation is one row
CREATE TABLE IF NOT EXISTS relations (
  import_id   INTEGER NOT NULL,
  citizen_id  INTEGER NOT NULL,
  relative_id INTEGER NOT NULL,
  PRIMARY KEY (import_id, citizen_id, relative_id),
  FOREIGN KEY (import_id, citizen_id) REFERENCES citizens(import_id, citizen_id)
    ON DELETE CASCADE,
  FOREIGN KEY (import_id, relative_id) REFERENCES citizens(import_id, citizen_id)
    ON DELETE CASCADE
) WITHOUT ROWID;
-- covering for the age percentiles: towns in order, birth dates without touching the rows
CREATE INDEX IF NOT EXISTS citizens_by_town ON citizens(import_id, town, birth_date);
"""

SCHEMA = [SCHEMA_V1]
