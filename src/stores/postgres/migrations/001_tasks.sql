-- Tasks, their dependency edges and the task types seen, in the store's own schema.
-- `{{schema}}` is replaced by the validated, quoted schema name before this file runs; values are
-- always bound parameters. Times are epoch milliseconds (bigint) passed in by the engine, never
-- read from the server clock. JSON columns hold the JSON text exactly as the engine wrote it.

CREATE TABLE IF NOT EXISTS {{schema}}.tasks (
  id               text COLLATE "C" PRIMARY KEY,
  type             text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending', 'claimed', 'running', 'retrying',
                     'completed', 'failed', 'failed_crash', 'cancelled')),
  input            text,
  result           text,
  error            text,
  tenant           text NOT NULL,
  project          text NOT NULL,
  caller           text,
  priority         integer NOT NULL,
  lane             text,
  labels           text,
  metadata         text,
  attempt          integer NOT NULL DEFAULT 0,
  attempt_id       text,
  max_retries      integer NOT NULL,
  backoff          text,
  crash_policy     text NOT NULL CHECK (crash_policy IN ('fail', 'retry')),
  crash_count      integer NOT NULL DEFAULT 0,
  max_crashes      integer NOT NULL,
  lease_ms         bigint NOT NULL,
  lease_expires_at bigint,
  timeout_ms       bigint,
  progress         double precision,
  progress_note    text,
  run_at           bigint NOT NULL,
  deps_left        integer NOT NULL DEFAULT 0,
  depends_on       text,
  has_dependents   boolean NOT NULL DEFAULT false,
  idempotency_key  text,
  request_id       text,
  workflow_id      text,
  engine_name      text,
  trace_context    text,
  created_at       bigint NOT NULL,
  started_at       bigint,
  completed_at     bigint,
  updated_at       bigint NOT NULL
);

-- A queue table churns: let autovacuum keep up with dead row versions.
ALTER TABLE {{schema}}.tasks SET (autovacuum_vacuum_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.05);

