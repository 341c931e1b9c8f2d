import type { TaskStatus } from "../core/types.js";
import type { CatchUp, FlowRow, FlowStatus, ScheduleRow } from "../store/flows.js";

// SQL fragments and row mappings both SQL stores share for flows and schedules (same column
// names; times as epoch ms).

/**
 * A flow's status, derived from its tasks in the query that reads it (never stored, so it
 * cannot drift): a failed task fails the flow; otherwise it runs while any task has not ended;
 * once all ended it is cancelled if any was cancelled, else completed. `t` is the tasks table.
 */
export const FLOW_STATUS_SQL = `CASE
    WHEN SUM(CASE WHEN t.status IN ('failed', 'failed_crash') THEN 1 ELSE 0 END) > 0 THEN 'failed'
    WHEN SUM(CASE WHEN t.status IN ('pending', 'claimed', 'running', 'retrying') THEN 1 ELSE 0 END) > 0 THEN 'running'
    WHEN SUM(CASE WHEN t.status = 'cancelled' THEN 1 ELSE 0 END) > 0 THEN 'cancelled'
    ELSE 'completed' END`;

/** When the last task ended, once none is still open. */
export const FLOW_COMPLETED_AT_SQL = `CASE
    WHEN SUM(CASE WHEN t.status IN ('pending', 'claimed', 'running', 'retrying') THEN 1 ELSE 0 END) > 0 THEN NULL
    ELSE MAX(t.completed_at) END`;

export interface FlowHeadRow {
  id: string;
  name: string;
  tenant: string;
  project: string;
  created_at: number | string;
  status: FlowStatus;
  completed_at: number | string | null;
}

export interface FlowTaskRow {
  flow_id: string;
  key: string;
  task_id: string;
  type: string;
  depends_on: string;
  status: TaskStatus | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

/** Flow records from their head rows (in order) and all their task rows (in position order). */
export function toFlows(heads: FlowHeadRow[], tasks: FlowTaskRow[]): FlowRow[] {
  const byFlow = new Map<string, FlowRow["tasks"]>();
  for (const t of tasks) {
    let list = byFlow.get(t.flow_id);
    if (!list) byFlow.set(t.flow_id, (list = []));
    list.push({
      key: t.key,
      taskId: t.task_id,
      type: t.type,
      status: t.status,
      dependsOn: JSON.parse(t.depends_on) as string[],
    });
  }
  return heads.map((h) => ({
    id: h.id,
    name: h.name,
    status: h.status,
    tenant: h.tenant,
    project: h.project,
    createdAt: Number(h.created_at),
    completedAt: num(h.completed_at),
    tasks: byFlow.get(h.id) ?? [],
  }));
}

export interface ScheduleDbRow {
  name: string;
  cron: string;
  timezone: string;
  type: string | null;
  workflow: string | null;
  input: string | null;
  catch_up: CatchUp;
  tenant: string;
  project: string;
  next_run_at: number | string | null;
  last_run_at: number | string | null;
  last_task_id: string | null;
  created_at: number | string;
  updated_at: number | string;
}

export const toSchedule = (r: ScheduleDbRow): ScheduleRow => ({
  name: r.name,
  cron: r.cron,
  timezone: r.timezone,
  type: r.type,
  workflow: r.workflow,
  input: r.input,
  catchUp: r.catch_up,
  tenant: r.tenant,
  project: r.project,
  nextRunAt: num(r.next_run_at),
  lastRunAt: num(r.last_run_at),
  lastTaskId: r.last_task_id,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/**
 * Upsert of a schedule: the last writer wins, but a row whose cron and timezone did not change
 * keeps its next tick (re-declaring at boot neither skips nor repeats one). `S` is the table,
 * `p(i)` renders the i-th (1-based) parameter.
 */
export function upsertScheduleSql(S: string, p: (i: number) => string): string {
  return `INSERT INTO ${S} AS s (name, cron, timezone, type, workflow, input, catch_up, tenant,
      project, next_run_at, created_at, updated_at)
    VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11].map(p).join(", ")})
    ON CONFLICT (name) DO UPDATE SET
      next_run_at = CASE
        WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone
          AND s.next_run_at IS NOT NULL THEN s.next_run_at
        ELSE excluded.next_run_at END,
      cron = excluded.cron, timezone = excluded.timezone, type = excluded.type,
      workflow = excluded.workflow, input = excluded.input, catch_up = excluded.catch_up,
      tenant = excluded.tenant, project = excluded.project, updated_at = excluded.updated_at
    RETURNING *`;
}

/** The compare-and-set that fires a tick: applies only while `next_run_at` is the expected one. */
export function fireScheduleSql(S: string, p: (i: number) => string): string {
  return `UPDATE ${S} SET next_run_at = ${p(1)}, last_run_at = COALESCE(${p(2)}, last_run_at),
      last_task_id = COALESCE(${p(3)}, last_task_id), updated_at = ${p(4)}
    WHERE name = ${p(5)} AND next_run_at = ${p(6)}`;
}
