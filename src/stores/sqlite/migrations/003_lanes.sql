-- Engine lanes (DESIGN §5 "Lane claims"). A lane row holds the settings every process reads at
-- claim time (the last writer wins) and a serve sequence; lane-caller rows remember when each
-- caller was last served (ties in fair share go to the least recently served). Running counts
-- are not stored: a claim counts the lane's claimed/running task rows under the write lock, so
-- a completion, failure, cancellation or crash rescue frees the slot by the same write.

CREATE TABLE IF NOT EXISTS loom_lanes (
  name         TEXT PRIMARY KEY,
  concurrency  INTEGER NOT NULL,
  fairness     TEXT NOT NULL,
  preemption   TEXT,
  max_queue    INTEGER,
  serve_seq    INTEGER NOT NULL DEFAULT 0,
  updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS loom_lane_callers (
  lane        TEXT NOT NULL,
  caller      TEXT NOT NULL,
  served_seq  INTEGER NOT NULL,
  PRIMARY KEY (lane, caller)
) WITHOUT ROWID;

-- Ready laned tasks per caller, best first: the fair-share claim walks callers along it.
CREATE INDEX IF NOT EXISTS loom_tasks_lane_ready
  ON loom_tasks (lane, caller, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND lane IS NOT NULL;

-- Ready laned tasks in plain priority order (fairness "none", queue positions).
CREATE INDEX IF NOT EXISTS loom_tasks_lane_order
  ON loom_tasks (lane, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND lane IS NOT NULL;

-- Attempts in flight per lane and caller: what a claim counts.
CREATE INDEX IF NOT EXISTS loom_tasks_lane_active
  ON loom_tasks (lane, caller)
  WHERE status IN ('claimed', 'running') AND lane IS NOT NULL;

-- Recent completions per lane: throughput and mean run time for stats and ETAs.
CREATE INDEX IF NOT EXISTS loom_tasks_lane_done
  ON loom_tasks (lane, completed_at)
  WHERE status = 'completed' AND lane IS NOT NULL;

-- Preemption: `preemptible` is set by the lane claim (the claiming engine registered the type
-- with `preemptible: true`); `preempt_at` is set on a running victim by a lane claim that found
-- the lane full with higher-priority work waiting. The victim's engine aborts it and releases it
-- to `pending`; the next lane claim of it clears the mark.
ALTER TABLE loom_tasks ADD COLUMN preemptible INTEGER NOT NULL DEFAULT 0;
ALTER TABLE loom_tasks ADD COLUMN preempt_at INTEGER;

CREATE INDEX IF NOT EXISTS loom_tasks_preempted
  ON loom_tasks (engine_name)
  WHERE preempt_at IS NOT NULL;
