"""The memes app's table: one row per meme, pointing at its image by key."""

SCHEMA_V1 = """
CREATE TABLE memes (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  title       TEXT NOT NULL CHECK (length(title) BETWEEN 3 AND 100),
  description TEXT NOT NULL CHECK (length(description) BETWEEN 3 AND 1000),
  image_key   TEXT NOT NULL UNIQUE,  -- file name under MEDIA_ROOT/memes/
  image_mime  TEXT NOT NULL CHECK (image_mime IN ('image/png', 'image/jpeg')),
  created_at  TEXT NOT NULL,         -- ISO-8601 UTC with microseconds: sorts as a time
  updated_at  TEXT NOT NULL
);
CREATE INDEX memes_newest ON memes(created_at DESC, id DESC);
"""

SCHEMA = [SCHEMA_V1]
