-- Flows (task DAGs) and cron schedules. A flow's status is not stored: it is derived from its
-- tasks' rows whenever it is read, so it can never drift from them. Times are epoch milliseconds.

CREATE TABLE IF NOT EXISTS loom_flows (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  tenant     TEXT NOT NULL,
  project    TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS loom_flows_by_tenant ON loom_flows (tenant, project, id);

-- One row per task of a flow: its key, and its dependencies as keys (JSON array).
CREATE TABLE IF NOT EXISTS loom_flow_tasks (
  flow_id    TEXT NOT NULL,
  key        TEXT NOT NULL,
  position   INTEGER NOT NULL,
  task_id    TEXT NOT NULL,
  type       TEXT NOT NULL,
  depends_on TEXT NOT NULL,
  PRIMARY KEY (flow_id, key)
);
-- From a task to its flow.
CREATE UNIQUE INDEX IF NOT EXISTS loom_flow_tasks_by_task ON loom_flow_tasks (task_id);

CREATE TABLE IF NOT EXISTS loom_schedules (
  name         TEXT PRIMARY KEY,
  cron         TEXT NOT NULL,
  timezone     TEXT NOT NULL,
  type         TEXT,
  workflow     TEXT,
  input        TEXT,
  catch_up     TEXT NOT NULL,
  tenant       TEXT NOT NULL,
  project      TEXT NOT NULL,
  next_run_at  INTEGER,
  last_run_at  INTEGER,
  last_task_id TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS loom_schedules_due ON loom_schedules (next_run_at);
