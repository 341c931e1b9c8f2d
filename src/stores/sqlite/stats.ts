import type Database from "better-sqlite3";
import type { TaskStatus } from "../../core/types.js";
import type { TaskStatsQuery, TaskStatsResult, ThroughputBucket } from "../../store/stats.js";

/**
 * Counts by status and per-minute throughput, in two reads. Neither has an index of its own: both
 * walk the table, which costs the stats reader (a dashboard polling every few seconds) a scan
 * rather than taxing every completion with one more index write.
 */
export function sqliteTaskStats(db: Database.Database, q: TaskStatsQuery): TaskStatsResult {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.tenant !== undefined) {
    where.push("tenant = ?");
    params.push(q.tenant);
  }
  if (q.project !== undefined) {
    where.push("project = ?");
    params.push(q.project);
  }
  const scope = where.length ? `AND ${where.join(" AND ")}` : "";
  const counts: Partial<Record<TaskStatus, number>> = {};
  const rows = db
    .prepare(`SELECT status, count(*) AS n FROM loom_tasks WHERE 1 = 1 ${scope} GROUP BY status`)
    .all(...params) as { status: TaskStatus; n: number }[];
  for (const r of rows) counts[r.status] = r.n;
  const throughput = db
    .prepare(
      `SELECT (completed_at / 60000) * 60000 AS at,
              sum(status = 'completed') AS completed,
              sum(status <> 'completed') AS failed
         FROM loom_tasks
        WHERE completed_at >= ? AND status IN ('completed', 'failed', 'failed_crash') ${scope}
        GROUP BY 1 ORDER BY 1`,
    )
    .all(Math.floor(q.since), ...params) as ThroughputBucket[];
  return { counts, throughput };
}
