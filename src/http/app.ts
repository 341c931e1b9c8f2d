import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import type { Engine } from "../core/engine.js";
import { ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { authenticate, StoredTokens, tokenTable, type AuthEnv, type AuthOptions } from "./auth.js";
import { dashboardRoutes } from "./dashboard.js";
import { renderDocs } from "./docs.js";
import { httpProblem, problemResponse } from "./errors.js";
import { EventHub } from "./event-hub.js";
import { agentRoutes } from "./routes/agents.js";
import { engineRoutes } from "./routes/engine.js";
import { waitAllowanceMs } from "./schemas-engine.js";
import { eventRoutes } from "./routes/events.js";
import { flowRoutes } from "./routes/flows.js";
import { scheduleRoutes } from "./routes/schedules.js";
import { laneRoutes } from "./routes/lanes.js";
import { taskRoutes } from "./routes/tasks.js";
import { workflowRoutes } from "./routes/workflows.js";

/** Hono's CORS options. */
export type CorsOptions = NonNullable<Parameters<typeof cors>[0]>;

export interface HttpLimits {
  /** Largest request body, in bytes (default 1 MiB); larger ones get 413 before parsing. */
  bodyBytes?: number;
  /** Open event streams per token (default 10); one more gets 429. */
  sseConnectionsPerToken?: number;
  /** Non-streaming requests that take longer get 504 (default 30 000 ms; 0 turns it off). */
  requestTimeoutMs?: number;
  /** Recent events kept for `Last-Event-ID` resume (default 1000). */
  sseBufferSize?: number;
  /** Interval of SSE keep-alive comments (default 15 000 ms). */
  sseKeepAliveMs?: number;
}

export interface ServerOptions {
  auth?: AuthOptions;
  /** `true` for permissive CORS, or Hono's CORS options. Off by default. */
  cors?: boolean | CorsOptions;
  limits?: HttpLimits;
  /** Where the server logs (default: the engine's logger). */
  logger?: Logger;
}

export const API_VERSION = "v1";

export interface BuiltApp {
  app: OpenAPIHono<AuthEnv>;
  hub: EventHub;
  /** Set when `auth` is not given and the store keeps access tokens. */
  stored: StoredTokens | null;
}

function positiveInt(
  v: number | undefined,
  fallback: number,
  field: string,
  allowZero = false,
): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new TypeError(
      `limits.${field} must be ${allowZero ? "a non-negative" : "a positive"} integer`,
    );
  }
  return v;
}

/** Builds the Hono app: middleware, routes, `/openapi.json` and `/docs`. */
export function buildApp(engine: Engine, opts: ServerOptions = {}): BuiltApp {
  const logger = opts.logger ?? engine.logger;
  const limits = opts.limits ?? {};
  const bodyBytes = positiveInt(limits.bodyBytes, 1024 * 1024, "bodyBytes");
  const timeoutMs = positiveInt(limits.requestTimeoutMs, 30_000, "requestTimeoutMs", true);
  const table = opts.auth ? tokenTable(opts.auth) : null;
  // Without `auth`, tokens stored by `loom token create` (if the store keeps any) guard the API.
  const stored = !table && engine.store.tokens ? new StoredTokens(engine.store.tokens) : null;
  const source = table ?? stored;
  const hub = new EventHub(engine, positiveInt(limits.sseBufferSize, 1000, "sseBufferSize"));

  const app = new OpenAPIHono<AuthEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const issues = result.error.issues.map((i) => ({
        path: i.path.map(String).join("."),
        message: i.message,
      }));
      const first = issues[0];
      throw new ValidationError(
        first?.message ?? "invalid request",
        first?.path || result.target,
        issues,
      );
    },
  });

  app.onError((err, c) => problemResponse(c, err, logger));
  app.notFound(
    () =>
      new Response(
        JSON.stringify({
          type: "urn:loomkit:problem:not-found",
          title: "Not found",
          status: 404,
          detail: "no such route",
          code: "NOT_FOUND",
        }),
        { status: 404, headers: { "content-type": "application/problem+json" } },
      ),
  );

  if (opts.cors) app.use("*", opts.cors === true ? cors() : cors(opts.cors));

  // API answers are data, never documents: no browser may sniff one into HTML.
  app.use("/api/*", async (c, next) => {
    await next();
    c.res.headers.set("x-content-type-options", "nosniff");
  });

  // First, so that it also bounds reading a body that trickles in (a stalled client).
  if (timeoutMs > 0) {
    app.use("/api/*", async (c, next) => {
      if (c.req.path.endsWith("/events")) return next();
      // A wait bounds itself by its own timeoutMs, which it gets on top of the usual budget.
      const budget = timeoutMs + waitAllowanceMs(c.req.path, c.req.query("timeoutMs"));
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(httpProblem(504, `the request took longer than ${budget} ms`)),
          budget,
        );
      });
      try {
        await Promise.race([next(), expired]);
      } finally {
        clearTimeout(timer);
      }
    });
  }

  app.use(
    "/api/*",
    bodyLimit({
      maxSize: bodyBytes,
      onError: () => {
        throw httpProblem(413, `the request body exceeds ${bodyBytes} bytes`);
      },
    }),
  );
  app.use("/api/*", authenticate(source));

  taskRoutes(app, engine);
  agentRoutes(app, engine);
  flowRoutes(app, engine);
  scheduleRoutes(app, engine);
  engineRoutes(app, engine);
  laneRoutes(app, engine);
  workflowRoutes(app, engine);
  eventRoutes(app, hub, {
    maxPerToken: positiveInt(limits.sseConnectionsPerToken, 10, "sseConnectionsPerToken"),
    keepAliveMs: positiveInt(limits.sseKeepAliveMs, 15_000, "sseKeepAliveMs"),
    maxQueued: 10_000,
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  const docConfig = {
    openapi: "3.1.0",
    info: {
      title: "Loom",
      version: API_VERSION,
      description:
        "Durable tasks over HTTP. Errors are application/problem+json with a stable `code`. " +
        (table
          ? "Every /api route needs a bearer token bound to a tenant."
          : stored
            ? "Every /api route needs a bearer token bound to a tenant once one is stored (`loom token create`)."
            : "No authentication is configured."),
    },
    ...(table ? { security: [{ bearer: [] }] } : {}),
  };
  let cachedDoc: Record<string, unknown> | null = null;
  const document = () =>
    (cachedDoc ??= app.getOpenAPI31Document(docConfig) as unknown as Record<string, unknown>);
  app.get("/openapi.json", (c) => c.json(document()));
  app.get("/docs", (c) => c.html(renderDocs(document())));
  dashboardRoutes(app);

  return { app, hub, stored };
}
