import type { TaskStatus } from "../core/types.js";

/** One minute of finished work: `at` is the minute's start (epoch ms, a multiple of 60 000). */
export interface ThroughputBucket {
  at: number;
  completed: number;
  /** `failed` and `failed_crash` together. */
  failed: number;
}

export interface TaskStatsQuery {
  tenant?: string;
  project?: string;
  /** Throughput counts tasks that ended at or after this time (epoch ms). */
  since: number;
}

export interface TaskStatsResult {
  /** Tasks by status; a status with no tasks may be missing. */
  counts: Partial<Record<TaskStatus, number>>;
  /** Minutes with at least one completed or failed task since `query.since`, oldest first. */
  throughput: ThroughputBucket[];
}

export const MINUTE_MS = 60_000;
