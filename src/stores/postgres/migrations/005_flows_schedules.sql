-- Flows (task DAGs) and cron schedules. A flow's status is not stored: it is derived from its
-- tasks' rows whenever it is read, so it can never drift from them. Times are epoch milliseconds.

CREATE TABLE IF NOT EXISTS {{schema}}.flows (
  id         text COLLATE "C" PRIMARY KEY,
  name       text NOT NULL,
  tenant     text NOT NULL,
  project    text NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_by_tenant ON {{schema}}.flows (tenant, project, id);

-- One row per task of a flow: its key, and its dependencies as keys (JSON array text).
CREATE TABLE IF NOT EXISTS {{schema}}.flow_tasks (
  flow_id    text COLLATE "C" NOT NULL,
  key        text NOT NULL,
  position   integer NOT NULL,
  task_id    text COLLATE "C" NOT NULL,
  type       text NOT NULL,
  depends_on text NOT NULL,
  PRIMARY KEY (flow_id, key)
);
-- From a task to its flow.
CREATE UNIQUE INDEX IF NOT EXISTS flow_tasks_by_task ON {{schema}}.flow_tasks (task_id);

CREATE TABLE IF NOT EXISTS {{schema}}.schedules (
  name         text PRIMARY KEY,
  cron         text NOT NULL,
  timezone     text NOT NULL,
  type         text,
  workflow     text,
  input        text,
  catch_up     text NOT NULL,
  tenant       text NOT NULL,
  project      text NOT NULL,
  next_run_at  bigint,
  last_run_at  bigint,
  last_task_id text,
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON {{schema}}.schedules (next_run_at);
