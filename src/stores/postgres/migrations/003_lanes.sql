-- Engine lanes (DESIGN §5 "Lane claims"). A lane row holds the settings every process reads at
-- claim time (the last writer wins) and a serve sequence; a lane claim locks it (FOR UPDATE), so
-- claims for one lane are serialised while other lanes and plain tasks are not touched. Running
-- counts are not stored: the claim counts the lane's claimed/running task rows after taking the
-- lock, so completion, failure, cancellation and crash rescue free a slot by the same write that
-- changes the task, and nothing can drift or leak. Lane-caller rows remember when each caller was
-- last served (fair-share ties go to the least recently served).

CREATE TABLE IF NOT EXISTS {{schema}}.lanes (
  name         text PRIMARY KEY,
  concurrency  integer NOT NULL CHECK (concurrency >= 1),
  fairness     text NOT NULL CHECK (fairness IN ('caller', 'none')),
  preemption   text,
  max_queue    integer,
  serve_seq    bigint NOT NULL DEFAULT 0,
  updated_at   bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS {{schema}}.lane_callers (
  lane        text NOT NULL,
  caller      text NOT NULL,
  served_seq  bigint NOT NULL,
  PRIMARY KEY (lane, caller)
);

-- Ready laned tasks per caller, best first: the fair-share claim walks callers along it.
CREATE INDEX IF NOT EXISTS tasks_lane_ready
  ON {{schema}}.tasks (lane, caller, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND lane IS NOT NULL;

-- Ready laned tasks in plain priority order (fairness "none", queue positions).
CREATE INDEX IF NOT EXISTS tasks_lane_order
  ON {{schema}}.tasks (lane, priority DESC, run_at, id)
  WHERE status IN ('pending', 'retrying') AND deps_left = 0 AND lane IS NOT NULL;

-- Attempts in flight per lane and caller: what a claim counts.
CREATE INDEX IF NOT EXISTS tasks_lane_active
  ON {{schema}}.tasks (lane, caller)
  WHERE status IN ('claimed', 'running') AND lane IS NOT NULL;

-- Recent completions per lane: throughput and mean run time for stats and ETAs.
CREATE INDEX IF NOT EXISTS tasks_lane_done
  ON {{schema}}.tasks (lane, completed_at)
  WHERE status = 'completed' AND lane IS NOT NULL;

-- Preemption: `preemptible` is set by the lane claim (the claiming engine registered the type
-- with `preemptible: true`); `preempt_at` is set on a running victim by a lane claim that found
-- the lane full with higher-priority work waiting. The victim's engine aborts it and releases it
-- to `pending`; the next lane claim of it clears the mark.
ALTER TABLE {{schema}}.tasks ADD COLUMN IF NOT EXISTS preemptible boolean NOT NULL DEFAULT false;
ALTER TABLE {{schema}}.tasks ADD COLUMN IF NOT EXISTS preempt_at bigint;

CREATE INDEX IF NOT EXISTS tasks_preempted
  ON {{schema}}.tasks (engine_name)
  WHERE preempt_at IS NOT NULL;