-- The ready predicate: what a claim reads, per type, best first. Only waiting tasks are in it, so
-- it stays small however many tasks have ended.
CREATE INDEX IF NOT EXISTS tasks_ready
  ON {{schema}}.tasks (type, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0;

-- The prefetch predicate (DESIGN §3): ready tasks under the "retry" crash policy, the only ones
-- an engine may claim ahead into its buffer. Without it, an engine with prefetch on would walk a
-- whole backlog of "fail"-policy tasks (the default) on every claim to find none.
CREATE INDEX IF NOT EXISTS tasks_ready_retry
  ON {{schema}}.tasks (type, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND crash_policy = 'retry';

-- Attempts in flight: lease rescue, per-engine recovery and agent limits scan only these.
CREATE INDEX IF NOT EXISTS tasks_active
  ON {{schema}}.tasks (lease_expires_at)
  WHERE status IN ('claimed', 'running');

-- Retries waiting for their backoff (promotion back to pending).
CREATE INDEX IF NOT EXISTS tasks_retrying
  ON {{schema}}.tasks (run_at)
  WHERE status = 'retrying';

-- No index on (tenant, project) or on completed_at: every state change is an update that writes
-- a new entry into each index, so each index costs every transition. Lists walk the primary key
-- (newest first) and the retention purge walks it once per sweep.

CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency
  ON {{schema}}.tasks (tenant, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE INDEX IF NOT EXISTS tasks_workflow
  ON {{schema}}.tasks (workflow_id)
  WHERE workflow_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS {{schema}}.task_deps (
  depends_on text COLLATE "C" NOT NULL,
  task_id    text COLLATE "C" NOT NULL,
  PRIMARY KEY (depends_on, task_id)
);

CREATE INDEX IF NOT EXISTS task_deps_task ON {{schema}}.task_deps (task_id);

CREATE TABLE IF NOT EXISTS {{schema}}.task_types (
  type text PRIMARY KEY
);

-- Cancel every unfinished task that depends, directly or transitively, on p_root.
CREATE OR REPLACE FUNCTION {{schema}}.cancel_dependents(p_root text, p_reason text, p_now bigint)
RETURNS TABLE (id text, type text, tenant text, project text, request_id text, workflow_id text,
  attempt integer, status text, error text)
LANGUAGE sql AS $$
  WITH RECURSIVE dependents(id) AS (
    SELECT d.task_id FROM {{schema}}.task_deps d WHERE d.depends_on = p_root
    UNION
    SELECT d.task_id FROM {{schema}}.task_deps d JOIN dependents ON d.depends_on = dependents.id
  )
  UPDATE {{schema}}.tasks t
     SET status = 'cancelled', error = p_reason, completed_at = p_now, updated_at = p_now,
         lease_expires_at = NULL
   WHERE t.id IN (SELECT dependents.id FROM dependents)
     AND t.status NOT IN ('completed', 'failed', 'failed_crash', 'cancelled')
  RETURNING t.id, t.type, t.tenant, t.project, t.request_id, t.workflow_id, t.attempt, t.status,
    t.error
$$;

-- Raised by the single-statement insert when a row was neither created nor matched by its
-- idempotency key; the store then retries the insert in an explicit transaction to find out why.
CREATE OR REPLACE FUNCTION {{schema}}.insert_unresolved(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'loom: task % was not inserted', p_id USING ERRCODE = 'LM001';
END
$$;

-- The dispatch loop's one round trip: settle finished attempts, apply their consequences
-- (unblock or cancel dependents), then claim up to p_limit ready tasks of p_types straight into
-- `running` and up to p_prefetch more `retry`-policy ones into `claimed`. One statement, so one
-- transaction; each statement inside sees the ones before it.
--
-- Settlement kinds: 'c' complete, 'f' fail for good, 'r' fail and retry at p_retry_at, 'p' give
-- back (pending). Rows returned: k = 0 one per settlement (ord is its 1-based position), k = 1 a
-- dependent cancelled because settlement `ord` failed, k = 2 a task claimed into `running`, k = 3
-- one prefetched into `claimed` (hot columns only).
CREATE OR REPLACE FUNCTION {{schema}}.exchange(
  p_now bigint,
  p_ids text[], p_attempts text[], p_kinds text[], p_results text[], p_errors text[],
  p_retry_at bigint[], p_dedup boolean,
  p_engine text, p_types text[], p_limit integer, p_prefetch integer, p_nonce text,
  p_channel text, p_token text)
RETURNS TABLE (k smallint, ord integer, id text, ok boolean, status text, type text,
  tenant text, project text, request_id text, workflow_id text, attempt integer,
  attempt_id text, input text, caller text, priority integer, labels text, metadata text,
  timeout_ms bigint, max_retries integer, crash_count integer, backoff text, lease_ms bigint,
  run_at bigint, trace_context text, error text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ords integer[];
  v_statuses text[];
  v_unblock text[];
  v_failed_ords integer[];
  v_failed_ids text[];
  v_notify boolean := false;
  v_n integer;
  v_ids text[];
BEGIN
  IF coalesce(cardinality(p_ids), 0) > 0 THEN
    IF p_dedup THEN
      -- The same task settled twice in one call: only the first settlement that still owns it
      -- applies (the others are stale), as if they were written one after another.
      WITH s AS (
        SELECT * FROM unnest(p_ids, p_attempts, p_kinds, p_results, p_errors, p_retry_at)
          WITH ORDINALITY AS x(id, attempt_id, kind, result, error, retry_at, ord)
      ), pick AS (
        SELECT DISTINCT ON (s.id) s.*
          FROM s JOIN {{schema}}.tasks c ON c.id = s.id AND c.attempt_id = s.attempt_id
         WHERE c.status IN ('claimed', 'running')
         ORDER BY s.id, s.ord
      ), u AS (
        UPDATE {{schema}}.tasks t
           SET status = CASE s.kind WHEN 'c' THEN 'completed' WHEN 'f' THEN 'failed'
                          WHEN 'r' THEN 'retrying' ELSE 'pending' END,
               result = CASE WHEN s.kind = 'c' THEN s.result ELSE t.result END,
               error = CASE s.kind WHEN 'c' THEN NULL WHEN 'p' THEN t.error ELSE s.error END,
               run_at = CASE WHEN s.kind = 'r' THEN s.retry_at ELSE t.run_at END,
               completed_at = CASE WHEN s.kind IN ('c', 'f') THEN p_now ELSE t.completed_at END,
               -- A give-back uses no retry (retries used = attempt - crash_count).
               attempt = CASE WHEN s.kind = 'p' THEN t.attempt - 1 ELSE t.attempt END,
               updated_at = p_now, lease_expires_at = NULL
          FROM pick s
         WHERE t.id = s.id AND t.attempt_id = s.attempt_id AND t.status IN ('claimed', 'running')
        RETURNING s.ord::integer AS ord, t.id, t.status, t.has_dependents
      )
      SELECT array_agg(u.ord), array_agg(u.status),
             array_agg(u.id) FILTER (WHERE u.has_dependents AND u.status = 'completed'),
             array_agg(u.ord ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed'),
             array_agg(u.id ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed')
        INTO v_ords, v_statuses, v_unblock, v_failed_ords, v_failed_ids
        FROM u;
    ELSE
      WITH s AS (
        SELECT * FROM unnest(p_ids, p_attempts, p_kinds, p_results, p_errors, p_retry_at)
          WITH ORDINALITY AS x(id, attempt_id, kind, result, error, retry_at, ord)
      ), u AS (
        UPDATE {{schema}}.tasks t
           SET status = CASE s.kind WHEN 'c' THEN 'completed' WHEN 'f' THEN 'failed'
                          WHEN 'r' THEN 'retrying' ELSE 'pending' END,
               result = CASE WHEN s.kind = 'c' THEN s.result ELSE t.result END,
               error = CASE s.kind WHEN 'c' THEN NULL WHEN 'p' THEN t.error ELSE s.error END,
               run_at = CASE WHEN s.kind = 'r' THEN s.retry_at ELSE t.run_at END,
               completed_at = CASE WHEN s.kind IN ('c', 'f') THEN p_now ELSE t.completed_at END,
               -- A give-back uses no retry (retries used = attempt - crash_count).
               attempt = CASE WHEN s.kind = 'p' THEN t.attempt - 1 ELSE t.attempt END,
               updated_at = p_now, lease_expires_at = NULL
          FROM s
         WHERE t.id = s.id AND t.attempt_id = s.attempt_id AND t.status IN ('claimed', 'running')
        RETURNING s.ord::integer AS ord, t.id, t.status, t.has_dependents
      )
      SELECT array_agg(u.ord), array_agg(u.status),
             array_agg(u.id) FILTER (WHERE u.has_dependents AND u.status = 'completed'),
             array_agg(u.ord ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed'),
             array_agg(u.id ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed')
        INTO v_ords, v_statuses, v_unblock, v_failed_ords, v_failed_ids
        FROM u;
    END IF;
    -- Any applied settlement is news elsewhere: waiters, agents' allowances, freed work.
    v_notify := v_ords IS NOT NULL;

    -- Completed tasks unblock their dependents (one step per completed dependency).
    IF v_unblock IS NOT NULL THEN
      UPDATE {{schema}}.tasks t
         SET deps_left = greatest(t.deps_left - d.n, 0), updated_at = p_now
        FROM (SELECT dd.task_id, count(*)::integer AS n
                FROM {{schema}}.task_deps dd WHERE dd.depends_on = ANY (v_unblock)
               GROUP BY dd.task_id) d
       WHERE t.id = d.task_id AND t.status = 'pending' AND t.deps_left > 0;
    END IF;

    -- Tasks that failed for good cancel their dependents, transitively, in settlement order.
    IF v_failed_ids IS NOT NULL THEN
      FOR i IN 1 .. cardinality(v_failed_ids) LOOP
        RETURN QUERY
          SELECT 1::smallint, v_failed_ords[i], c.id, NULL::boolean, c.status, c.type, c.tenant,
                 c.project, c.request_id, c.workflow_id, c.attempt, NULL::text, NULL::text,
                 NULL::text, NULL::integer, NULL::text, NULL::text, NULL::bigint, NULL::integer,
                 NULL::integer, NULL::text, NULL::bigint, NULL::bigint, NULL::text, c.error
            FROM {{schema}}.cancel_dependents(v_failed_ids[i],
                   'dependency ' || v_failed_ids[i] || ' ended failed', p_now) c;
      END LOOP;
    END IF;

    -- One row per settlement; a stale one reports the status it found.
    RETURN QUERY
      SELECT 0::smallint, s.ord::integer, s.id, a.status IS NOT NULL,
             coalesce(a.status, (SELECT c.status FROM {{schema}}.tasks c WHERE c.id = s.id)),
             NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::integer,
             NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text, NULL::text,
             NULL::bigint, NULL::integer, NULL::integer, NULL::text, NULL::bigint, NULL::bigint,
             NULL::text, NULL::text
        FROM unnest(p_ids) WITH ORDINALITY AS s(id, ord)
        LEFT JOIN unnest(v_ords, v_statuses) AS a(ord, status) ON a.ord = s.ord;
  END IF;

  -- Wake listeners elsewhere: one notification per transaction whatever the number of rows
  -- (PostgreSQL folds duplicates). The caller passes no channel to leave it out.
  IF v_notify AND p_channel IS NOT NULL THEN
    PERFORM pg_notify(p_channel, p_token);
  END IF;

  -- Claims, in two passes of the same order: up to p_limit tasks straight into `running` (free
  -- slots), then up to p_prefetch more `retry`-policy tasks into `claimed` (the engine's local
  -- buffer; DESIGN §3). Pass 2 sees pass 1's writes, so it picks up where pass 1 stopped; a
  -- `fail`-policy task is never prefetched (its crash would look like "not started"). Pass 2
  -- reads `tasks_ready_retry`, so a backlog of `fail`-policy tasks costs it nothing.
  IF coalesce(cardinality(p_types), 0) > 0 THEN
    FOR v_pass IN 1 .. 2 LOOP
      v_n := CASE v_pass WHEN 1 THEN p_limit ELSE p_prefetch END;
      CONTINUE WHEN coalesce(v_n, 0) <= 0;
      IF v_pass = 1 AND cardinality(p_types) = 1 THEN
        SELECT array_agg(b.id) INTO v_ids FROM (
          SELECT r.id FROM {{schema}}.tasks r
           WHERE r.type = p_types[1] AND r.status IN ('pending', 'retrying')
             AND r.deps_left = 0 AND r.run_at <= p_now
           ORDER BY r.priority DESC, r.run_at, r.id
           LIMIT v_n
             FOR UPDATE SKIP LOCKED) b;
      ELSIF v_pass = 1 THEN
        -- Several types: the best v_n of each type's own index range, merged.
        SELECT array_agg(b.id) INTO v_ids FROM (
          SELECT b.id FROM unnest(p_types) AS ty(type)
           CROSS JOIN LATERAL (
             SELECT r.id, r.priority, r.run_at FROM {{schema}}.tasks r
              WHERE r.type = ty.type AND r.status IN ('pending', 'retrying')
                AND r.deps_left = 0 AND r.run_at <= p_now
              ORDER BY r.priority DESC, r.run_at, r.id
              LIMIT v_n
                FOR UPDATE SKIP LOCKED) b
           ORDER BY b.priority DESC, b.run_at, b.id
           LIMIT v_n) b;
      ELSIF cardinality(p_types) = 1 THEN
        SELECT array_agg(b.id) INTO v_ids FROM (
          SELECT r.id FROM {{schema}}.tasks r
           WHERE r.type = p_types[1] AND r.status IN ('pending', 'retrying')
             AND r.deps_left = 0 AND r.crash_policy = 'retry' AND r.run_at <= p_now
           ORDER BY r.priority DESC, r.run_at, r.id
           LIMIT v_n
             FOR UPDATE SKIP LOCKED) b;
      ELSE
        SELECT array_agg(b.id) INTO v_ids FROM (
          SELECT b.id FROM unnest(p_types) AS ty(type)
           CROSS JOIN LATERAL (
             SELECT r.id, r.priority, r.run_at FROM {{schema}}.tasks r
              WHERE r.type = ty.type AND r.status IN ('pending', 'retrying')
                AND r.deps_left = 0 AND r.crash_policy = 'retry' AND r.run_at <= p_now
              ORDER BY r.priority DESC, r.run_at, r.id
              LIMIT v_n
                FOR UPDATE SKIP LOCKED) b
           ORDER BY b.priority DESC, b.run_at, b.id
           LIMIT v_n) b;
      END IF;
      CONTINUE WHEN v_ids IS NULL;
      RETURN QUERY
        WITH c AS (
          UPDATE {{schema}}.tasks t
             SET status = CASE v_pass WHEN 1 THEN 'running' ELSE 'claimed' END,
                 attempt = t.attempt + 1, attempt_id = p_nonce || '.' || (t.attempt + 1),
                 engine_name = p_engine, lease_expires_at = p_now + t.lease_ms,
                 -- A prefetched task starts later, without a write: its claim time stands in.
                 started_at = p_now,
                 updated_at = p_now, progress = NULL, progress_note = NULL
           WHERE t.id = ANY (v_ids)
          RETURNING t.*
        )
        SELECT (v_pass + 1)::smallint, NULL::integer, c.id, NULL::boolean, c.status, c.type,
               c.tenant, c.project, c.request_id, c.workflow_id, c.attempt, c.attempt_id,
               c.input, c.caller, c.priority, c.labels, c.metadata, c.timeout_ms,
               c.max_retries, c.crash_count, c.backoff, c.lease_ms, c.run_at, c.trace_context,
               NULL::text
          FROM c ORDER BY c.priority DESC, c.run_at, c.id;
    END LOOP;
  END IF;
END
$$;
