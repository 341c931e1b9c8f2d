import { z } from "@hono/zod-openapi";
import { TASK_STATUSES } from "../core/types.js";
import { text } from "./schemas.js";

const name = text().min(1).max(200);
const status = z.enum(TASK_STATUSES);
const terminal = z.enum(["completed", "failed", "failed_crash", "cancelled"]);

export const StatsQuerySchema = z.object({
  tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
  project: name.optional(),
});

export const StatsSchema = z
  .object({
    counts: z.object(Object.fromEntries(TASK_STATUSES.map((s) => [s, z.number().int()]))),
    throughput: z
      .array(
        z.object({
          at: z.string().openapi({ format: "date-time" }),
          completed: z.number().int(),
          failed: z.number().int(),
        }),
      )
      .openapi({ description: "per minute, the last 60 minutes, oldest first" }),
    lanes: z.array(z.record(z.string(), z.unknown())).openapi({ description: "LaneStats[]" }),
  })
  .openapi("Stats");

/** The body of `POST /api/v1/tasks/cancel`: a task filter without paging. */
export const CancelAllSchema = z
  .strictObject({
    filter: z.strictObject({
      status: z.union([status, z.array(status).max(8)]).optional(),
      type: z.union([name, z.array(name).max(100)]).optional(),
      tenant: name.optional(),
      project: name.optional(),
      lane: name.optional(),
      caller: name.optional(),
      workflowId: name.optional(),
      labels: z.record(name, text().max(1000)).optional(),
    }),
    reason: text().max(1000).optional(),
  })
  .openapi("CancelAllRequest");

export const CancelledCountSchema = z.object({ cancelled: z.number().int() }).openapi("Cancelled");

export const MAX_WAIT_MS = 300_000;
export const DEFAULT_WAIT_MS = 30_000;

export const WaitQuerySchema = z.object({
  timeoutMs: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_MS)
    .optional()
    .openapi({ description: `default ${DEFAULT_WAIT_MS}, at most ${MAX_WAIT_MS}` }),
});

export const PurgeSchema = z
  .strictObject({
    olderThan: z.union([
      z.number().int().min(0).openapi({ description: "an age in ms" }),
      z.iso.datetime({ offset: true }).openapi({ description: "a cutoff time" }),
    ]),
    statuses: z.array(terminal).min(1).max(4).optional(),
    tenant: name.optional(),
    project: name.optional(),
  })
  .openapi("PurgeRequest");

export const PurgedSchema = z.object({ purged: z.number().int() }).openapi("Purged");

/** How long `GET /tasks/{id}/wait` may legitimately take, from its raw `timeoutMs` query value. */
export function waitAllowanceMs(path: string, raw: string | undefined): number {
  if (!/\/tasks\/[^/]+\/wait$/.test(path)) return 0;
  const n = raw === undefined ? DEFAULT_WAIT_MS : Number(raw);
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), MAX_WAIT_MS) : 0;
}
