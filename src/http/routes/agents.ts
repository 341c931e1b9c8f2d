import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import { visibleTask } from "../access.js";
import { requireScope, type AuthEnv } from "../auth.js";
import {
  ClaimSchema,
  CompleteSchema,
  FailSchema,
  HeartbeatSchema,
  IdParamSchema,
  problemResponses,
  ProgressSchema,
  TaskSchema,
  taskToJson,
} from "../schemas.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["agents"];
const conflict = {
  409: {
    description: "the attempt no longer owns the task",
    content: {
      "application/problem+json": {
        schema: problemResponses[400].content["application/problem+json"].schema,
      },
    },
  },
};

/** External agents: claim work, then heartbeat, report progress, complete or fail it. */
export function agentRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const agent = requireScope("agent");

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/claim",
      tags,
      summary: "Claim the best ready task",
      middleware: [agent] as const,
      request: { body: { content: json(ClaimSchema), required: true } },
      responses: {
        200: {
          description: "the claimed task (its attemptId fences later calls)",
          content: json(TaskSchema),
        },
        204: { description: "nothing to claim, or the agent already holds `max` tasks" },
        ...problemResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const p = c.get("principal");
      const task = await engine.claimNext({
        agent: body.agent,
        ...(body.types ? { types: body.types } : {}),
        ...(body.lanes ? { lanes: body.lanes } : {}),
        ...(body.max !== undefined ? { max: body.max } : {}),
        ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
        ...((p.project ?? body.project) !== undefined
          ? { project: p.project ?? body.project }
          : {}),
      });
      if (!task) return c.body(null, 204);
      return c.json(taskToJson(task), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/{id}/heartbeat",
      tags,
      summary: "Renew the lease of a claimed task",
      middleware: [agent] as const,
      request: { params: IdParamSchema, body: { content: json(HeartbeatSchema), required: true } },
      responses: { 204: { description: "lease renewed" }, ...problemResponses, ...conflict },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      await engine.heartbeat(id, c.req.valid("json").attemptId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/{id}/progress",
      tags,
      summary: "Report progress (0–100) on a claimed task",
      middleware: [agent] as const,
      request: { params: IdParamSchema, body: { content: json(ProgressSchema), required: true } },
      responses: { 204: { description: "recorded" }, ...problemResponses, ...conflict },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      const body = c.req.valid("json");
      await engine.progress(id, body.attemptId, body.progress, body.note);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/{id}/complete",
      tags,
      summary: "Complete a claimed task with its result",
      middleware: [agent] as const,
      request: { params: IdParamSchema, body: { content: json(CompleteSchema), required: true } },
      responses: {
        200: { description: "the task after the quality gate", content: json(TaskSchema) },
        ...problemResponses,
        ...conflict,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      const body = c.req.valid("json");
      return c.json(taskToJson(await engine.complete(id, body.attemptId, body.result)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/{id}/fail",
      tags,
      summary: "Fail a claimed task (retried while retries remain, unless retry is false)",
      middleware: [agent] as const,
      request: { params: IdParamSchema, body: { content: json(FailSchema), required: true } },
      responses: {
        200: { description: "the task, retrying or failed", content: json(TaskSchema) },
        ...problemResponses,
        ...conflict,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      const body = c.req.valid("json");
      const opts = body.retry !== undefined ? { retry: body.retry } : {};
      return c.json(taskToJson(await engine.fail(id, body.attemptId, body.error, opts)), 200);
    },
  );
}
