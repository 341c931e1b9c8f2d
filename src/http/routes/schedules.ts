import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import { ScheduleNotFoundError } from "../../workflow/errors.js";
import type { Schedule } from "../../workflow/schedules.js";
import { canSee } from "../access.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import { problemResponses } from "../schemas.js";
import {
  NameParamSchema,
  ScheduleListSchema,
  ScheduleRequestSchema,
  ScheduleSchema,
  scheduleToJson,
} from "../schemas-flows.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["schedules"];

/** The schedule, or `ScheduleNotFoundError` when it does not exist or is another tenant's. */
async function visibleSchedule(engine: Engine, p: Principal, name: string): Promise<Schedule> {
  const s = await engine.schedules.get(name);
  if (!canSee(p, s.tenant, s.project)) throw new ScheduleNotFoundError(name);
  return s;
}

/** Cron schedules: list, read, declare, remove. */
export function scheduleRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/schedules",
      tags,
      summary: "List schedules, by name",
      middleware: [read] as const,
      responses: {
        200: { description: "the schedules", content: json(ScheduleListSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const items = await engine.schedules.list({
        ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
        ...(p.project !== undefined ? { project: p.project } : {}),
      });
      return c.json({ items: items.map(scheduleToJson) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/schedules/{name}",
      tags,
      summary: "Read a schedule",
      middleware: [read] as const,
      request: { params: NameParamSchema },
      responses: {
        200: { description: "the schedule", content: json(ScheduleSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const s = await visibleSchedule(engine, c.get("principal"), c.req.valid("param").name);
      return c.json(scheduleToJson(s), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/api/v1/schedules/{name}",
      tags,
      summary: "Declare or replace a schedule (the last writer wins)",
      middleware: [write] as const,
      request: {
        params: NameParamSchema,
        body: { content: json(ScheduleRequestSchema), required: true },
      },
      responses: {
        200: { description: "the schedule", content: json(ScheduleSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const p = c.get("principal");
      // Another tenant's schedule of that name is not this caller's to replace.
      const existing = await engine.schedules.get(name).catch(() => null);
      if (existing && !canSee(p, existing.tenant, existing.project))
        throw new ScheduleNotFoundError(name);
      const body = c.req.valid("json");
      const s = await engine.schedule(name, {
        ...body,
        ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
        ...(p.project !== undefined ? { project: p.project } : {}),
      });
      return c.json(scheduleToJson(s), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/v1/schedules/{name}",
      tags,
      summary: "Remove a schedule (tasks it fired are left alone)",
      middleware: [write] as const,
      request: { params: NameParamSchema },
      responses: { 204: { description: "removed" }, ...problemResponses },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      await visibleSchedule(engine, c.get("principal"), name);
      await engine.schedules.remove(name);
      return c.body(null, 204);
    },
  );
}
