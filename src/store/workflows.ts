import type { Page } from "../core/types.js";
import type { NewTask } from "./store.js";

// The store operations behind durable workflows (DESIGN §4 Workflows, §5 "Workflow execution").
// A run is a row plus an append-only history; every time a run can progress the store makes sure
// one `loom.workflow` wake-up task is pending for it.

export const WORKFLOW_TASK_TYPE = "loom.workflow";

export type WorkflowStatus =
  "pending" | "running" | "waiting" | "completed" | "failed" | "cancelled";
export const WORKFLOW_STATUSES: readonly WorkflowStatus[] = [
  "pending",
  "running",
  "waiting",
  "completed",
  "failed",
  "cancelled",
];
export const WORKFLOW_TERMINAL: readonly WorkflowStatus[] = ["completed", "failed", "cancelled"];

/** A run row as stored (JSON columns as text, times as epoch ms). */
export interface WorkflowRunRow {
  id: string;
  name: string;
  /** JSON text of the version (a number or a string). */
  version: string;
  status: WorkflowStatus;
  input: string | null;
  result: string | null;
  error: string | null;
  state: string | null;
  tenant: string;
  project: string;
  parentId: string | null;
  waitingFor: string | null;
  historyLen: number;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
}

/** One history event as stored. `seq` is the call's sequence number (several events may share it). */
export interface HistoryRow {
  seq: number;
  kind: string;
  name: string | null;
  data: string | null;
  at: number;
}

export interface SignalRow {
  name: string;
  data: string | null;
  at: number;
}

/** A run with its history (oldest first) and the signals it received (oldest first). */
export interface LoadedWorkflow {
  run: WorkflowRunRow;
  history: HistoryRow[];
  signals: SignalRow[];
}

export interface NewWorkflowRun {
  id: string;
  name: string;
  version: string;
  input: string | null;
  tenant: string;
  project: string;
  parentId: string | null;
  /** Lease of the run's wake-up tasks. */
  leaseMs: number;
  now: number;
  /**
   * Claim the new run's first wake-up at once, straight into `running` for this attempt (the
   * starting process executes the run inline in a slot it reserved). Applies only when the run
   * is created; absent, the wake-up is an ordinary pending task.
   */
  claim?: InlineClaim;
}

/** The first wake-up of a run, claimed by the process that creates it. */
export interface InlineClaim {
  taskId: string;
  attemptId: string;
  engineName: string;
}

/** What one execution of a run writes at once: its new events and how the run stands after. */
export interface Checkpoint {
  workflowId: string;
  /** The history length the execution read; the write applies only if it is unchanged (fencing). */
  expectedLen: number;
  events: HistoryRow[];
  status: WorkflowStatus;
  result?: string | null;
  error?: string | null;
  /** JSON text of the whole state after these events, when it changed. */
  state?: string | null;
  waitingFor: string | null;
  /** Ensure a wake-up task due at this time (a timer, a retry of a held run), or none. */
  wakeAt: number | null;
  /** Activity tasks to insert (each carries `workflowId`). */
  tasks: NewTask[];
  /** Child runs to start. */
  children: NewWorkflowRun[];
  now: number;
  /**
   * The wake-up task whose execution wrote this (its last) checkpoint: completed in the same
   * write when the checkpoint applies and the attempt still owns the task.
   */
  settle?: { taskId: string; attemptId: string } | null;
}

export interface WorkflowRunFilter {
  tenant?: string;
  project?: string;
  name?: string;
  status?: WorkflowStatus | WorkflowStatus[];
  parentId?: string;
  limit?: number;
  cursor?: string;
}

export interface WorkflowStore {
  /** Insert a run with its WORKFLOW_STARTED event and first wake-up; an existing id returns that row. */
  createWorkflowRun(run: NewWorkflowRun): Promise<{ run: WorkflowRunRow; created: boolean }>;
  getWorkflowRun(id: string): Promise<WorkflowRunRow | null>;
  /** The run, its history (oldest first) and the signals it received (oldest first). */
  loadWorkflow(id: string): Promise<LoadedWorkflow | null>;
  /** `loadWorkflow` of many runs at once (one round trip on PostgreSQL), in the order given. */
  loadWorkflows(ids: string[]): Promise<(LoadedWorkflow | null)[]>;
  listWorkflowRuns(filter: WorkflowRunFilter): Promise<Page<WorkflowRunRow>>;
  /**
   * Group commit: apply many runs' checkpoints in one transaction. Each applies only if its run
   * is not terminal and its history length is still `expectedLen` (`false` otherwise).
   */
  appendCheckpoints(checkpoints: Checkpoint[]): Promise<boolean[]>;
  /**
   * Group commit of starts with checkpoints: the runs (as `createWorkflowRun` each) and the
   * checkpoints (as `appendCheckpoints`) in one transaction, answered in the order given. Under
   * load the starts of concurrent callers then share a commit with the steps of running runs.
   */
  writeWorkflows(
    starts: NewWorkflowRun[],
    checkpoints: Checkpoint[],
  ): Promise<{ starts: { run: WorkflowRunRow; created: boolean }[]; checkpoints: boolean[] }>;
  /** Keep a signal for the run and wake it. `null` for an unknown run; the status otherwise. */
  signalWorkflow(
    id: string,
    name: string,
    data: string | null,
    now: number,
  ): Promise<WorkflowStatus | null>;
  /**
   * Cancel a run and its unfinished descendants (WORKFLOW_CANCELLED each). Returns the ids
   * cancelled (the run first), or `null` for an unknown run; `[]` when it had already ended.
   */
  cancelWorkflow(id: string, reason: string, now: number): Promise<string[] | null>;
}
