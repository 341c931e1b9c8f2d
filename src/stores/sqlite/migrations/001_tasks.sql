-- Tasks, their dependency edges, and the names of task types seen (for claims that span types).
-- Times are epoch milliseconds. JSON columns hold JSON text.

CREATE TABLE IF NOT EXISTS loom_tasks (
  id               TEXT PRIMARY KEY,
  type             TEXT NOT NULL,
  status           TEXT NOT NULL,
  input            TEXT,
  result           TEXT,
  error            TEXT,
  tenant           TEXT NOT NULL,
  project          TEXT NOT NULL,
  caller           TEXT,
  priority         INTEGER NOT NULL,
  lane             TEXT,
  labels           TEXT,
  metadata         TEXT,
  attempt          INTEGER NOT NULL DEFAULT 0,
  attempt_id       TEXT,
  max_retries      INTEGER NOT NULL,
  backoff          TEXT,
  crash_policy     TEXT NOT NULL,
  crash_count      INTEGER NOT NULL DEFAULT 0,
  max_crashes      INTEGER NOT NULL,
  lease_ms         INTEGER NOT NULL,
  lease_expires_at INTEGER,
  timeout_ms       INTEGER,
  progress         REAL,
  progress_note    TEXT,
  run_at           INTEGER NOT NULL,
  deps_left        INTEGER NOT NULL DEFAULT 0,
  depends_on       TEXT,
  has_dependents   INTEGER NOT NULL DEFAULT 0,
  idempotency_key  TEXT,
  request_id       TEXT,
  workflow_id      TEXT,
  engine_name      TEXT,
  trace_context    TEXT,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  completed_at     INTEGER,
  updated_at       INTEGER NOT NULL
);

-- The ready predicate: what a claim reads, per type, best first.
CREATE INDEX IF NOT EXISTS loom_tasks_ready
  ON loom_tasks (type, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0;

-- The prefetch predicate: ready tasks of the "retry" crash policy, the only ones an engine may
-- claim ahead into its local buffer. Without it, prefetching past many "fail"-policy tasks
-- would walk all of them on every claim.
CREATE INDEX IF NOT EXISTS loom_tasks_ready_retry
  ON loom_tasks (type, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND crash_policy = 'retry';

-- Attempts in flight: lease rescue and per-engine recovery scan only these.
CREATE INDEX IF NOT EXISTS loom_tasks_active
  ON loom_tasks (lease_expires_at)
  WHERE status IN ('claimed', 'running');

CREATE UNIQUE INDEX IF NOT EXISTS loom_tasks_idempotency
  ON loom_tasks (tenant, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE INDEX IF NOT EXISTS loom_tasks_workflow
  ON loom_tasks (workflow_id)
  WHERE workflow_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS loom_task_deps (
  depends_on TEXT NOT NULL,
  task_id    TEXT NOT NULL,
  PRIMARY KEY (depends_on, task_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS loom_task_deps_task ON loom_task_deps (task_id);

CREATE TABLE IF NOT EXISTS loom_task_types (
  type TEXT PRIMARY KEY
) WITHOUT ROWID;
