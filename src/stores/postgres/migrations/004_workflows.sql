-- Durable workflows: a run row, its append-only history, and the signals it received.
-- Wake-ups are ordinary tasks of the reserved type 'loom.workflow' carrying workflow_id.

CREATE TABLE IF NOT EXISTS {{schema}}.workflows (
  id           text COLLATE "C" PRIMARY KEY,
  name         text NOT NULL,
  version      text NOT NULL,
  status       text NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'completed',
                 'failed', 'cancelled')),
  input        text,
  result       text,
  error        text,
  state        text,
  tenant       text NOT NULL,
  project      text NOT NULL,
  parent_id    text,
  waiting_for  text,
  history_len  integer NOT NULL DEFAULT 0,
  lease_ms     bigint NOT NULL,
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL,
  completed_at bigint
);

CREATE INDEX IF NOT EXISTS workflows_parent
  ON {{schema}}.workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS {{schema}}.workflow_history (
  workflow_id text COLLATE "C" NOT NULL,
  pos         integer NOT NULL,
  seq         integer NOT NULL,
  kind        text NOT NULL,
  name        text,
  data        text,
  at          bigint NOT NULL,
  PRIMARY KEY (workflow_id, pos)
);

CREATE TABLE IF NOT EXISTS {{schema}}.workflow_signals (
  workflow_id text COLLATE "C" NOT NULL,
  pos         integer NOT NULL,
  name        text NOT NULL,
  data        text,
  at          bigint NOT NULL,
  PRIMARY KEY (workflow_id, pos)
);

INSERT INTO {{schema}}.task_types (type) VALUES ('loom.workflow') ON CONFLICT DO NOTHING;

-- Make sure one wake-up of a run is pending, due no later than p_at (a later one is pulled in).
CREATE OR REPLACE FUNCTION {{schema}}.wake_workflow(p_id text, p_at bigint, p_now bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.tasks SET run_at = least(run_at, p_at), updated_at = p_now
   WHERE workflow_id = p_id AND type = 'loom.workflow' AND status IN ('pending', 'retrying');
  IF NOT FOUND THEN
    INSERT INTO {{schema}}.tasks (id, type, status, input, tenant, project, priority, max_retries,
      crash_policy, max_crashes, lease_ms, run_at, workflow_id, created_at, updated_at)
    SELECT 'w' || replace(gen_random_uuid()::text, '-', ''), 'loom.workflow', 'pending',
           json_build_object('workflowId', w.id)::text, w.tenant, w.project, 1, 1000, 'retry',
           1000, w.lease_ms, p_at, w.id, p_now, p_now
      FROM {{schema}}.workflows w
     WHERE w.id = p_id AND w.status NOT IN ('completed', 'failed', 'cancelled');
  END IF;
END
$$;

-- An activity (a task carrying workflow_id) that ends wakes its run in the same transaction,
-- whichever write ended it (completion, failure, crash, cancel). The WHEN clause keeps every
-- other task update free of the function call.
CREATE OR REPLACE FUNCTION {{schema}}.activity_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM {{schema}}.wake_workflow(NEW.workflow_id, NEW.updated_at, NEW.updated_at);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS activity_ended ON {{schema}}.tasks;
CREATE TRIGGER activity_ended AFTER UPDATE OF status ON {{schema}}.tasks
  FOR EACH ROW
  WHEN (NEW.workflow_id IS NOT NULL AND NEW.type <> 'loom.workflow'
        AND NEW.status IN ('completed', 'failed', 'failed_crash', 'cancelled')
        AND OLD.status NOT IN ('completed', 'failed', 'failed_crash', 'cancelled'))
  EXECUTE FUNCTION {{schema}}.activity_ended();
