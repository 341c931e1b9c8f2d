import { MINUTE_MS } from "../store/stats.js";
import type { Store } from "../store/store.js";
import { assertName } from "./task-request.js";
import { TASK_STATUSES, type TaskStatus } from "./types.js";

export interface StatsOptions {
  /** Only this tenant's tasks (default: every tenant). */
  tenant?: string;
  project?: string;
}

export interface EngineStats {
  /** Tasks by status, every status present (0 when none). */
  counts: Record<TaskStatus, number>;
  /**
   * Completed and failed (including `failed_crash`) tasks per minute over the last 60 minutes,
   * oldest first; the last entry is the current, partial minute. `at` is the minute's start.
   */
  throughput: { at: Date; completed: number; failed: number }[];
}

export const THROUGHPUT_MINUTES = 60;

/** `engine.stats()`: one store read, shaped into a full status table and 60 minute buckets. */
export async function readStats(
  store: Store,
  now: number,
  opts: StatsOptions,
): Promise<EngineStats> {
  const query: { tenant?: string; project?: string; since: number } = { since: 0 };
  if (opts.tenant !== undefined) query.tenant = assertName(opts.tenant, "tenant");
  if (opts.project !== undefined) query.project = assertName(opts.project, "project");
  const thisMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  query.since = thisMinute - (THROUGHPUT_MINUTES - 1) * MINUTE_MS;
  const raw = await store.taskStats(query);
  const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, raw.counts[s] ?? 0])) as Record<
    TaskStatus,
    number
  >;
  const byMinute = new Map(raw.throughput.map((b) => [b.at, b]));
  const throughput = [];
  for (let at = query.since; at <= thisMinute; at += MINUTE_MS) {
    const b = byMinute.get(at);
    throughput.push({ at: new Date(at), completed: b?.completed ?? 0, failed: b?.failed ?? 0 });
  }
  return { counts, throughput };
}
