import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Logger } from "../core/logger.js";
import type { Page } from "../core/types.js";
import type { WorkflowStatus } from "../store/workflows.js";

export type { WorkflowStatus } from "../store/workflows.js";

export type HistoryEventKind =
  | "WORKFLOW_STARTED"
  | "STEP_COMPLETED"
  | "STEP_FAILED"
  | "ACTIVITY_SCHEDULED"
  | "ACTIVITY_COMPLETED"
  | "ACTIVITY_FAILED"
  | "TIMER_STARTED"
  | "TIMER_FIRED"
  | "SIGNAL_RECEIVED"
  | "STATE_SET"
  | "STATE_UPDATE"
  | "CHILD_STARTED"
  | "CHILD_COMPLETED"
  | "WORKFLOW_COMPLETED"
  | "WORKFLOW_FAILED"
  | "WORKFLOW_CANCELLED";

/** One event of a run's history. `seq` is the sequence number of the call it belongs to. */
export interface HistoryEvent {
  seq: number;
  kind: HistoryEventKind;
  name: string | null;
  data: unknown;
  at: Date;
}

/** What a run is waiting for while `waiting`. */
export interface WaitingFor {
  kind: "signal" | "timer" | "activity" | "child" | "version" | "code";
  name: string;
  until?: Date;
}

export type WorkflowVersion = number | string;

/** A run as read back. */
export interface WorkflowRun<I = unknown, R = unknown> {
  id: string;
  name: string;
  version: WorkflowVersion;
  status: WorkflowStatus;
  input: I;
  result: R | null;
  error: string | null;
  state: Record<string, unknown>;
  tenant: string;
  project: string;
  parentId: string | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  waitingFor?: WaitingFor;
}

export interface StepOptions {
  /** Extra attempts after a failure, run at once in the same execution. Default 0. */
  maxRetries?: number;
  /** Abort the attempt's `signal` and fail it after this many ms. */
  timeoutMs?: number;
}

export interface ActivityOptions {
  tenant?: never;
  priority?: number;
  caller?: string;
  labels?: Record<string, string>;
  maxRetries?: number;
  timeoutMs?: number;
}

export interface WorkflowState {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  update<T = unknown>(key: string, fn: (current: T | undefined) => T): T;
  /** Several changes saved together (they always are: with the next step, wait or end). */
  batch<T>(fn: () => T): T;
}

export interface WorkflowContext {
  readonly workflowId: string;
  readonly name: string;
  readonly version: WorkflowVersion;
  step<T>(
    name: string,
    fn: (a: { attempt: number; signal: AbortSignal }) => T | Promise<T>,
    opts?: StepOptions,
  ): Promise<Awaited<T>>;
  activity<T = unknown>(type: string, input?: unknown, opts?: ActivityOptions): Promise<T>;
  sleep(name: string, duration: number | Date): Promise<void>;
  waitForSignal<T = unknown>(name: string, opts?: { timeoutMs?: number }): Promise<T>;
  child<CI, CR>(workflow: WorkflowDefinition<CI, CR> | string, input: CI): Promise<CR>;
  readonly state: WorkflowState;
  /** The time of the latest history event reached (replay-safe). */
  now(): Date;
  /** A number in [0, 1) from a generator seeded by the run id (replay-safe). */
  random(): number;
  /** A logger that stays silent while the run replays recorded history. */
  readonly log: Logger;
}

export interface WorkflowOptions<I, R> {
  version?: WorkflowVersion;
  /** Any Standard Schema validator, checked at start. */
  input?: StandardSchemaV1<unknown, I>;
  run: (ctx: WorkflowContext, input: I) => Promise<R> | R;
}

export interface StartOptions {
  id?: string;
  tenant?: string;
  project?: string;
}

export interface WorkflowHandle<R = unknown> {
  readonly id: string;
  /** Waits for the run to end: its result, or `WorkflowExecutionError` when it failed or was cancelled. */
  result(opts?: { timeoutMs?: number }): Promise<R>;
  status(): Promise<WorkflowRun<unknown, R>>;
  signal(name: string, data?: unknown): Promise<void>;
  cancel(reason?: string): Promise<WorkflowRun<unknown, R>>;
  history(): Promise<HistoryEvent[]>;
}

export interface WorkflowDefinition<I = unknown, R = unknown> {
  readonly name: string;
  readonly version: WorkflowVersion;
  start(input: I, opts?: StartOptions): Promise<WorkflowHandle<R>>;
}

export interface WorkflowListFilter {
  tenant?: string;
  project?: string;
  name?: string;
  status?: WorkflowStatus | WorkflowStatus[];
  parentId?: string;
  limit?: number;
  cursor?: string;
}

export interface WorkflowsApi {
  get<R = unknown>(id: string): Promise<WorkflowHandle<R>>;
  list(filter?: WorkflowListFilter): Promise<Page<WorkflowRun>>;
  /** Start the latest registered version of a workflow by name. */
  start<R = unknown>(name: string, input: unknown, opts?: StartOptions): Promise<WorkflowHandle<R>>;
  /** Start by name and tell whether the run was created (false: an existing id). */
  startRun(
    name: string,
    input: unknown,
    opts?: StartOptions,
  ): Promise<{ handle: WorkflowHandle; created: boolean }>;
}
