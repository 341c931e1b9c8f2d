import type { CrashPolicy, Task, TaskStatus } from "../core/types.js";
import type { QueuePosition, TaskChange, TaskRef } from "./store.js";

// The row shapes both SQL stores share (same column names, times as epoch ms), and their
// mapping to the public types.

/** A task row as the stores read it (times as epoch ms; PostgreSQL's bigints already parsed). */
export interface TaskRow {
  id: string;
  type: string;
  status: TaskStatus;
  input: string | null;
  result: string | null;
  error: string | null;
  tenant: string;
  project: string;
  caller: string | null;
  priority: number;
  lane: string | null;
  labels: string | null;
  metadata: string | null;
  attempt: number;
  attempt_id: string | null;
  max_retries: number;
  crash_policy: CrashPolicy;
  crash_count: number;
  max_crashes: number;
  lease_ms: number;
  lease_expires_at: number | null;
  timeout_ms: number | null;
  progress: number | null;
  progress_note: string | null;
  run_at: number;
  depends_on: string | null;
  idempotency_key: string | null;
  request_id: string | null;
  workflow_id: string | null;
  engine_name: string | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  updated_at: number;
}

/** The columns a task change reports to subscribers. */
export interface ChangeRow {
  id: string;
  type: string;
  tenant: string;
  project: string;
  request_id: string | null;
  workflow_id: string | null;
  attempt: number;
  status: TaskStatus;
  error: string | null;
}

const json = <T>(text: string | null, empty: T): T =>
  text === null ? empty : (JSON.parse(text) as T);
const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function rowToTask(r: TaskRow): Task {
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    input: json<unknown>(r.input, null),
    result: json<unknown>(r.result, null),
    error: r.error,
    tenant: r.tenant,
    project: r.project,
    caller: r.caller,
    priority: r.priority,
    lane: r.lane,
    labels: json<Record<string, string>>(r.labels, {}),
    metadata: json<Record<string, unknown>>(r.metadata, {}),
    attempt: r.attempt,
    attemptId: r.attempt_id,
    maxRetries: r.max_retries,
    progress: r.progress,
    progressNote: r.progress_note,
    runAt: new Date(r.run_at),
    dependsOn: json<string[]>(r.depends_on, []),
    idempotencyKey: r.idempotency_key,
    requestId: r.request_id,
    workflowId: r.workflow_id,
    engineName: r.engine_name,
    timeoutMs: r.timeout_ms,
    crashPolicy: r.crash_policy,
    crashCount: r.crash_count,
    maxCrashes: r.max_crashes,
    leaseMs: r.lease_ms,
    leaseExpiresAt: date(r.lease_expires_at),
    createdAt: new Date(r.created_at),
    startedAt: date(r.started_at),
    completedAt: date(r.completed_at),
    updatedAt: new Date(r.updated_at),
  };
}

export const toChange = (r: ChangeRow): TaskChange => ({
  id: r.id,
  type: r.type,
  tenant: r.tenant,
  project: r.project,
  requestId: r.request_id,
  workflowId: r.workflow_id,
  attempt: r.attempt,
  status: r.status,
  error: r.error,
});

/** The reference to a task that events carry, from any row that has its columns. */
export const toRef = (r: Omit<ChangeRow, "status" | "error">): TaskRef => ({
  id: r.id,
  type: r.type,
  tenant: r.tenant,
  project: r.project,
  requestId: r.request_id,
  workflowId: r.workflow_id,
  attempt: r.attempt,
});

/** Where a task stands, from its row and the count of ready tasks ahead of it. */
export function toQueuePosition(
  r: { type: string; status: TaskStatus; ahead: number; deps_left: number; run_at: number },
  now: number,
): QueuePosition {
  const waiting = r.status === "pending" || r.status === "retrying";
  if (!waiting || r.deps_left > 0 || r.run_at > now) {
    return { position: 0, type: r.type, status: r.status, queued: false };
  }
  return { position: r.ahead + 1, type: r.type, status: r.status, queued: true };
}
