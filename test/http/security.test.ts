/**
 * The HTTP security suite: a real server on an ephemeral port, real `fetch`, a real SSE reader.
 *
 * - every route with a resource id, called with another tenant's id → 404 (the ROUTES table: a new
 *   route is one line, and a route with an id that is missing from it fails the coverage test);
 * - fuzzed filter, sort and pagination parameters (fast-check) → never a 500, never driver or SQL
 *   text (SQLite, and PostgreSQL when LOOM_PG_URL answers);
 * - XSS strings round-trip only as JSON data; nothing under /api is ever HTML;
 * - oversized bodies → 413 before parsing; SSE connections over the per-token cap → 429;
 * - planted secrets (an API key, a bearer token, a password URL, the caller's own token) never
 *   appear in a response or a log line.
 */
import { request } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, postgres, type Engine, type Logger } from "../../src/index.js";
import { createServer, type ServerOptions } from "../../src/http/index.js";
import { PG_URL, pgAvailable, pgQuery, testSchema } from "../support/pg.js";
import { SseReader, caller, problemOf, startServer, type Call } from "./support.js";

type Json = Record<string, unknown>;

const ACME = "acme-token-0123456789abcdef";
const GLOBEX = "globex-token-0123456789abcdef";

/** Every log call, as text (objects serialised, errors with message and stack). */
class CapturedLog {
  readonly lines: string[] = [];
  readonly logger: Logger;
  constructor() {
    const record =
      (level: string) =>
      (a: unknown, b?: unknown): void => {
        this.lines.push(`${level} ${serialise(a)} ${serialise(b)}`);
      };
    this.logger = {
      trace: record("trace"),
      debug: record("debug"),
      info: record("info"),
      warn: record("warn"),
      error: record("error"),
    };
  }
}

function serialise(v: unknown): string {
  if (v === undefined) return "";
  return JSON.stringify(v, (_k, x: unknown) =>
    x instanceof Error ? { name: x.name, message: x.message, stack: x.stack, cause: x.cause } : x,
  );
}

interface Server {
  engine: Engine;
  url: string;
  call: Call;
  log: CapturedLog;
  close(): Promise<void>;
}

const AUTH: ServerOptions["auth"] = {
  tokens: [
    { token: ACME, tenant: "acme" },
    { token: GLOBEX, tenant: "globex" },
  ],
};

async function sqliteServer(opts: ServerOptions = {}): Promise<Server> {
  const log = new CapturedLog();
  const h = await startServer({ auth: AUTH, ...opts, logger: log.logger }, { logger: log.logger });
  return { ...h, log };
}

