import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import type { EngineStats } from "../../core/stats.js";
import type { TaskFilter } from "../../core/types.js";
import { visibleTask } from "../access.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import { laneStatsToJson } from "./lanes.js";
import { IdParamSchema, problemResponses, TaskSchema, taskToJson } from "../schemas.js";
import {
  CancelAllSchema,
  CancelledCountSchema,
  DEFAULT_WAIT_MS,
  PurgedSchema,
  PurgeSchema,
  StatsQuerySchema,
  StatsSchema,
  WaitQuerySchema,
} from "../schemas-engine.js";

/** How long one stats answer is shared by every caller of the same scope. */
export const STATS_TTL_MS = 2_000;

const json = <T>(schema: T) => ({ "application/json": { schema } });
const problem = problemResponses[400].content["application/problem+json"].schema;
const timeout = {
  408: {
    description: "the task did not end within timeoutMs",
    content: { "application/problem+json": { schema: problem } },
  },
};

/** The token's tenant and project win over what the caller asked for. */
function scopeOf(
  p: Principal,
  asked: { tenant?: string | undefined; project?: string | undefined },
): { tenant?: string; project?: string } {
  const out: { tenant?: string; project?: string } = {};
  const tenant = p.tenant ?? asked.tenant;
  const project = p.project ?? asked.project;
  if (tenant !== undefined) out.tenant = tenant;
  if (project !== undefined) out.project = project;
  return out;
}

/** Engine-wide calls: stats, cancel by filter, wait for a task, purge. */
export function engineRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");

  // engine.stats() scans the task table (no index taxes the hot path for it): answers are shared
  // for STATS_TTL_MS per scope, so any number of dashboards cost at most one scan that often.
  const statsCache = new Map<string, { at: number; stats: Promise<EngineStats> }>();
  const cachedStats = (scope: { tenant?: string; project?: string }): Promise<EngineStats> => {
    const key = JSON.stringify([scope.tenant, scope.project]);
    const now = Date.now();
    const hit = statsCache.get(key);
    if (hit && now - hit.at < STATS_TTL_MS) return hit.stats;
    if (statsCache.size > 1000) statsCache.clear();
    const stats = engine.stats(scope);
    statsCache.set(key, { at: now, stats });
    stats.catch(() => statsCache.delete(key));
    return stats;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/stats",
      tags: ["engine"],
      summary: "Task counts by status and per-minute throughput over the last hour",
      middleware: [read] as const,
      request: { query: StatsQuerySchema },
      responses: {
        200: { description: "stats", content: json(StatsSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const principal = c.get("principal");
      const [stats, lanes] = await Promise.all([
        cachedStats(scopeOf(principal, c.req.valid("query"))),
        engine.lanes.list(),
      ]);
      return c.json(
        {
          counts: stats.counts,
          throughput: stats.throughput.map((b) => ({ ...b, at: b.at.toISOString() })),
          lanes: lanes.map((l) => laneStatsToJson(l, principal)),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/cancel",
      tags: ["tasks"],
      summary: "Cancel every unfinished task matching a filter (and their dependents)",
      middleware: [write] as const,
      request: { body: { content: json(CancelAllSchema), required: true } },
      responses: {
        200: { description: "how many were cancelled", content: json(CancelledCountSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { filter: asked, reason } = c.req.valid("json");
      const { tenant: _t, project: _p, ...rest } = asked;
      const filter: TaskFilter = { ...rest, ...scopeOf(c.get("principal"), asked) };
      const cancelled = await engine.cancelAll(filter, reason);
      return c.json({ cancelled }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/tasks/{id}/wait",
      tags: ["tasks"],
      summary: "Wait until a task ends, then return it",
      middleware: [read] as const,
      request: { params: IdParamSchema, query: WaitQuerySchema },
      responses: {
        200: { description: "the task, in a terminal state", content: json(TaskSchema) },
        ...problemResponses,
        ...timeout,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      const timeoutMs = c.req.valid("query").timeoutMs ?? DEFAULT_WAIT_MS;
      return c.json(taskToJson(await engine.wait(id, { timeoutMs })), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/purge",
      tags: ["engine"],
      summary: "Delete finished tasks that ended before a time (or more than an age ago)",
      middleware: [write] as const,
      request: { body: { content: json(PurgeSchema), required: true } },
      responses: {
        200: { description: "how many were deleted", content: json(PurgedSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const olderThan =
        typeof body.olderThan === "number" ? body.olderThan : new Date(body.olderThan);
      const purged = await engine.purge({
        olderThan,
        ...(body.statuses ? { statuses: body.statuses } : {}),
        ...scopeOf(c.get("principal"), body),
      });
      return c.json({ purged }, 200);
    },
  );
}
