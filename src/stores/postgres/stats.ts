import type { TaskStatus } from "../../core/types.js";
import type { TaskStatsQuery, TaskStatsResult, ThroughputBucket } from "../../store/stats.js";

type Query = <R extends Record<string, unknown>>(
  what: string,
  text: string,
  values: unknown[],
) => Promise<{ rows: R[] }>;

/**
 * Counts by status and per-minute throughput in one statement. No index serves either: the
 * tasks table deliberately has none on (tenant, project) or completed_at (every state change
 * would pay for it), so the stats reader pays a scan instead.
 */
export async function postgresTaskStats(
  q: Query,
  table: string,
  query: TaskStatsQuery,
): Promise<TaskStatsResult> {
  const params: unknown[] = [Math.floor(query.since)];
  const where: string[] = [];
  if (query.tenant !== undefined) {
    params.push(query.tenant);
    where.push(`tenant = $${params.length}`);
  }
  if (query.project !== undefined) {
    params.push(query.project);
    where.push(`project = $${params.length}`);
  }
  const scope = where.length ? `WHERE ${where.join(" AND ")}` : "";
  const res = await q<{ kind: string; key: string; a: number; b: number }>(
    "stats",
    `WITH scoped AS (SELECT status, completed_at FROM ${table} ${scope})
     SELECT 's' AS kind, status AS key, count(*)::int AS a, 0 AS b FROM scoped GROUP BY status
     UNION ALL
     SELECT 't', ((completed_at / 60000) * 60000)::text,
            count(*) FILTER (WHERE status = 'completed')::int,
            count(*) FILTER (WHERE status <> 'completed')::int
       FROM scoped
      WHERE completed_at >= $1 AND status IN ('completed', 'failed', 'failed_crash')
      GROUP BY 2`,
    params,
  );
  const counts: Partial<Record<TaskStatus, number>> = {};
  const throughput: ThroughputBucket[] = [];
  for (const r of res.rows) {
    if (r.kind === "s") counts[r.key as TaskStatus] = r.a;
    else throughput.push({ at: Number(r.key), completed: r.a, failed: r.b });
  }
  throughput.sort((x, y) => x.at - y.at);
  return { counts, throughput };
}