async function postgresServer(opts: ServerOptions = {}): Promise<Server> {
  const log = new CapturedLog();
  const schema = testSchema("http-security");
  const engine = createEngine({
    name: "security",
    retention: false,
    pollMs: 10,
    logger: log.logger,
    store: postgres(PG_URL, { schema, poolSize: 4 }),
  });
  const running = await createServer(engine, { auth: AUTH, ...opts, logger: log.logger }).listen(0);
  return {
    engine,
    url: running.url,
    call: caller(running.url),
    log,
    close: async () => {
      await running.close();
      await engine.close({ timeoutMs: 2_000 });
      await pgQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

// ------------------------------------------------------------------ tenant isolation

/** Another tenant's resources, by kind: how to create one as `token` and return its id. */
const FIXTURES: Record<string, (call: Call, token: string) => Promise<string>> = {
  task: async (call, token) => {
    const res = await call("/api/v1/tasks", { token, body: { type: "secret-work", input: 1 } });
    return ((await res.json()) as Json)["id"] as string;
  },
  flow: async (call, token) => {
    const res = await call("/api/v1/flows", {
      token,
      body: { name: "their-flow", tasks: [{ key: "a", type: "secret-work" }] },
    });
    return ((await res.json()) as Json)["id"] as string;
  },
  workflow: async (call, token) => {
    const res = await call(`/api/v1/workflows/${SECURITY_WORKFLOW}/start`, {
      token,
      body: { input: null },
    });
    return ((await res.json()) as Json)["id"] as string;
  },
  schedule: async (call, token) => {
    const name = "their-nightly-report";
    const res = await call(`/api/v1/schedules/${name}`, {
      token,
      method: "PUT",
      body: { cron: "0 3 * * *", type: "secret-work" },
    });
    expect(res.status).toBeLessThan(300);
    return name;
  },
};

/** A workflow that waits for a signal, so its run stays open for the routes to reach. */
const SECURITY_WORKFLOW = "security.waits";

interface RouteCase {
  /** `METHOD path` exactly as in /openapi.json. */
  route: string;
  /** Which FIXTURES kind `{id}` names. */
  resource: keyof typeof FIXTURES;
  body?: Json;
  /** `?query` appended to the path. */
  query?: string;
}

/** Every route that takes a resource id. One line per route. */
const ROUTES: RouteCase[] = [
  { route: "GET /api/v1/tasks/{id}", resource: "task" },
  { route: "GET /api/v1/tasks/{id}/position", resource: "task" },
  { route: "GET /api/v1/tasks/{id}/wait", resource: "task", query: "?timeoutMs=10" },
  { route: "POST /api/v1/tasks/{id}/cancel", resource: "task", body: {} },
  { route: "POST /api/v1/tasks/{id}/heartbeat", resource: "task", body: { attemptId: "a" } },
  {
    route: "POST /api/v1/tasks/{id}/progress",
    resource: "task",
    body: { attemptId: "a", progress: 1 },
  },
  {
    route: "POST /api/v1/tasks/{id}/complete",
    resource: "task",
    body: { attemptId: "a", result: 1 },
  },
  { route: "POST /api/v1/tasks/{id}/fail", resource: "task", body: { attemptId: "a", error: "x" } },
  { route: "GET /api/v1/flows/{id}", resource: "flow" },
  { route: "POST /api/v1/flows/{id}/cancel", resource: "flow", body: {} },
  { route: "GET /api/v1/workflows/{id}", resource: "workflow" },
  { route: "GET /api/v1/workflows/{id}/history", resource: "workflow" },
  {
    route: "POST /api/v1/workflows/{id}/signals/{signal}",
    resource: "workflow",
    body: { data: 1 },
  },
  { route: "POST /api/v1/workflows/{id}/cancel", resource: "workflow", body: {} },
  { route: "GET /api/v1/schedules/{name}", resource: "schedule" },
  { route: "DELETE /api/v1/schedules/{name}", resource: "schedule" },
];

/**
 * Routes whose path parameter does not name a tenant's row, with the reason. Keep this short: a
 * route belongs here only if nothing it reaches is tenant-owned.
 */
const NOT_TENANT_OWNED: Record<string, string> = {
  "GET /api/v1/lanes/{name}":
    "lanes are shared by every tenant (a lane guards a resource); per-caller counts are filtered to the token's tenant (test/http/lanes.test.ts)",
  "PUT /api/v1/lanes/{name}": "lanes are shared by every tenant; needs the write scope",
  "POST /api/v1/lanes/{name}/concurrency":
    "lanes are shared by every tenant; needs the write scope",
  "POST /api/v1/workflows/{name}/start":
    "{name} names workflow code, not a row; the run it creates belongs to the token's tenant",
  "PUT /api/v1/schedules/{name}":
    "an upsert (a new name creates one, so no 404 to compare with); another tenant's name is refused in test/http/flows.test.ts",
};

/** Routes that take ids in the body rather than the path, checked with another tenant's id. */
const BODY_ID_ROUTES: { route: string; body: (id: string) => Json }[] = [
  { route: "POST /api/v1/tasks", body: (id) => ({ type: "x", dependsOn: [id] }) },
  {
    route: "POST /api/v1/tasks/batch",
    body: (id) => ({ tasks: [{ type: "x", dependsOn: [id] }] }),
  },
];

describe("HTTP security: tenant isolation", () => {
  let s: Server;
  const theirs: Record<string, string> = {};

  beforeAll(async () => {
    s = await sqliteServer();
    s.engine.workflow(SECURITY_WORKFLOW, {
      run: async (ctx) => {
        await ctx.waitForSignal("never");
      },
    });
    for (const [kind, make] of Object.entries(FIXTURES)) theirs[kind] = await make(s.call, GLOBEX);
  });
  afterAll(async () => s.close());

  it("covers every route with a path parameter in the ROUTES table", async () => {
    const doc = (await (await s.call("/openapi.json")).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const withParam = Object.entries(doc.paths).flatMap(([path, ops]) =>
      path.includes("{") ? Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`) : [],
    );
    const covered = new Set([...ROUTES.map((r) => r.route), ...Object.keys(NOT_TENANT_OWNED)]);
    expect(
      withParam.filter((r) => !covered.has(r)),
      "add a line to ROUTES (and a FIXTURES maker for a new kind of resource), or to " +
        "NOT_TENANT_OWNED with the reason",
    ).toEqual([]);
  });

  it.each(ROUTES)(
    "$route answers 404 for another tenant's id, exactly as for no such id",
    async (c) => {
      const [method, template] = c.route.split(" ") as [string, string];
      const send = (id: string) =>
        s.call(
          template.replace(/\{(id|name)\}/, encodeURIComponent(id)).replace("{signal}", "go") +
            (c.query ?? ""),
          {
            token: ACME,
            method,
            ...(c.body !== undefined ? { body: c.body } : {}),
          },
        );
      const id = theirs[c.resource]!;
      const res = await send(id);
      expect(res.status).toBe(404);
      const body = await problemOf(res);
      // Same answer as for an id that does not exist: nothing tells the two apart.
      const ghost = `${id.slice(0, -4)}zzzz`;
      const none = await problemOf(await send(ghost));
      expect({ ...body, detail: (body["detail"] as string).replace(id, "<id>") }).toEqual({
        ...none,
        detail: (none["detail"] as string).replace(ghost, "<id>"),
      });
    },
  );

  it.each(BODY_ID_ROUTES)("$route answers 404 for another tenant's id in the body", async (c) => {
    const [method, path] = c.route.split(" ") as [string, string];
    const res = await s.call(path, { token: ACME, method, body: c.body(theirs["task"]!) });
    expect(res.status).toBe(404);
  });

  it("keeps another tenant's rows out of lists, counts, stats, bulk cancel, purge and events", async () => {
    const sse = await SseReader.open(
      `${s.url}/api/v1/events?tenant=globex&taskId=${theirs["task"]}`,
      {
        authorization: `Bearer ${ACME}`,
      },
    );
    try {
      const list = (await (
        await s.call("/api/v1/tasks?tenant=globex", { token: ACME })
      ).json()) as {
        items: Json[];
      };
      expect(list.items.filter((t) => t["tenant"] !== "acme")).toEqual([]);
      const count = (await (
        await s.call("/api/v1/tasks/count?tenant=globex", { token: ACME })
      ).json()) as Json;
      expect(count["count"]).toBe(list.items.length);
      const stats = (await (
        await s.call("/api/v1/stats?tenant=globex", { token: ACME })
      ).json()) as {
        counts: Record<string, number>;
      };
      expect(Object.values(stats.counts).reduce((a, b) => a + b, 0)).toBe(list.items.length);
      const cancelled = await s.call("/api/v1/tasks/cancel", {
        token: ACME,
        body: { filter: { tenant: "globex" } },
      });
      expect(await cancelled.json()).toEqual({ cancelled: list.items.length });
      // Their task is untouched, and its events never reached the other tenant's stream.
      await s.call(`/api/v1/tasks/${theirs["task"]}/cancel`, { token: GLOBEX, body: {} });
      await s.call("/api/v1/purge", { token: ACME, body: { olderThan: 0, tenant: "globex" } });
      const still = await s.call(`/api/v1/tasks/${theirs["task"]}`, { token: GLOBEX });
      expect(((await still.json()) as Json)["status"]).toBe("cancelled");
      await s.call("/api/v1/tasks", { token: ACME, body: { type: "marker" } });
      await new Promise((r) => setTimeout(r, 50));
      expect(sse.messages.filter((m) => m.data.includes(theirs["task"]!))).toEqual([]);
    } finally {
      sse.close();
    }
  });
});

// ------------------------------------------------------------------ fuzzing

const DRIVER_TEXT =
  /sqlite|syntax error|near "|postgres|relation "|column "|violates|loom_tasks|better-sqlite3|node_modules|\bat \S+ \(|SqliteError|DatabaseError|StoreError/i;

const KEYS = [
  "status",
  "type",
  "tenant",
  "project",
  "lane",
  "caller",
  "workflowId",
  "limit",
  "cursor",
  "sort",
  "order",
  "orderBy",
  "offset",
  "page",
  "labels",
  "label",
  "__proto__",
  "constructor",
];
const NASTY = [
  "'",
  '"',
  "' OR 1=1 --",
  "1; DROP TABLE loom_tasks; --",
  "id DESC; SELECT * FROM loom_tasks",
  "\\",
  "%",
  "_",
  "$1",
  "?",
  "\u0000",
  "NaN",
  "Infinity",
  "-1",
  "0",
  "1e3",
  "0x10",
  "99999999999999999999",
  "1001",
  "1000",
  "completed",
  "pending,failed",
  "$.a",
  'a"]',
  "dGFzay0x",
  Buffer.from("task-1' OR '1'='1").toString("base64url"),
  Buffer.from("0").toString("base64url"),
  "x".repeat(300),
];
const value = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.integer().map(String),
  fc.double().map(String),
  fc.base64String({ maxLength: 40 }),
);
const query = fc.array(
  fc.tuple(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 10 })), value),
  {
    maxLength: 6,
  },
);
const toQuery = (pairs: [string, string][]) => {
  const q = new URLSearchParams();
  for (const [k, v] of pairs) q.append(k, v);
  return q.toString();
};

const filterBody = fc.record(
  {
    status: fc.oneof(value, fc.array(value, { maxLength: 3 })),
    type: fc.oneof(value, fc.array(value, { maxLength: 3 })),
    project: value,
    lane: value,
    caller: value,
    workflowId: value,
    labels: fc.dictionary(value, value, { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

/**
 * Not a 500, JSON, and no driver text. What the request itself sent (`echoes`, e.g. an id quoted
 * in a 404) is taken out first: quoting the caller's own data back as JSON is not a leak.
 */
async function expectSafe(res: Response, what: string, echoes: string[] = []): Promise<void> {
  const text = await res.text();
  expect(res.status, `${what} → ${res.status} ${text}`).toBeLessThan(500);
  expect(res.headers.get("content-type") ?? "", what).toMatch(/^application\/(problem\+)?json/);
  JSON.parse(text);
  let rest = text;
  // Longest first, so a short echo cannot cut a longer one apart before it is taken out.
  const byLength = echoes.filter((x) => x.length > 0).sort((a, b) => b.length - a.length);
  for (const e of byLength) {
    rest = rest.split(JSON.stringify(e).slice(1, -1)).join("");
  }
  expect(rest, what).not.toMatch(DRIVER_TEXT);
}

/** Every key and string value in a request body: what a validation error may quote back. */
function stringsIn(body: unknown): string[] {
  if (typeof body === "string") return [body];
  if (Array.isArray(body)) return body.flatMap(stringsIn);
  if (body !== null && typeof body === "object") {
    return Object.entries(body).flatMap(([k, v]) => [k, ...stringsIn(v)]);
  }
  return [];
}

function fuzzSuite(name: string, make: () => Promise<Server>, runs: number): void {
  describe(`HTTP security: fuzzed filters, sort and pagination (${name})`, () => {
    let s: Server;
    beforeAll(async () => {
      s = await make();
      await s.call("/api/v1/tasks/batch", {
        token: ACME,
        body: {
          tasks: Array.from({ length: 12 }, (_, i) => ({
            type: i % 2 ? "a" : "b",
            project: "fz",
            labels: { k: String(i) },
            runAt: Date.now() + 3_600_000,
          })),
        },
      });
    }, 30_000);
    afterAll(async () => s?.close());

    it("GET /tasks, /tasks/count and /stats never 500 and never echo driver text", async () => {
      await fc.assert(
        fc.asyncProperty(query, async (pairs) => {
          const q = toQuery(pairs);
          for (const path of ["/api/v1/tasks", "/api/v1/tasks/count", "/api/v1/stats"]) {
            await expectSafe(
              await s.call(`${path}?${q}`, { token: ACME }),
              `${path}?${q}`,
              pairs.flat(),
            );
          }
        }),
        { numRuns: runs },
      );
    });

    it("POST /tasks/cancel with fuzzed filters never 500s", async () => {
      await fc.assert(
        fc.asyncProperty(filterBody, value, async (filter, reason) => {
          const res = await s.call("/api/v1/tasks/cancel", {
            token: GLOBEX,
            body: { filter, reason },
          });
          await expectSafe(res, `cancel ${JSON.stringify(filter)}`, stringsIn(filter));
        }),
        { numRuns: runs },
      );
    });

    it("answers ids, attempt ids and error texts of any characters without a 500", async () => {
      const id = await FIXTURES["task"]!(s.call, ACME);
      await fc.assert(
        fc.asyncProperty(fc.oneof(value, fc.string({ maxLength: 300 })), async (v) => {
          const some = encodeURIComponent(v) || "x";
          await expectSafe(await s.call(`/api/v1/tasks/${some}`, { token: ACME }), `id ${v}`, [v]);
          const failed = await s.call(`/api/v1/tasks/${id}/fail`, {
            token: ACME,
            body: { attemptId: v, error: v },
          });
          await expectSafe(failed, `fail ${JSON.stringify(v)}`, [v]);
          // As the other tenant: the list fuzzing (as ACME) must not page through these.
          const sent = await s.call("/api/v1/tasks", {
            token: GLOBEX,
            body: { type: v, caller: v, labels: { [v]: v }, idempotencyKey: v, input: v },
          });
          await expectSafe(sent, `submit ${JSON.stringify(v)}`, [v]);
        }),
        { numRuns: runs },
      );
    });

    it("walks every page with any limit; forged cursors never 500", async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 13 }), async (limit) => {
          const seen: string[] = [];
          let cursor: string | null = null;
          do {
            const q: string = `project=fz&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
            const page = (await (await s.call(`/api/v1/tasks?${q}`, { token: ACME })).json()) as {
              items: Json[];
              nextCursor: string | null;
            };
            seen.push(...page.items.map((t) => t["id"] as string));
            cursor = page.nextCursor;
          } while (cursor);
          expect(new Set(seen).size).toBe(12);
          expect(seen.length).toBe(12);
        }),
        { numRuns: Math.min(runs, 13) },
      );
      await fc.assert(
        fc.asyncProperty(fc.string({ minLength: 1, maxLength: 60 }), async (raw) => {
          const cursor = Buffer.from(raw).toString("base64url");
          const res = await s.call(`/api/v1/tasks?cursor=${cursor}`, { token: ACME });
          await expectSafe(res, `cursor ${JSON.stringify(raw)}`, [cursor, raw]);
        }),
        { numRuns: runs },
      );
    });
  });
}

