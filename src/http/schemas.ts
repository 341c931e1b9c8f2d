import { z } from "@hono/zod-openapi";
import { TASK_EVENT_TYPES, TASK_STATUSES, type LoomEvent, type Task } from "../core/types.js";

/**
 * A string from a request. NUL characters are refused: PostgreSQL text cannot hold them, so they
 * would otherwise turn a bad request into a driver error. Use it for every string a request sends.
 */
export const text = () =>
  z.string().refine((s) => !s.includes("\u0000"), "must not contain NUL characters");
const name = text().min(1).max(200);
const labels = z.record(text(), text());
const time = z.string().openapi({ format: "date-time" });
const nullableTime = time.nullable();

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ example: "VALIDATION" }),
    field: z.string().optional(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

export const TaskRequestSchema = z
  .strictObject({
    type: name,
    input: z.unknown().optional(),
    tenant: name.optional(),
    project: name.optional(),
    caller: name.optional(),
    priority: z.number().int().min(0).max(3).optional(),
    runAt: z.union([time, z.number()]).optional(),
    dependsOn: z.array(text().min(1)).max(1000).optional(),
    idempotencyKey: text().min(1).max(500).optional(),
    labels: labels.optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    timeoutMs: z.number().int().positive().optional(),
    maxRetries: z.number().int().min(0).optional(),
    requestId: text().min(1).max(200).optional(),
    /** For a laned type: 429 `LANE_BUSY` (nothing stored) when the expected wait is longer. */
    maxWaitMs: z.number().int().min(0).optional(),
  })
  .openapi("TaskRequest");
export type TaskRequestBody = z.infer<typeof TaskRequestSchema>;

export const BatchRequestSchema = z
  .strictObject({ tasks: z.array(TaskRequestSchema).min(1).max(1000) })
  .openapi("TaskBatchRequest");

export const TaskSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    status: z.enum(TASK_STATUSES),
    input: z.unknown(),
    result: z.unknown(),
    error: z.string().nullable(),
    tenant: z.string(),
    project: z.string(),
    caller: z.string().nullable(),
    priority: z.number().int(),
    lane: z.string().nullable(),
    labels,
    metadata: z.record(z.string(), z.unknown()),
    attempt: z.number().int(),
    attemptId: z.string().nullable(),
    maxRetries: z.number().int(),
    progress: z.number().nullable(),
    progressNote: z.string().nullable(),
    runAt: time,
    dependsOn: z.array(z.string()),
    idempotencyKey: z.string().nullable(),
    requestId: z.string().nullable(),
    workflowId: z.string().nullable(),
    engineName: z.string().nullable(),
    timeoutMs: z.number().int().nullable(),
    createdAt: time,
    startedAt: nullableTime,
    completedAt: nullableTime,
    updatedAt: time,
  })
  .openapi("Task");
export type TaskJson = z.infer<typeof TaskSchema>;

export const TaskListSchema = z
  .object({ items: z.array(TaskSchema), nextCursor: z.string().nullable() })
  .openapi("TaskPage");

export const TaskBatchSchema = z.object({ items: z.array(TaskSchema) }).openapi("TaskBatch");

export const CountSchema = z.object({ count: z.number().int() }).openapi("TaskCount");

export const PositionSchema = z
  .object({ position: z.number().int(), etaMs: z.number().nullable() })
  .openapi("QueuePosition");

export const IdParamSchema = z.object({
  id: text()
    .min(1)
    .max(200)
    .openapi({ param: { name: "id", in: "path" } }),
});

/** A query value that may repeat (`?status=a&status=b`) or be comma-separated (`?status=a,b`). */
const multi = z.union([text(), z.array(text())]);

export const TaskQuerySchema = z.object({
  status: multi.optional().openapi({ description: "repeat or comma-separate" }),
  type: multi.optional(),
  tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
  project: name.optional(),
  lane: name.optional(),
  caller: name.optional(),
  workflowId: name.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: text().min(1).max(200).optional(),
});
export type TaskQuery = z.infer<typeof TaskQuerySchema>;

export const CountQuerySchema = TaskQuerySchema.omit({ limit: true, cursor: true });

export const CancelSchema = z.strictObject({ reason: text().max(1000).optional() });

export const ClaimSchema = z
  .strictObject({
    agent: name,
    types: z.array(name).max(100).optional(),
    lanes: z.array(name).max(100).optional(),
    max: z.number().int().min(0).max(1000).optional(),
    project: name.optional(),
  })
  .openapi("ClaimRequest");

const attemptId = text().min(1).max(200);
export const HeartbeatSchema = z.strictObject({ attemptId }).openapi("Heartbeat");
export const ProgressSchema = z
  .strictObject({
    attemptId,
    progress: z.number().min(0).max(100),
    note: text().max(2000).optional(),
  })
  .openapi("Progress");
export const CompleteSchema = z
  .strictObject({ attemptId, result: z.unknown().optional() })
  .openapi("Complete");
export const FailSchema = z
  .strictObject({
    attemptId,
    error: text().max(100_000),
    /** `false` fails the task now instead of retrying. */
    retry: z.boolean().optional(),
  })
  .openapi("Fail");

export const EVENT_TYPES = [
  ...TASK_EVENT_TYPES,
  "workflow.started",
  "workflow.step",
  "workflow.signal",
  "workflow.completed",
  "workflow.failed",
  "workflow.cancelled",
] as const;

export const EventQuerySchema = z.object({
  type: multi.optional().openapi({ description: "event types; repeat or comma-separate" }),
  tenant: name.optional(),
  project: name.optional(),
  taskId: name.optional(),
  taskType: name.optional(),
  workflowId: name.optional(),
});

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** A task as it goes over the wire: times as ISO strings, internals (leases, crash counts) left out. */
export function taskToJson(t: Task): TaskJson {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    input: t.input,
    result: t.result,
    error: t.error,
    tenant: t.tenant,
    project: t.project,
    caller: t.caller,
    priority: t.priority,
    lane: t.lane,
    labels: t.labels,
    metadata: t.metadata,
    attempt: t.attempt,
    attemptId: t.attemptId,
    maxRetries: t.maxRetries,
    progress: t.progress,
    progressNote: t.progressNote,
    runAt: t.runAt.toISOString(),
    dependsOn: t.dependsOn,
    idempotencyKey: t.idempotencyKey,
    requestId: t.requestId,
    workflowId: t.workflowId,
    engineName: t.engineName,
    timeoutMs: t.timeoutMs,
    createdAt: t.createdAt.toISOString(),
    startedAt: iso(t.startedAt),
    completedAt: iso(t.completedAt),
    updatedAt: t.updatedAt.toISOString(),
  };
}

export function eventToJson(e: LoomEvent): Record<string, unknown> {
  return { ...e, at: e.at.toISOString() };
}

export const problemResponses = {
  400: {
    description: "invalid request",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
  401: {
    description: "missing or unknown token",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
  404: {
    description: "not found (or another tenant's)",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
} as const;
