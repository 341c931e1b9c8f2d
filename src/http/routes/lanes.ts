import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { EngineLaneStats } from "../../core/engine-lanes.js";
import type { Engine } from "../../core/engine.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import { httpProblem } from "../errors.js";
import { problemResponses } from "../schemas.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["lanes"];

export const LaneStatsSchema = z
  .object({
    name: z.string(),
    concurrency: z.number().int(),
    running: z.number().int(),
    queued: z.number().int(),
    oldestQueuedAt: z.string().openapi({ format: "date-time" }).nullable(),
    throughput1m: z.number().int(),
    etaMs: z.number(),
    perCaller: z.array(
      z.object({ caller: z.string(), running: z.number().int(), queued: z.number().int() }),
    ),
  })
  .openapi("LaneStats");

const LaneNameSchema = z.object({
  name: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: "name", in: "path" } }),
});

const concurrency = z.number().int().min(1);

const LaneDeclareSchema = z
  .object({
    concurrency,
    fairness: z.enum(["caller", "none"]).optional(),
    preemption: z
      .union([
        z.literal(false),
        z.object({
          enabled: z.boolean().optional(),
          minRuntimeMs: z.number().int().min(0).optional(),
        }),
      ])
      .optional(),
    maxQueue: z.number().int().min(0).nullable().optional(),
  })
  .openapi("LaneDeclare");

const ConcurrencySchema = z.object({ concurrency }).openapi("LaneConcurrency");

/**
 * Lanes are shared by every tenant on the engine (they guard one resource), so their settings
 * and totals are visible to every token. Per-caller counts are not: a tenant-bound token sees
 * only the caller named like its tenant (the default caller of its tasks).
 */
export function laneStatsToJson(s: EngineLaneStats, p: Principal) {
  return {
    ...s,
    oldestQueuedAt: s.oldestQueuedAt?.toISOString() ?? null,
    perCaller:
      p.tenant === undefined ? s.perCaller : s.perCaller.filter((c) => c.caller === p.tenant),
  };
}

export function laneRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");

  const found = async (name: string): Promise<EngineLaneStats> => {
    const stats = await engine.lanes.get(name);
    if (!stats) throw httpProblem(404, `no lane named ${name}`);
    return stats;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/lanes",
      tags,
      summary: "Every declared lane with its live counts (all processes)",
      middleware: [read] as const,
      responses: {
        200: {
          description: "lanes",
          content: json(z.object({ items: z.array(LaneStatsSchema) })),
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const items = (await engine.lanes.list()).map((s) => laneStatsToJson(s, p));
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/lanes/{name}",
      tags,
      summary: "One lane's settings and live counts",
      middleware: [read] as const,
      request: { params: LaneNameSchema },
      responses: {
        200: { description: "the lane", content: json(LaneStatsSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      return c.json(laneStatsToJson(await found(name), c.get("principal")), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/api/v1/lanes/{name}",
      tags,
      summary:
        "Declare or update a lane (its settings hold for every process; the last writer wins)",
      middleware: [write] as const,
      request: {
        params: LaneNameSchema,
        body: { content: json(LaneDeclareSchema), required: true },
      },
      responses: {
        200: { description: "the lane", content: json(LaneStatsSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const body = c.req.valid("json");
      const lane = await engine.lane(name, body);
      return c.json(laneStatsToJson(await lane.stats(), c.get("principal")), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/lanes/{name}/concurrency",
      tags,
      summary: "Change a lane's concurrency for every process",
      middleware: [write] as const,
      request: {
        params: LaneNameSchema,
        body: { content: json(ConcurrencySchema), required: true },
      },
      responses: {
        200: { description: "the lane", content: json(LaneStatsSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { concurrency: n } = c.req.valid("json");
      await found(name);
      await engine.lanes.handle(name).setConcurrency(n);
      return c.json(laneStatsToJson(await found(name), c.get("principal")), 200);
    },
  );
}
