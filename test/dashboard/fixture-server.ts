// A server that answers the agreed /api/v1 shapes (docs: /work http-shapes, docs/dashboard.md)
// with fixed sample data, behind the real dashboard routes. It exercises the dashboard's views for
// features whose routes live elsewhere (lanes, workflows, flows, schedules, stats), and produces
// the screenshots in docs/screenshots. It is a client contract test, not a stand-in for the engine.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { AuthEnv } from "../../src/http/auth.js";
import { dashboardRoutes } from "../../src/http/dashboard.js";

const now = Date.now();
const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();

const task = (id: string, type: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  type,
  status,
  input: { document: `${id}.pdf` },
  result: status === "completed" ? { pages: 12 } : null,
  error: status === "failed" ? "HTTP 503 from https://ocr.example.com/v1 (key=[REDACTED])" : null,
  tenant: "default",
  project: "invoices",
  caller: "alice",
  priority: 1,
  lane: "ocr",
  labels: { source: "upload" },
  metadata: {},
  attempt: status === "pending" ? 0 : 1,
  attemptId: null,
  maxRetries: 2,
  progress: status === "running" ? 40 : null,
  progressNote: status === "running" ? "page 5 of 12" : null,
  runAt: at(5),
  dependsOn: [],
  idempotencyKey: null,
  requestId: null,
  workflowId: null,
  engineName: "api",
  timeoutMs: null,
  createdAt: at(5),
  startedAt: status === "pending" ? null : at(4),
  completedAt: ["completed", "failed"].includes(status) ? at(1) : null,
  updatedAt: at(1),
  ...extra,
});

const tasks = [
  task("t-extract", "pdf.extract", "completed"),
  task("t-ocr-1", "ocr.page", "completed"),
  task("t-ocr-2", "ocr.page", "running"),
  task("t-classify", "llm.classify", "pending"),
  task("t-notify", "mail.send", "failed"),
];

const lanes = [
  {
    name: "ocr",
    concurrency: 4,
    running: 4,
    queued: 9,
    oldestQueuedAt: at(3),
    throughput1m: 22,
    etaMs: 24_000,
    perCaller: [
      { caller: "alice", running: 2, queued: 6 },
      { caller: "bob", running: 1, queued: 2 },
      { caller: "carol", running: 1, queued: 1 },
    ],
  },
  {
    name: "llm",
    concurrency: 2,
    running: 1,
    queued: 0,
    oldestQueuedAt: null,
    throughput1m: 5,
    etaMs: 0,
    perCaller: [{ caller: "alice", running: 1, queued: 0 }],
  },
];

const workflow = {
  id: "wf-invoice-42",
  name: "invoice.approve",
  version: 1,
  status: "waiting",
  input: { invoice: 42, amount: 1250 },
  result: null,
  error: null,
  state: { approvals: ["finance"], total: 1250 },
  tenant: "default",
  project: "invoices",
  parentId: null,
  createdAt: at(30),
  updatedAt: at(2),
  completedAt: null,
  waitingFor: { kind: "signal", name: "manager-approval" },
};
const history = [
  { seq: 0, kind: "WORKFLOW_STARTED", name: null, data: { invoice: 42 }, at: at(30) },
  { seq: 1, kind: "STEP_COMPLETED", name: "load-invoice", data: { amount: 1250 }, at: at(29) },
  { seq: 2, kind: "ACTIVITY_SCHEDULED", name: "ocr.page", data: null, at: at(29) },
  { seq: 2, kind: "ACTIVITY_COMPLETED", name: "ocr.page", data: { pages: 3 }, at: at(20) },
  { seq: 3, kind: "STATE_SET", name: "approvals", data: ["finance"], at: at(10) },
];

const flow = {
  id: "flow-7",
  name: "monthly-report",
  status: "running",
  tenant: "default",
  project: "invoices",
  createdAt: at(12),
  completedAt: null,
  tasks: [
    {
      key: "extract",
      taskId: "t-extract",
      type: "pdf.extract",
      status: "completed",
      dependsOn: [],
    },
    {
      key: "ocr-a",
      taskId: "t-ocr-1",
      type: "ocr.page",
      status: "completed",
      dependsOn: ["extract"],
    },
    {
      key: "ocr-b",
      taskId: "t-ocr-2",
      type: "ocr.page",
      status: "running",
      dependsOn: ["extract"],
    },
    {
      key: "classify",
      taskId: "t-classify",
      type: "llm.classify",
      status: "pending",
      dependsOn: ["ocr-a", "ocr-b"],
    },
    {
      key: "notify",
      taskId: "t-notify",
      type: "mail.send",
      status: "failed",
      dependsOn: ["extract"],
    },
    {
      key: "publish",
      taskId: "t-classify",
      type: "report.publish",
      status: "pending",
      dependsOn: ["classify", "notify"],
    },
  ],
};

