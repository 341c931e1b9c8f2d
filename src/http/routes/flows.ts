import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../../core/engine.js";
import { FlowNotFoundError } from "../../workflow/errors.js";
import type { Flow, FlowListFilter } from "../../workflow/flows.js";
import { canSee } from "../access.js";
import { requireScope, type AuthEnv, type Principal } from "../auth.js";
import { IdParamSchema, problemResponses } from "../schemas.js";
import {
  FlowListSchema,
  FlowQuerySchema,
  FlowRequestSchema,
  FlowSchema,
  flowToJson,
} from "../schemas-flows.js";

const json = <T>(schema: T) => ({ "application/json": { schema } });
const tags = ["flows"];

/** The flow, or `FlowNotFoundError` when it does not exist or belongs to another tenant. */
async function visibleFlow(engine: Engine, p: Principal, id: string): Promise<Flow> {
  const flow = await engine.flows.get(id);
  if (!canSee(p, flow.tenant, flow.project)) throw new FlowNotFoundError(id);
  return flow;
}

/** Flows (task DAGs): submit, read, list, cancel. */
export function flowRoutes(app: OpenAPIHono<AuthEnv>, engine: Engine): void {
  const read = requireScope("read");
  const write = requireScope("write");

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/flows",
      tags,
      summary: "Submit a flow: tasks with keys and dependsOn by key, all or nothing",
      middleware: [write] as const,
      request: { body: { content: json(FlowRequestSchema), required: true } },
      responses: {
        201: { description: "the flow", content: json(FlowSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const p = c.get("principal");
      const flow = await engine.flow({
        ...body,
        ...(p.tenant !== undefined ? { tenant: p.tenant } : {}),
        ...(p.project !== undefined ? { project: p.project } : {}),
      });
      return c.json(flowToJson(flow), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/flows",
      tags,
      summary: "List flows, newest first",
      middleware: [read] as const,
      request: { query: FlowQuerySchema },
      responses: {
        200: { description: "a page of flows", content: json(FlowListSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const p = c.get("principal");
      const filter: FlowListFilter = { ...q };
      if (p.tenant !== undefined) filter.tenant = p.tenant;
      if (p.project !== undefined) filter.project = p.project;
      const page = await engine.flows.list(filter);
      return c.json({ items: page.items.map(flowToJson), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/flows/{id}",
      tags,
      summary: "Read a flow and its tasks' statuses",
      middleware: [read] as const,
      request: { params: IdParamSchema },
      responses: {
        200: { description: "the flow", content: json(FlowSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const flow = await visibleFlow(engine, c.get("principal"), c.req.valid("param").id);
      return c.json(flowToJson(flow), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/flows/{id}/cancel",
      tags,
      summary: "Cancel every task of the flow that has not ended",
      middleware: [write] as const,
      request: { params: IdParamSchema },
      responses: {
        200: { description: "the cancelled flow", content: json(FlowSchema) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await visibleFlow(engine, c.get("principal"), id);
      return c.json(flowToJson(await engine.flows.cancel(id)), 200);
    },
  );
}
