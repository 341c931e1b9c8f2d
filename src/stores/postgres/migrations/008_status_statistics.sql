-- No planner statistics on `tasks.status`. A queue's mix of statuses changes by the second, so
-- whatever ANALYZE saw is soon wrong, and wrong in the worst way: analyzed while few tasks were
-- in flight, the planner believes `tasks_active` holds about one row and prefers reading it in
-- full over a primary-key lookup. A batch of completions (or heartbeats) then became a nested
-- loop over every in-flight task for each settlement: 500 completions took 80-120 ms instead of
-- 5 ms once the cached plan went generic. Without statistics the planner assumes a small fixed
-- share of the table per status and looks tasks up by primary key.
ALTER TABLE {{schema}}.tasks ALTER COLUMN status SET STATISTICS 0;
