import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import { WorkflowNotFoundError } from "../../core/errors.js";
import { WORKFLOW_STATUSES, type WorkflowStatus } from "../../store/workflows.js";
import type { HistoryEvent, WorkflowRun } from "../../workflow/types.js";
import { canSee, splitMulti } from "../access.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import { ValidationError } from "../../core/errors.js";
import { CancelSchema, problemResponses } from "../schemas.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["workflows"];
const time = z.string().openapi({ format: "date-time" });
const name = z.string().min(1).max(200);

export const WorkflowRunSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.union([z.number(), z.string()]),
    status: z.enum(WORKFLOW_STATUSES as [WorkflowStatus, ...WorkflowStatus[]]),
    input: z.unknown(),
    result: z.unknown(),
    error: z.string().nullable(),
    state: z.record(z.string(), z.unknown()),
    tenant: z.string(),
    project: z.string(),
    parentId: z.string().nullable(),
    createdAt: time,
    updatedAt: time,
    completedAt: time.nullable(),
    waitingFor: z
      .object({
        kind: z.string(),
        name: z.string(),
        until: time.optional(),
      })
      .optional(),
  })
  .openapi("WorkflowRun");

const HistoryEventSchema = z
  .object({
    seq: z.number().int(),
    kind: z.string(),
    name: z.string().nullable(),
    data: z.unknown(),
    at: time,
  })
  .openapi("WorkflowHistoryEvent");

const RunListSchema = z.object({
  items: z.array(WorkflowRunSchema),
  nextCursor: z.string().nullable(),
});
const HistorySchema = z.object({ items: z.array(HistoryEventSchema) });
const NameParam = z.object({ name: name.openapi({ param: { name: "name", in: "path" } }) });
const IdParam = z.object({ id: name.openapi({ param: { name: "id", in: "path" } }) });
const SignalParams = z.object({
  id: name.openapi({ param: { name: "id", in: "path" } }),
  signal: name.openapi({ param: { name: "signal", in: "path" } }),
});
const StartSchema = z.strictObject({
  input: z.unknown().optional(),
  id: name.optional(),
  tenant: name.optional().openapi({ description: "ignored when the token is bound to a tenant" }),
  project: name.optional(),
});
const SignalSchema = z.strictObject({ data: z.unknown().optional() });
const RunQuerySchema = z.object({
  name: name.optional(),
  status: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .openapi({ description: "repeat or comma-separate" }),
  project: name.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

export function runToJson(r: WorkflowRun) {
  return {
    ...r,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    completedAt: r.completedAt?.toISOString() ?? null,
    ...(r.waitingFor
      ? {
          waitingFor: {
            kind: r.waitingFor.kind,
            name: r.waitingFor.name,
            ...(r.waitingFor.until ? { until: r.waitingFor.until.toISOString() } : {}),
          },
        }
      : {}),
  };
}

const eventToJson = (e: HistoryEvent) => ({ ...e, at: e.at.toISOString() });

/** The run, or `WorkflowNotFoundError` when it does not exist or belongs to another tenant. */
async function visibleRun(engine: Engine, p: Principal, id: string): Promise<WorkflowRun> {
  const run = await engine.workflowsRuntime().status(id);
  if (!canSee(p, run.tenant, run.project)) throw new WorkflowNotFoundError(id);
  return run;
}

export function workflowRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");
  const runtime = () => engine.workflowsRuntime();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/workflows/{name}/start",
      tags,
      summary: "Start a workflow run (idempotent with an id)",
      middleware: [write] as const,
      request: { params: NameParam, body: { content: json(StartSchema), required: true } },
      responses: {
        201: { description: "the new run", content: json(WorkflowRunSchema) },
        200: { description: "the run that already had this id", content: json(WorkflowRunSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const body = c.req.valid("json");
      const project = p.project ?? body.project;
      const tenant = p.tenant ?? body.tenant;
      if (body.id !== undefined) {
        // An existing run of another tenant is not revealed: the start fails as a conflict of ids.
        const existing = await runtime()
          .status(body.id)
          .catch(() => null);
        if (existing && !canSee(p, existing.tenant, existing.project)) {
          throw new ValidationError("a workflow run with this id already exists", "id");
        }
      }
      const { handle, created } = await engine.workflows.startRun(
        c.req.valid("param").name,
        body.input ?? null,
        {
          ...(body.id !== undefined ? { id: body.id } : {}),
          ...(tenant !== undefined ? { tenant } : {}),
          ...(project !== undefined ? { project } : {}),
        },
      );
      return c.json(runToJson(await handle.status()), created ? 201 : 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/workflows",
      tags,
      summary: "List workflow runs, newest first",
      middleware: [read] as const,
      request: { query: RunQuerySchema },
      responses: {
        200: { description: "one page", content: json(RunListSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const p = c.get("principal");
      const statuses = splitMulti(q.status);
      for (const s of statuses ?? []) {
        if (!(WORKFLOW_STATUSES as readonly string[]).includes(s))
          throw new ValidationError(`must be one of ${WORKFLOW_STATUSES.join(", ")}`, "status");
      }
      const project = p.project ?? q.project;
      const page = await engine.workflows.list({
        ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
        ...(project !== undefined ? { project } : {}),
        ...(q.name !== undefined ? { name: q.name } : {}),
        ...(statuses ? { status: statuses as WorkflowStatus[] } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      return c.json({ items: page.items.map(runToJson), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/workflows/{id}",
      tags,
      summary: "Get a workflow run",
      middleware: [read] as const,
      request: { params: IdParam },
      responses: {
        200: { description: "the run", content: json(WorkflowRunSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const run = await visibleRun(engine, c.get("principal"), c.req.valid("param").id);
      return c.json(runToJson(run), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/workflows/{id}/history",
      tags,
      summary: "A workflow run's history events, oldest first",
      middleware: [read] as const,
      request: { params: IdParam },
      responses: {
        200: { description: "the history", content: json(HistorySchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleRun(engine, c.get("principal"), id);
      const events = await runtime().history(id);
      return c.json({ items: events.map(eventToJson) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/workflows/{id}/signals/{signal}",
      tags,
      summary: "Send a signal to a workflow run",
      middleware: [write] as const,
      request: {
        params: SignalParams,
        body: { content: json(SignalSchema), required: false },
      },
      responses: {
        202: {
          description: "kept for the run",
          content: json(z.object({ accepted: z.literal(true) })),
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id, signal } = c.req.valid("param");
      await visibleRun(engine, c.get("principal"), id);
      const body = c.req.valid("json") as { data?: unknown } | undefined;
      await runtime().signal(id, signal, body?.data);
      return c.json({ accepted: true as const }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/workflows/{id}/cancel",
      tags,
      summary: "Cancel a workflow run, its open activities and its children",
      middleware: [write] as const,
      request: { params: IdParam, body: { content: json(CancelSchema), required: false } },
      responses: {
        200: { description: "the cancelled run", content: json(WorkflowRunSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleRun(engine, c.get("principal"), id);
      const body = c.req.valid("json") as { reason?: string } | undefined;
      return c.json(runToJson(await runtime().cancel(id, body?.reason)), 200);
    },
  );
}
