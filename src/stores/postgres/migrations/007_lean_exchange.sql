-- The dispatcher's exchange, leaner (same signature and semantics as in 001_tasks.sql):
-- - an applied settlement returns no row (its status follows from its kind: 'c' completed,
--   'f' failed, 'r' retrying, 'p' pending); only stale settlements and cancelled dependents do.
--   A batch of completions no longer sends back one row per task.
-- - claimed rows are updated by physical address (ctid) instead of a primary-key lookup each:
--   the rows are locked by the same statement's FOR UPDATE, so their address cannot change.
-- - claimed rows come straight from the claim's `UPDATE ... RETURNING`, in no particular order;
--   the engine puts them in claim order (priority, then run_at, then id). Copying whole rows
--   into a CTE and sorting the batch on the server sat on the claim's critical path.
-- - every statement runs on its cached generic plan (`plan_cache_mode`): left to choose, the plan
--   cache kept planning the claims afresh on every call (their `LIMIT` is a parameter, which
--   makes the generic plan look dearer than it is), and an idle worker's pickup paid ~0.5 ms for
--   it. Each statement is written to be right under a generic plan: rows are found by primary
--   key or `ctid`, claims walk their index in order, and the stale-settlement lookup is linear.
--   Settlements test ownership inside a CASE: as a plain `status IN ('claimed', 'running')` the
--   planner may instead read all of `tasks_active` (whose predicate that is), once per batch or,
--   with stale statistics, once per settlement.

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
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_ords integer[];
  v_unblock text[];
  v_failed_ords integer[];
  v_failed_ids text[];
  v_notify boolean := false;
  v_n integer;
  v_tids tid[];
  v_applied boolean[];
  v_o integer;
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
         WHERE CASE WHEN c.status IN ('claimed', 'running') THEN true END
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
         WHERE t.id = s.id AND t.attempt_id = s.attempt_id
           AND CASE WHEN t.status IN ('claimed', 'running') THEN true END
        RETURNING s.ord::integer AS ord, t.id, t.status, t.has_dependents
      )
      SELECT array_agg(u.ord),
             array_agg(u.id) FILTER (WHERE u.has_dependents AND u.status = 'completed'),
             array_agg(u.ord ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed'),
             array_agg(u.id ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed')
        INTO v_ords, v_unblock, v_failed_ords, v_failed_ids
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
         WHERE t.id = s.id AND t.attempt_id = s.attempt_id
           AND CASE WHEN t.status IN ('claimed', 'running') THEN true END
        RETURNING s.ord::integer AS ord, t.id, t.status, t.has_dependents
      )
      SELECT array_agg(u.ord),
             array_agg(u.id) FILTER (WHERE u.has_dependents AND u.status = 'completed'),
             array_agg(u.ord ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed'),
             array_agg(u.id ORDER BY u.ord) FILTER (WHERE u.has_dependents AND u.status = 'failed')
        INTO v_ords, v_unblock, v_failed_ords, v_failed_ids
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

    -- A row only for a stale settlement, with the status it found: an applied one's status
    -- follows from its kind, so the caller fills those in without reading a row each. Usually
    -- every settlement applied, and there is nothing to look for. The applied ones are marked
    -- in an array first, so the lookup stays linear in the batch whatever the plan.
    IF coalesce(cardinality(v_ords), 0) < cardinality(p_ids) THEN
      v_applied := array_fill(false, ARRAY[cardinality(p_ids)]);
      IF v_ords IS NOT NULL THEN
        FOREACH v_o IN ARRAY v_ords LOOP
          v_applied[v_o] := true;
        END LOOP;
      END IF;
      RETURN QUERY
        SELECT 0::smallint, s.ord::integer, s.id, false,
               (SELECT c.status FROM {{schema}}.tasks c WHERE c.id = s.id),
               NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::integer,
               NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text, NULL::text,
               NULL::bigint, NULL::integer, NULL::integer, NULL::text, NULL::bigint,
               NULL::bigint, NULL::text, NULL::text
          FROM unnest(p_ids, v_applied) WITH ORDINALITY AS s(id, applied, ord)
         WHERE NOT s.applied;
    END IF;
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
        SELECT array_agg(b.tid) INTO v_tids FROM (
          SELECT r.ctid AS tid FROM {{schema}}.tasks r
           WHERE r.type = p_types[1] AND r.status IN ('pending', 'retrying')
             AND r.deps_left = 0 AND r.run_at <= p_now
           ORDER BY r.priority DESC, r.run_at, r.id
           LIMIT v_n
             FOR UPDATE SKIP LOCKED) b;
      ELSIF v_pass = 1 THEN
        -- Several types: the best v_n of each type's own index range, merged.
        SELECT array_agg(b.tid) INTO v_tids FROM (
          SELECT b.tid FROM unnest(p_types) AS ty(type)
           CROSS JOIN LATERAL (
             SELECT r.ctid AS tid, r.priority, r.run_at, r.id FROM {{schema}}.tasks r
              WHERE r.type = ty.type AND r.status IN ('pending', 'retrying')
                AND r.deps_left = 0 AND r.run_at <= p_now
              ORDER BY r.priority DESC, r.run_at, r.id
              LIMIT v_n
                FOR UPDATE SKIP LOCKED) b
           ORDER BY b.priority DESC, b.run_at, b.id
           LIMIT v_n) b;
      ELSIF cardinality(p_types) = 1 THEN
        SELECT array_agg(b.tid) INTO v_tids FROM (
          SELECT r.ctid AS tid FROM {{schema}}.tasks r
           WHERE r.type = p_types[1] AND r.status IN ('pending', 'retrying')
             AND r.deps_left = 0 AND r.crash_policy = 'retry' AND r.run_at <= p_now
           ORDER BY r.priority DESC, r.run_at, r.id
           LIMIT v_n
             FOR UPDATE SKIP LOCKED) b;
      ELSE
        SELECT array_agg(b.tid) INTO v_tids FROM (
          SELECT b.tid FROM unnest(p_types) AS ty(type)
           CROSS JOIN LATERAL (
             SELECT r.ctid AS tid, r.priority, r.run_at, r.id FROM {{schema}}.tasks r
              WHERE r.type = ty.type AND r.status IN ('pending', 'retrying')
                AND r.deps_left = 0 AND r.crash_policy = 'retry' AND r.run_at <= p_now
              ORDER BY r.priority DESC, r.run_at, r.id
              LIMIT v_n
                FOR UPDATE SKIP LOCKED) b
           ORDER BY b.priority DESC, b.run_at, b.id
           LIMIT v_n) b;
      END IF;
      CONTINUE WHEN v_tids IS NULL;
      RETURN QUERY
        UPDATE {{schema}}.tasks t
           SET status = CASE v_pass WHEN 1 THEN 'running' ELSE 'claimed' END,
               attempt = t.attempt + 1, attempt_id = p_nonce || '.' || (t.attempt + 1),
               engine_name = p_engine, lease_expires_at = p_now + t.lease_ms,
               -- A prefetched task starts later, without a write: its claim time stands in.
               started_at = p_now,
               updated_at = p_now, progress = NULL, progress_note = NULL
         WHERE t.ctid = ANY (v_tids)
        RETURNING (v_pass + 1)::smallint, NULL::integer, t.id, NULL::boolean, t.status, t.type,
               t.tenant, t.project, t.request_id, t.workflow_id, t.attempt, t.attempt_id,
               t.input, t.caller, t.priority, t.labels, t.metadata, t.timeout_ms,
               t.max_retries, t.crash_count, t.backoff, t.lease_ms, t.run_at, t.trace_context,
               NULL::text;
    END LOOP;
  END IF;
END
$$;
