-- Durable workflows: a run row, its append-only history, and the signals it received.
-- Wake-ups are ordinary tasks of the reserved type 'loom.workflow' carrying workflow_id.

CREATE TABLE IF NOT EXISTS loom_workflows (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  version      TEXT NOT NULL,
  status       TEXT NOT NULL,
  input        TEXT,
  result       TEXT,
  error        TEXT,
  state        TEXT,
  tenant       TEXT NOT NULL,
  project      TEXT NOT NULL,
  parent_id    TEXT,
  waiting_for  TEXT,
  history_len  INTEGER NOT NULL DEFAULT 0,
  lease_ms     INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  completed_at INTEGER
);

CREATE INDEX IF NOT EXISTS loom_workflows_parent
  ON loom_workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS loom_workflow_history (
  workflow_id TEXT NOT NULL,
  pos         INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  name        TEXT,
  data        TEXT,
  at          INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, pos)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS loom_workflow_signals (
  workflow_id TEXT NOT NULL,
  pos         INTEGER NOT NULL,
  name        TEXT NOT NULL,
  data        TEXT,
  at          INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, pos)
) WITHOUT ROWID;

INSERT OR IGNORE INTO loom_task_types (type) VALUES ('loom.workflow');
