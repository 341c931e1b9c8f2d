import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Logger } from "./logger.js";

export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

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

export const TERMINAL_STATUSES: readonly TaskStatus[] = [
  "completed",
  "failed",
  "failed_crash",
  "cancelled",
];
export const isTerminal = (s: TaskStatus): boolean => TERMINAL_STATUSES.includes(s);

/** Priority levels: higher runs first. */
export const Priority = { low: 0, normal: 1, high: 2, urgent: 3 } as const;
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 3;

export type CrashPolicy = "fail" | "retry";

export interface BackoffOptions {
  /** First delay, in ms. Default 1000. */
  baseMs?: number;
  /** Upper bound of a delay, in ms. Default 60 000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Random spread, 0–1, as a fraction of the delay. Default 0.2. */
  jitter?: number;
}

/** A request to run one task. */
export interface TaskRequest<I = unknown> {
  type: string;
  input?: I;
  tenant?: string;
  project?: string;
  caller?: string;
  /** 0 low, 1 normal (default), 2 high, 3 urgent. */
  priority?: number;
  /** Do not run before this time. */
  runAt?: Date | string | number;
  /** Ids of tasks that must complete first. */
  dependsOn?: string[];
  /** A second submit with the same key (per tenant) returns the first task's id. */
  idempotencyKey?: string;
  labels?: Record<string, string>;
  metadata?: Record<string, unknown>;
  timeoutMs?: number;
  maxRetries?: number;
  requestId?: string;
}

/** A task as read back from the store. Times are `Date`s. */
export interface Task<I = unknown, R = unknown> {
  id: string;
  type: string;
  status: TaskStatus;
  input: I;
  result: R | null;
  /** Redacted error message of the last failed attempt, or why the task was cancelled. */
  error: string | null;
  tenant: string;
  project: string;
  caller: string | null;
  priority: number;
  lane: string | null;
  labels: Record<string, string>;
  metadata: Record<string, unknown>;
  /** Executions started (1 on the first run). */
  attempt: number;
  /** Fencing token of the current (or last) attempt. */
  attemptId: string | null;
  maxRetries: number;
  /** Last reported progress, 0–100. */
  progress: number | null;
  progressNote: string | null;
  runAt: Date;
  dependsOn: string[];
  idempotencyKey: string | null;
  requestId: string | null;
  workflowId: string | null;
  /** The engine (or agent) that holds or last held the task. */
  engineName: string | null;
  timeoutMs: number | null;
  crashPolicy: CrashPolicy;
  crashCount: number;
  maxCrashes: number;
  leaseMs: number;
  leaseExpiresAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
}

export interface TaskFilter {
  tenant?: string;
  project?: string;
  status?: TaskStatus | TaskStatus[];
  type?: string | string[];
  lane?: string;
  /** Every label given must match. */
  labels?: Record<string, string>;
  caller?: string;
  workflowId?: string;
  /** Page size, 1–1000 (default 100). */
  limit?: number;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** What a handler gets besides its task. */
export interface TaskContext {
  /** Aborted on cancel, timeout, lost lease or engine shutdown past its deadline. */
  readonly signal: AbortSignal;
  readonly attempt: number;
  readonly attemptId: string;
  readonly requestId: string | null;
  readonly log: Logger;
  /** Record progress (0–100) and emit `task.progress`. */
  progress(pct: number, note?: string): Promise<void>;
  /** Renew the lease now (the engine also renews leases on its own). */
  heartbeat(): Promise<void>;
}

/** The part of a task a handler sees. */
export interface RunningTask<I = unknown> {
  id: string;
  type: string;
  input: I;
  attempt: number;
  attemptId: string;
  tenant: string;
  project: string;
  caller: string | null;
  priority: number;
  requestId: string | null;
  workflowId: string | null;
  labels: Record<string, string>;
  metadata: Record<string, unknown>;
}

export type HandlerFn<I = unknown, R = unknown> = (
  task: RunningTask<I>,
  ctx: TaskContext,
) => R | Promise<R>;

export interface HandlerObject<I = unknown, R = unknown> {
  execute: HandlerFn<I, R>;
}

export type Handler<I = unknown, R = unknown> = HandlerFn<I, R> | HandlerObject<I, R>;

export interface GateDecision {
  accept: boolean;
  /** With `accept: false`: try again (uses one of `maxRetries`) rather than fail now. */
  retry: boolean;
  reason: string;
}

export interface GateInput {
  taskId: string;
  type: string;
  attempt: number;
  result: unknown;
  /** Earlier results of this task that reached the gate in this engine, oldest first. */
  previousResults: readonly unknown[];
}

export type GateCheck = (input: GateInput) => GateDecision;

export interface RegisterOptions<I = unknown> {
  lane?: string;
  /** Any Standard Schema validator (zod, valibot, arktype…); checked at submit. */
  input?: StandardSchemaV1<unknown, I>;
  timeoutMs?: number;
  maxRetries?: number;
  backoff?: BackoffOptions;
  crashPolicy?: CrashPolicy;
  maxCrashes?: number;
  /** Replaces the engine's default gate; `false` turns the gate off for this type. */
  gate?: GateCheck | GateCheck[] | false;
  leaseMs?: number;
  /**
   * For a laned type whose lane has preemption on: a higher-priority task waiting at the full
   * lane may abort a running attempt of this type (its `ctx.signal`) once it has run
   * `minRuntimeMs`; it goes back to `pending` without using a retry.
   */
  preemptible?: boolean;
}

export interface SubmitOptions {
  /** The caller's own transaction (store-specific client): the task commits or rolls back with it. */
  tx?: unknown;
  /** For a laned type: reject with `LaneBusyError` when the expected wait is longer. */
  maxWaitMs?: number;
}

/** The typed handle `register` returns. */
export interface TaskHandle<I, R> {
  readonly type: string;
  submit(input: I, opts?: Omit<TaskRequest<I>, "type" | "input"> & SubmitOptions): Promise<string>;
  submitMany(inputs: I[]): Promise<string[]>;
  /** Wait for a task of this type and get its typed result. */
  wait(id: string, opts?: { timeoutMs?: number }): Promise<Task<I, R>>;
}

export const TASK_EVENT_TYPES = [
  "task.created",
  "task.claimed",
  "task.running",
  "task.progress",
  "task.retrying",
  "task.completed",
  "task.failed",
  "task.failed_crash",
  "task.cancelled",
] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

export type WorkflowEventType =
  | "workflow.started"
  | "workflow.step"
  | "workflow.signal"
  | "workflow.completed"
  | "workflow.failed"
  | "workflow.cancelled";

export type LoomEventType = TaskEventType | WorkflowEventType;

export interface LoomEvent {
  type: LoomEventType;
  taskId?: string;
  workflowId?: string;
  /** The task's type (for task events). */
  taskType?: string;
  tenant: string;
  project: string;
  requestId: string | null;
  status: string;
  attempt: number;
  at: Date;
  /** Only on `task.progress`. */
  progress?: number;
  note?: string;
  /** Why a task failed, retried or was cancelled (redacted). */
  error?: string;
}

export interface EventFilter {
  types?: LoomEventType[];
  tenant?: string;
  project?: string;
  taskId?: string;
  taskType?: string;
  workflowId?: string;
}
