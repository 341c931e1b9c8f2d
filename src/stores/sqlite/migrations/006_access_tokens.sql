-- Access tokens created by `loom token create`. Only the sha256 of a token is kept.
-- Times are epoch milliseconds; scopes a comma-separated list.
CREATE TABLE IF NOT EXISTS loom_access_tokens (
  id          TEXT PRIMARY KEY,
  token_hash  TEXT NOT NULL UNIQUE,
  name        TEXT,
  tenant      TEXT NOT NULL,
  project     TEXT,
  scopes      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
