-- The cross-process event relay: a bounded log of recent events, written only while a process
-- other than the writer has a live row in loom_event_listeners.

CREATE TABLE IF NOT EXISTS loom_events (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  body   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS loom_event_listeners (
  origin     TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
