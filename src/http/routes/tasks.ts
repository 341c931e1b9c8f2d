import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import { TaskNotFoundError } from "../../core/errors.js";
import type { TaskRequest } from "../../core/types.js";
import { canSee, filterOf, visibleTask } from "../access.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import {
  BatchRequestSchema,
  CancelSchema,
  CountQuerySchema,
  CountSchema,
  IdParamSchema,
  PositionSchema,
  problemResponses,
  TaskBatchSchema,
  TaskListSchema,
  TaskQuerySchema,
  TaskRequestSchema,
  TaskSchema,
  taskToJson,
  type TaskRequestBody,
} from "../schemas.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["tasks"];

/** The engine request for a body: the token's tenant and project override the body's. */
function requestOf(body: TaskRequestBody, p: Principal): TaskRequest {
  const { maxWaitMs: _maxWaitMs, ...req } = body;
  const out: TaskRequest = { ...req };
  if (p.tenant !== undefined) out.tenant = p.tenant;
  if (p.project !== undefined) out.project = p.project;
  return out;
}

/** A task may only depend on tasks its caller can see. */
async function checkDependencies(engine: Engine, p: Principal, reqs: TaskRequest[]): Promise<void> {
  if (p.tenant === undefined && p.project === undefined) return;
  const ids = new Set(reqs.flatMap((r) => r.dependsOn ?? []));
  for (const id of ids) {
    const task = await engine.get(id).catch(() => null);
    if (!task || !canSee(p, task.tenant, task.project)) throw new TaskNotFoundError(id);
  }
}

export function taskRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks",
      tags,
      summary: "Submit a task",
      middleware: [write] as const,
      request: { body: { content: json(TaskRequestSchema), required: true } },
      responses: {
        201: { description: "the stored task", content: json(TaskSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const p = c.get("principal");
      const req = requestOf(body, p);
      await checkDependencies(engine, p, [req]);
      const opts = body.maxWaitMs !== undefined ? { maxWaitMs: body.maxWaitMs } : {};
      const id = await engine.submit(req, opts);
      return c.json(taskToJson(await engine.get(id)), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/batch",
      tags,
      summary: "Submit several tasks, all or nothing",
      middleware: [write] as const,
      request: { body: { content: json(BatchRequestSchema), required: true } },
      responses: {
        201: { description: "the stored tasks, in order", content: json(TaskBatchSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const reqs = c.req.valid("json").tasks.map((b) => requestOf(b, p));
      await checkDependencies(engine, p, reqs);
      const ids = await engine.submitMany(reqs);
      const tasks = await Promise.all(ids.map((id) => engine.get(id)));
      return c.json({ items: tasks.map(taskToJson) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/tasks",
      tags,
      summary: "List tasks, newest first",
      middleware: [read] as const,
      request: { query: TaskQuerySchema },
      responses: {
        200: { description: "one page", content: json(TaskListSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const page = await engine.list(filterOf(c.req.valid("query"), c.get("principal")));
      return c.json({ items: page.items.map(taskToJson), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/tasks/count",
      tags,
      summary: "Count tasks",
      middleware: [read] as const,
      request: { query: CountQuerySchema },
      responses: {
        200: { description: "how many match", content: json(CountSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const count = await engine.count(filterOf(c.req.valid("query"), c.get("principal")));
      return c.json({ count }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/tasks/{id}",
      tags,
      summary: "Get a task",
      middleware: [read] as const,
      request: { params: IdParamSchema },
      responses: {
        200: { description: "the task", content: json(TaskSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const task = await visibleTask(engine, c.get("principal"), c.req.valid("param").id);
      return c.json(taskToJson(task), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/tasks/{id}/position",
      tags,
      summary: "Queue position and ETA of a pending task",
      middleware: [read] as const,
      request: { params: IdParamSchema },
      responses: {
        200: { description: "position", content: json(PositionSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      return c.json(await engine.position(id), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/tasks/{id}/cancel",
      tags,
      summary: "Cancel a task (and its dependents)",
      middleware: [write] as const,
      request: { params: IdParamSchema, body: { content: json(CancelSchema), required: false } },
      responses: {
        200: { description: "the cancelled task", content: json(TaskSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleTask(engine, c.get("principal"), id);
      const { reason } = c.req.valid("json");
      return c.json(taskToJson(await engine.cancel(id, reason)), 200);
    },
  );
}
