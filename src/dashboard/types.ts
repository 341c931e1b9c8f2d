// The wire shapes the dashboard reads (docs/http.md and the agreed feature shapes).

export const TASK_STATUSES = [
  "pending",
  "claimed",
  "running",
  "retrying",
  "completed",
  "failed",
  "failed_crash",
  "cancelled",
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL: readonly string[] = ["completed", "failed", "failed_crash", "cancelled"];

export interface Task {
  id: string;
  type: string;
  status: TaskStatus;
  input: unknown;
  result: unknown;
  error: string | null;
  tenant: string;
  project: string;
  caller: string | null;
  priority: number;
  lane: string | null;
  labels: Record<string, string>;
  metadata: Record<string, unknown>;
  attempt: number;
  maxRetries: number;
  progress: number | null;
  progressNote: string | null;
  runAt: string;
  dependsOn: string[];
  workflowId: string | null;
  engineName: string | null;
  timeoutMs: number | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  updatedAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface LoomEvent {
  type: string;
  taskId?: string;
  workflowId?: string;
  taskType?: string;
  tenant: string;
  project: string;
  status: string;
  attempt: number;
  at: string;
  progress?: number;
  note?: string;
  error?: string;
}

export interface LaneStats {
  name: string;
  concurrency: number;
  running: number;
  queued: number;
  oldestQueuedAt: string | null;
  throughput1m: number;
  etaMs: number | null;
  perCaller: { caller: string; running: number; queued: number }[];
}

export interface Stats {
  counts: Record<TaskStatus, number>;
  throughput: { at: string; completed: number; failed: number }[];
  lanes: LaneStats[];
}

export interface WorkflowRun {
  id: string;
  name: string;
  version: number | string;
  status: string;
  input: unknown;
  result: unknown;
  error: string | null;
  state: unknown;
  tenant: string;
  project: string;
  parentId: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  waitingFor?: {
    kind: "signal" | "timer" | "activity" | "child";
    name: string;
    until?: string;
  } | null;
}

export interface HistoryEvent {
  seq: number;
  kind: string;
  name: string | null;
  data: unknown;
  at: string;
}

export interface FlowTask {
  key: string;
  taskId: string;
  type: string;
  /** null when the task row is gone (purged). */
  status: string | null;
  dependsOn: string[];
}

export interface Flow {
  id: string;
  name: string;
  status: string;
  tenant: string;
  project: string;
  createdAt: string;
  completedAt: string | null;
  tasks: FlowTask[];
}

export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  type: string | null;
  workflow: string | null;
  input: unknown;
  catchUp: unknown;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastTaskId: string | null;
}
