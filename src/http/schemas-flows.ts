import { z } from "@hono/zod-openapi";
import { TASK_STATUSES } from "../core/types.js";
import { CATCH_UP_MODES, FLOW_STATUSES } from "../store/flows.js";
import type { Flow } from "../workflow/flows.js";
import type { Schedule } from "../workflow/schedules.js";

const name = z.string().min(1).max(200);
const time = z.string().openapi({ format: "date-time" });

export const FlowTaskRequestSchema = z
  .strictObject({
    key: name,
    type: name,
    input: z.unknown().optional(),
    dependsOn: z.array(name).max(1000).optional(),
    caller: name.optional(),
    priority: z.number().int().min(0).max(3).optional(),
    runAt: z.union([time, z.number()]).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    timeoutMs: z.number().int().positive().optional(),
    maxRetries: z.number().int().min(0).optional(),
  })
  .openapi("FlowTaskRequest");

export const FlowRequestSchema = z
  .strictObject({
    name,
    tasks: z.array(FlowTaskRequestSchema).min(1).max(10_000),
    tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
    project: name.optional(),
  })
  .openapi("FlowRequest");

export const FlowSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(FLOW_STATUSES),
    tenant: z.string(),
    project: z.string(),
    createdAt: time,
    completedAt: time.nullable(),
    tasks: z.array(
      z.object({
        key: z.string(),
        taskId: z.string(),
        type: z.string(),
        status: z.enum(TASK_STATUSES).nullable(),
        dependsOn: z.array(z.string()),
      }),
    ),
  })
  .openapi("Flow");

export const FlowListSchema = z
  .object({ items: z.array(FlowSchema), nextCursor: z.string().nullable() })
  .openapi("FlowList");

export const FlowQuerySchema = z.object({
  status: z.enum(FLOW_STATUSES).optional(),
  tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
  project: name.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

export const ScheduleSchema = z
  .object({
    name: z.string(),
    cron: z.string(),
    timezone: z.string(),
    type: z.string().nullable(),
    workflow: z.string().nullable(),
    input: z.unknown(),
    catchUp: z.enum(CATCH_UP_MODES),
    tenant: z.string(),
    project: z.string(),
    nextRunAt: time.nullable(),
    lastRunAt: time.nullable(),
    lastTaskId: z.string().nullable(),
  })
  .openapi("Schedule");

export const ScheduleListSchema = z
  .object({ items: z.array(ScheduleSchema) })
  .openapi("ScheduleList");

export const ScheduleRequestSchema = z
  .strictObject({
    cron: z.string().min(1).max(200),
    timezone: name.optional(),
    type: name.optional(),
    workflow: name.optional(),
    input: z.unknown().optional(),
    catchUp: z.enum(CATCH_UP_MODES).optional(),
    tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
    project: name.optional(),
  })
  .openapi("ScheduleRequest");

export const NameParamSchema = z.object({
  name: name.openapi({ param: { name: "name", in: "path" } }),
});

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export const flowToJson = (f: Flow) => ({
  ...f,
  createdAt: f.createdAt.toISOString(),
  completedAt: iso(f.completedAt),
});

export const scheduleToJson = (s: Schedule) => ({
  ...s,
  nextRunAt: iso(s.nextRunAt),
  lastRunAt: iso(s.lastRunAt),
});