const schedules = [
  {
    name: "nightly-report",
    cron: "0 2 * * *",
    timezone: "Europe/Paris",
    type: null,
    workflow: "report.build",
    input: {},
    catchUp: "skip",
    nextRunAt: new Date(now + 5 * 3_600_000).toISOString(),
    lastRunAt: at(19 * 60),
    lastTaskId: "t-extract",
  },
  {
    name: "cleanup",
    cron: "*/15 * * * *",
    timezone: "UTC",
    type: "storage.cleanup",
    workflow: null,
    input: { olderThanDays: 30 },
    catchUp: "all",
    nextRunAt: new Date(now + 7 * 60_000).toISOString(),
    lastRunAt: at(8),
    lastTaskId: "t-notify",
  },
];

const throughput = Array.from({ length: 60 }, (_, i) => ({
  at: at(59 - i),
  completed: Math.round(20 + 12 * Math.sin(i / 6) + (i % 7)),
  failed: i % 11 === 0 ? 2 : i % 5 === 0 ? 1 : 0,
}));

export interface FixtureServer {
  url: string;
  /** Request bodies received, by "METHOD path". */
  received: { route: string; body: unknown }[];
  close(): Promise<void>;
}

export async function startFixtureServer(): Promise<FixtureServer> {
  const app = new Hono<AuthEnv>();
  const received: FixtureServer["received"] = [];
  const record = async (c: { req: { method: string; path: string; json(): Promise<unknown> } }) => {
    let body: unknown = null;
    try {
      body = await c.req.json();
    } catch {
      // no body
    }
    received.push({ route: `${c.req.method} ${c.req.path}`, body });
  };
  const api = "/api/v1";
  app.get(`${api}/stats`, (c) =>
    c.json({
      counts: {
        pending: 9,
        claimed: 0,
        running: 5,
        retrying: 1,
        completed: 1412,
        failed: 7,
        failed_crash: 1,
        cancelled: 3,
      },
      throughput,
      lanes,
    }),
  );
  app.get(`${api}/tasks`, (c) => {
    const status = c.req.query("status");
    const items = status ? tasks.filter((t) => status.split(",").includes(t.status)) : tasks;
    return c.json({ items, nextCursor: null });
  });
  app.get(`${api}/tasks/:id`, (c) => {
    const t = tasks.find((x) => x.id === c.req.param("id"));
    return t
      ? c.json(t)
      : c.json({ status: 404, code: "TASK_NOT_FOUND", detail: "no such task" }, 404);
  });
  app.get(`${api}/lanes`, (c) => c.json({ items: lanes }));
  app.post(`${api}/lanes/:name/concurrency`, async (c) => {
    await record(c);
    return c.json(lanes.find((l) => l.name === c.req.param("name")));
  });
  app.get(`${api}/workflows`, (c) =>
    c.json({
      items: [
        workflow,
        {
          ...workflow,
          id: "wf-invoice-41",
          status: "completed",
          waitingFor: null,
          completedAt: at(40),
          createdAt: at(60),
        },
      ],
      nextCursor: null,
    }),
  );
  app.get(`${api}/workflows/:id`, (c) => c.json(workflow));
  app.get(`${api}/workflows/:id/history`, (c) => c.json({ items: history }));
  app.post(`${api}/workflows/:id/signals/:signal`, async (c) => {
    await record(c);
    return c.json({ accepted: true }, 202);
  });
  app.get(`${api}/flows`, (c) => c.json({ items: [flow], nextCursor: null }));
  app.get(`${api}/flows/:id`, (c) => c.json(flow));
  app.get(`${api}/schedules`, (c) => c.json({ items: schedules }));
  app.get(
    `${api}/events`,
    () =>
      new Response(
        new ReadableStream({
          start: (ctl) => ctl.enqueue(new TextEncoder().encode(": connected\n\n")),
        }),
        {
          headers: { "content-type": "text/event-stream" },
        },
      ),
  );
  dashboardRoutes(app);

  return new Promise((resolve) => {
    const server = serve(
      { fetch: app.fetch, port: 0, hostname: "127.0.0.1" },
      (info: AddressInfo) => {
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          received,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              if ("closeAllConnections" in server) server.closeAllConnections();
            }),
        });
      },
    );
  });
}
