"""The uploads app's table: one row per stored file and its processing state."""

SCHEMA_V1 = """
CREATE TABLE files (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  rel_path      TEXT NOT NULL UNIQUE,      -- '<subtype>/<safe_name>' under media_root
  original_name TEXT NOT NULL,             -- the filename the client sent
  mime_type     TEXT NOT NULL,             -- detected from the content, never the client's
  size          INTEGER NOT NULL,
  uploaded_at   TEXT NOT NULL,             -- ISO-8601 UTC with microseconds and Z
  status        TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'done', 'failed')),
  attempts      INTEGER NOT NULL DEFAULT 0, -- processing runs started
  processed_at  TEXT,
  sha256        TEXT,
  meta          TEXT                       -- JSON: what processing found (e.g. width, height)
);
CREATE INDEX files_pending ON files(status, id);
"""

SCHEMA = [SCHEMA_V1]
