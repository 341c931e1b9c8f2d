import type { Page, TaskStatus } from "../core/types.js";
import type { InsertOutcome, NewTask } from "./store.js";

// The store side of flows (task DAGs) and cron schedules. Each method is one round trip / one
// transaction, like the rest of `Store`; the conformance suite pins both stores to it.

export const FLOW_STATUSES = ["running", "completed", "failed", "cancelled"] as const;
export type FlowStatus = (typeof FLOW_STATUSES)[number];

export interface NewFlow {
  id: string;
  name: string;
  tenant: string;
  project: string;
  createdAt: number;
  /** In the order given; `taskId` is the id of the matching row in `insertFlow`'s tasks. */
  tasks: { key: string; taskId: string; type: string; dependsOn: string[] }[];
}

/** A flow as the store reads it: its status derived from its tasks' rows in the same query. */
export interface FlowRow {
  id: string;
  name: string;
  status: FlowStatus;
  tenant: string;
  project: string;
  createdAt: number;
  /** When its last task ended, once every task has ended; else `null`. */
  completedAt: number | null;
  tasks: {
    key: string;
    taskId: string;
    type: string;
    /** `null` when the task row was purged by retention. */
    status: TaskStatus | null;
    dependsOn: string[];
  }[];
}

export interface FlowFilter {
  status?: FlowStatus;
  tenant?: string;
  project?: string;
  /** 1–1000, default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface FlowStore {
  /**
   * Insert the flow, its key → task mapping and its tasks (ordered so that dependencies come
   * first), all in one transaction: all or nothing.
   */
  insertFlow(flow: NewFlow, tasks: NewTask[]): Promise<InsertOutcome[]>;
  getFlow(id: string): Promise<FlowRow | null>;
  /** Newest first. */
  listFlows(filter: FlowFilter): Promise<Page<FlowRow>>;
  /** The flow a task belongs to, or `null`. */
  flowOfTask(taskId: string): Promise<string | null>;
}

export const CATCH_UP_MODES = ["skip", "last", "all"] as const;
export type CatchUp = (typeof CATCH_UP_MODES)[number];

export interface ScheduleRow {
  name: string;
  cron: string;
  timezone: string;
  type: string | null;
  workflow: string | null;
  /** JSON text or null. */
  input: string | null;
  catchUp: CatchUp;
  tenant: string;
  project: string;
  /** The next tick to fire (epoch ms); `null` when the pattern never fires again. */
  nextRunAt: number | null;
  lastRunAt: number | null;
  lastTaskId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What `upsertSchedule` writes: a row without the firing history. */
export type NewSchedule = Omit<ScheduleRow, "lastRunAt" | "lastTaskId" | "createdAt" | "updatedAt">;

export interface ScheduleFiring {
  name: string;
  /** The row's `next_run_at` the caller read: the write applies only if it is still that. */
  expected: number;
  /** The new `next_run_at`. */
  next: number | null;
  /** The tick fired (becomes `last_run_at`), or `null` when ticks are skipped without firing. */
  tick: number | null;
  /** The task of the tick (its id becomes `last_task_id`), or `null`. */
  task: NewTask | null;
  now: number;
}

export interface ScheduleStore {
  /**
   * Create or replace a schedule (the last writer wins). An existing row with the same cron and
   * timezone keeps its `next_run_at` and firing history, so re-declaring a schedule at every
   * boot neither skips nor repeats a tick.
   */
  upsertSchedule(s: NewSchedule, now: number): Promise<ScheduleRow>;
  getSchedule(name: string): Promise<ScheduleRow | null>;
  /** By name. */
  listSchedules(filter: { tenant?: string; project?: string }): Promise<ScheduleRow[]>;
  /** True when a row was deleted. */
  removeSchedule(name: string): Promise<boolean>;
  /** Schedules whose `next_run_at` is at or before `now`, earliest first. */
  dueSchedules(now: number, limit: number): Promise<ScheduleRow[]>;
  /** The earliest `next_run_at` of any schedule, or `null`. */
  nextScheduleAt(): Promise<number | null>;
  /**
   * Fire one tick, exactly once across processes: in one transaction, move `next_run_at` from
   * `expected` to `next` (compare-and-set) and, only if that applied, insert `task`.
   * `fired: false` means another process got there first and nothing was written.
   */
  fireSchedule(f: ScheduleFiring): Promise<{ fired: boolean; outcome: InsertOutcome | null }>;
}
