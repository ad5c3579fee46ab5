"""The tables of the interests/scores app, as numbered migrations."""

SCHEMA_V1 = """
CREATE TABLE client_interests (
  client_id  INTEGER PRIMARY KEY CHECK (client_id >= 0),
  interests  TEXT NOT NULL,            -- JSON array of strings, in the order sent
  updated_at TEXT NOT NULL
);
CREATE TABLE client_scores (
  client_id  INTEGER PRIMARY KEY CHECK (client_id >= 0),
  phone TEXT, email TEXT, first_name TEXT, last_name TEXT,
  birthday   TEXT,                     -- ISO date, so it sorts and compares as a date
  gender     INTEGER CHECK (gender IN (0, 1, 2)),
  score      REAL NOT NULL,
  updated_at TEXT NOT NULL
);
"""

POSTGRES_V1 = """
CREATE TABLE client_interests (
  client_id  BIGINT PRIMARY KEY CHECK (client_id >= 0),
  interests  TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE client_scores (
  client_id  BIGINT PRIMARY KEY CHECK (client_id >= 0),
  phone TEXT, email TEXT, first_name TEXT, last_name TEXT,
  birthday   TEXT,
  gender     BIGINT CHECK (gender IN (0, 1, 2)),
  score      DOUBLE PRECISION NOT NULL,
  updated_at TEXT NOT NULL
);
"""

SCHEMA = {"sqlite": [SCHEMA_V1], "postgresql": [POSTGRES_V1]}