fuzzSuite("sqlite", () => sqliteServer(), 150);
const pgUp = await pgAvailable();
if (pgUp) fuzzSuite("postgres", () => postgresServer(), 60);

// ------------------------------------------------------------------ XSS, body limit, SSE cap

const XSS = [
  "<script>alert(1)</script>",
  '"><img src=x onerror=alert(1)>',
  "javascript:alert(1)",
  "</script><script>alert(document.cookie)</script>",
  "<svg/onload=alert(1)>",
  "{{constructor.constructor('alert(1)')()}}",
];

describe("HTTP security: content, limits and connections", () => {
  let s: Server;
  beforeAll(async () => {
    s = await sqliteServer({ limits: { bodyBytes: 2048, sseConnectionsPerToken: 2 } });
  });
  afterAll(async () => s.close());

  it("returns XSS strings only as JSON data, never as HTML", async () => {
    for (const x of XSS) {
      const body = {
        type: x.slice(0, 200),
        input: { html: x },
        labels: { [x]: x },
        metadata: { note: x },
        caller: x,
        project: x,
      };
      const res = await s.call("/api/v1/tasks", { token: ACME, body });
      expect(res.status).toBe(201);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const created = (await res.json()) as Json;
      const got = await s.call(`/api/v1/tasks/${created["id"] as string}`, { token: ACME });
      expect(got.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await got.json()).toMatchObject(body);
      const listed = await s.call(`/api/v1/tasks?project=${encodeURIComponent(x)}`, {
        token: ACME,
      });
      expect(listed.headers.get("content-type")).toMatch(/^application\/json/);
      expect(((await listed.json()) as { items: Json[] }).items[0]).toMatchObject(body);
    }
    // Errors and unknown routes under /api are problem+json too: what they quote stays JSON data.
    for (const path of [
      `/api/v1/${encodeURIComponent(XSS[0]!)}`,
      `/api/v1/tasks/${encodeURIComponent(XSS[1]!)}`,
      `/api/v1/tasks?status=${encodeURIComponent(XSS[0]!)}`,
    ]) {
      const res = await s.call(path, { token: ACME, headers: { accept: "text/html" } });
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(typeof ((await res.json()) as Json)["detail"]).toBe("string");
    }
  });

  it("answers 413 to an oversized body before parsing it", async () => {
    const before = await s.engine.count({});
    // Not even JSON: a parser would have said 400.
    const big = "{".repeat(4096);
    const announced = await s.call("/api/v1/tasks", { token: ACME, body: big });
    expect(announced.status).toBe(413);
    expect((await problemOf(announced))["code"]).toBe("PAYLOAD_TOO_LARGE");
    // Streamed without a Content-Length.
    const streamed = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${s.url}/api/v1/tasks`);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: {
            authorization: `Bearer ${ACME}`,
            "content-type": "application/json",
            "transfer-encoding": "chunked",
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on("error", reject);
      for (let i = 0; i < 8; i++) req.write("[".repeat(1024));
    });
    expect(streamed).toBe(413);
    expect(await s.engine.count({})).toBe(before);
    // A body just under the limit still goes through.
    const ok = await s.call("/api/v1/tasks", {
      token: ACME,
      body: { type: "fits", input: "x".repeat(1500) },
    });
    expect(ok.status).toBe(201);
  });

  it("answers 429 to an SSE connection over the per-token cap, and frees the slot on close", async () => {
    const headers = (t: string) => ({ authorization: `Bearer ${t}` });
    const a = await SseReader.open(`${s.url}/api/v1/events`, headers(ACME));
    const b = await SseReader.open(`${s.url}/api/v1/events`, headers(ACME));
    try {
      expect([a.response.status, b.response.status]).toEqual([200, 200]);
      const c = await fetch(`${s.url}/api/v1/events`, { headers: headers(ACME) });
      expect(c.status).toBe(429);
      expect(c.headers.get("retry-after")).toBeTruthy();
      expect((await problemOf(c))["code"]).toBe("TOO_MANY_REQUESTS");
      // The cap is per token: another tenant's token still connects.
      const other = await SseReader.open(`${s.url}/api/v1/events`, headers(GLOBEX));
      expect(other.response.status).toBe(200);
      other.close();
      a.close();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const again = await SseReader.open(`${s.url}/api/v1/events`, headers(ACME));
        status = again.response.status;
        if (status === 200) again.close();
        else await again.response.body?.cancel();
      }
      expect(status).toBe(200);
    } finally {
      a.close();
      b.close();
    }
  });
});

// ------------------------------------------------------------------ secrets

describe("HTTP security: planted secrets", () => {
  const API_KEY = "sk-ant-api03-PLANTEDsecretKEY0123456789abcdef";
  const BEARER = "PlantedBearerValue0123456789";
  const PASSWORD = "hunter2-planted-password";
  const SECRETS = [API_KEY, BEARER, PASSWORD, ACME, GLOBEX, "wrong-token-planted-0123456789"];
  let s: Server;
  const texts: string[] = [];
  const read = async (res: Response) => {
    const t = await res.text();
    texts.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n${t}`);
    return t;
  };

  beforeAll(async () => {
    s = await sqliteServer();
    s.engine.register(
      "leaky",
      async () => {
        throw new Error(
          `upstream said 401 for Authorization: Bearer ${BEARER} with api_key=${API_KEY} ` +
            `at postgres://loom:${PASSWORD}@db.internal:5432/prod`,
        );
      },
      { maxRetries: 0 },
    );
    await s.engine.start();
  });
  afterAll(async () => s.close());

  it("never shows a secret in a response, an event or a log line", async () => {
    const sse = await SseReader.open(`${s.url}/api/v1/events`, { authorization: `Bearer ${ACME}` });
    try {
      const created = JSON.parse(
        await read(await s.call("/api/v1/tasks", { token: ACME, body: { type: "leaky" } })),
      ) as Json;
      const id = created["id"] as string;
      await read(await s.call(`/api/v1/tasks/${id}/wait?timeoutMs=5000`, { token: ACME }));
      await sse.next((m) => m.event === "task.failed");

      // An external agent reporting a failure that carries secrets.
      await s.call("/api/v1/tasks", { token: ACME, body: { type: "agent-work" } });
      const claimed = JSON.parse(
        await read(
          await s.call("/api/v1/claim", {
            token: ACME,
            body: { agent: "a1", types: ["agent-work"] },
          }),
        ),
      ) as Json;
      await read(
        await s.call(`/api/v1/tasks/${claimed["id"] as string}/fail`, {
          token: ACME,
          body: {
            attemptId: claimed["attemptId"],
            error: `token=${API_KEY}; Bearer ${BEARER}; redis://:${PASSWORD}@cache`,
            retry: false,
          },
        }),
      );
      await sse.next((m) => m.event === "task.failed" && m.data.includes(claimed["id"] as string));

      for (const path of [
        `/api/v1/tasks/${id}`,
        "/api/v1/tasks?status=failed",
        "/api/v1/tasks/count",
        "/api/v1/stats",
        `/api/v1/tasks/${id}/position`,
        "/api/v1/nope",
      ]) {
        await read(await s.call(path, { token: ACME }));
      }
      // Bad and unknown tokens, and a secret in a query string, are not echoed either.
      await read(await s.call("/api/v1/tasks", { token: "wrong-token-planted-0123456789" }));
      await read(await s.call("/api/v1/tasks", { headers: { authorization: `Basic ${BEARER}` } }));
      await read(await s.call(`/api/v1/tasks?cursor=${API_KEY}`, { token: ACME }));
      await read(await s.call("/api/v1/tasks", { token: ACME, body: `{"type": "${API_KEY}` }));

      const failed = JSON.parse(texts[1]!.slice(texts[1]!.indexOf("{"))) as Json;
      expect(failed["status"]).toBe("failed");
      expect(failed["error"]).toContain("[REDACTED]");
    } finally {
      sse.close();
    }
    const events = sse.messages.map((m) => m.data);
    expect(events.some((e) => e.includes("[REDACTED]"))).toBe(true);
    expect(s.log.lines.length).toBeGreaterThan(0);
    for (const secret of SECRETS) {
      for (const [where, list] of [
        ["responses", texts],
        ["events", events],
        ["logs", s.log.lines],
      ] as const) {
        const leaks = list.filter((t) => t.includes(secret));
        expect(leaks, `${secret} in ${where}`).toEqual([]);
      }
    }
  });
});
