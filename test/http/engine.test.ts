import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";
const READER = "acme-reader-0123456789";

describe("HTTP engine-wide routes", () => {
  let h: Harness;
  const submit = async (token: string, body: Json): Promise<Json> => {
    const res = await h.call("/api/v1/tasks", { token, body });
    expect(res.status).toBe(201);
    return (await res.json()) as Json;
  };

  beforeAll(async () => {
    h = await startServer({
      auth: {
        tokens: [
          { token: ACME, tenant: "acme" },
          { token: GLOBEX, tenant: "globex" },
          { token: READER, tenant: "acme", scopes: ["read"] },
        ],
      },
    });
    h.engine.register("echo", async (task) => ({ echoed: task.input }));
    h.engine.register(
      "boom",
      async () => {
        throw new Error("boom");
      },
      { maxRetries: 0 },
    );
    await h.engine.start();
  });
  afterAll(async () => h.close());

  it("GET /stats counts the token's tenant's tasks and buckets throughput per minute", async () => {
    const done = await Promise.all([1, 2, 3].map((n) => submit(ACME, { type: "echo", input: n })));
    const bad = await submit(ACME, { type: "boom" });
    await submit(ACME, { type: "later", runAt: Date.now() + 3_600_000 });
    await submit(GLOBEX, { type: "echo" });
    for (const t of [...done, bad]) await h.engine.wait(t["id"] as string, { timeoutMs: 5_000 });

    const res = await h.call("/api/v1/stats?tenant=globex", { token: ACME });
    expect(res.status).toBe(200);
    const stats = (await res.json()) as {
      counts: Record<string, number>;
      throughput: { at: string; completed: number; failed: number }[];
      lanes: unknown[];
    };
    expect(stats.counts).toMatchObject({ completed: 3, failed: 1, pending: 1, running: 0 });
    expect(Object.keys(stats.counts).sort()).toEqual([
      "cancelled",
      "claimed",
      "completed",
      "failed",
      "failed_crash",
      "pending",
      "retrying",
      "running",
    ]);
    expect(stats.throughput).toHaveLength(60);
    const total = stats.throughput.reduce(
      (a, b) => ({ completed: a.completed + b.completed, failed: a.failed + b.failed }),
      { completed: 0, failed: 0 },
    );
    expect(total).toEqual({ completed: 3, failed: 1 });
    const last = stats.throughput[59]!;
    expect(new Date(last.at).getTime() % 60_000).toBe(0);
    expect(Date.now() - new Date(last.at).getTime()).toBeLessThan(120_000);
    expect(stats.lanes).toEqual([]);

    const theirs = (await (await h.call("/api/v1/stats", { token: GLOBEX })).json()) as {
      counts: Record<string, number>;
    };
    expect(theirs.counts["completed"]).toBe(1);
    expect(theirs.counts["failed"]).toBe(0);
  });

  it("POST /tasks/cancel cancels by filter, only within the token's tenant", async () => {
    const later = Date.now() + 3_600_000;
    const mine = await Promise.all(
      [1, 2].map(() => submit(ACME, { type: "later", project: "bulk", runAt: later })),
    );
    const keep = await submit(ACME, { type: "later", project: "keep", runAt: later });
    const theirs = await submit(GLOBEX, { type: "later", project: "bulk", runAt: later });

    const cross = await h.call("/api/v1/tasks/cancel", {
      token: GLOBEX,
      body: { filter: { tenant: "acme", project: "keep" } },
    });
    expect(await cross.json()).toEqual({ cancelled: 0 });

    const res = await h.call("/api/v1/tasks/cancel", {
      token: ACME,
      body: { filter: { project: "bulk", status: ["pending"] }, reason: "bulk stop" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ cancelled: 2 });
    for (const t of mine) {
      const got = await h.engine.get(t["id"] as string);
      expect(got).toMatchObject({ status: "cancelled", error: "bulk stop" });
    }
    expect((await h.engine.get(keep["id"] as string)).status).toBe("pending");
    expect((await h.engine.get(theirs["id"] as string)).status).toBe("pending");

    const readOnly = await h.call("/api/v1/tasks/cancel", { token: READER, body: { filter: {} } });
    expect(readOnly.status).toBe(403);
    const bad = await h.call("/api/v1/tasks/cancel", {
      token: ACME,
      body: { filter: { status: "nope" } },
    });
    expect(bad.status).toBe(400);
    expect((await problemOf(bad))["code"]).toBe("VALIDATION");
  });

  it("GET /tasks/{id}/wait returns the ended task, or 408 WAIT_TIMEOUT", async () => {
    const t = await submit(ACME, { type: "echo", input: "w" });
    const res = await h.call(`/api/v1/tasks/${String(t["id"])}/wait?timeoutMs=5000`, {
      token: ACME,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: t["id"], status: "completed" });

    const stuck = await submit(ACME, { type: "nobody-runs-this" });
    const timedOut = await h.call(`/api/v1/tasks/${String(stuck["id"])}/wait?timeoutMs=20`, {
      token: ACME,
    });
    expect(timedOut.status).toBe(408);
    expect((await problemOf(timedOut))["code"]).toBe("WAIT_TIMEOUT");

    const other = await h.call(`/api/v1/tasks/${String(stuck["id"])}/wait?timeoutMs=20`, {
      token: GLOBEX,
    });
    expect(other.status).toBe(404);
    const tooLong = await h.call(`/api/v1/tasks/${String(stuck["id"])}/wait?timeoutMs=9999999`, {
      token: ACME,
    });
    expect(tooLong.status).toBe(400);
  });

  it("POST /purge needs the write scope and deletes only the token's tenant's finished tasks", async () => {
    const theirs = await submit(GLOBEX, { type: "echo" });
    await h.engine.wait(theirs["id"] as string, { timeoutMs: 5_000 });
    const denied = await h.call("/api/v1/purge", { token: READER, body: { olderThan: 0 } });
    expect(denied.status).toBe(403);
    const bad = await h.call("/api/v1/purge", { token: ACME, body: { olderThan: "yesterday" } });
    expect(bad.status).toBe(400);
    const notTerminal = await h.call("/api/v1/purge", {
      token: ACME,
      body: { olderThan: 0, statuses: ["pending"] },
    });
    expect(notTerminal.status).toBe(400);

    const acmeFinished = await h.engine.count({
      tenant: "acme",
      status: ["completed", "failed", "failed_crash", "cancelled"],
    });
    expect(acmeFinished).toBeGreaterThan(0);
    const past = await h.call("/api/v1/purge", {
      token: ACME,
      body: { olderThan: "2000-01-01T00:00:00Z" },
    });
    expect(await past.json()).toEqual({ purged: 0 });
    const res = await h.call("/api/v1/purge", {
      token: ACME,
      body: { olderThan: 0, tenant: "globex" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ purged: acmeFinished });
    expect((await h.engine.get(theirs["id"] as string)).status).toBe("completed");
    expect(await h.engine.count({ tenant: "acme", status: "completed" })).toBe(0);
  });
});

describe("HTTP request timeout", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ limits: { requestTimeoutMs: 100 } });
  });
  afterAll(async () => h.close());

  /** A client that sends the headers and half a body, then stalls (slowloris). */
  const stalledPost = (path: string) =>
    new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const url = new URL(h.url + path);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] ?? "", body });
          });
        },
      );
      req.on("error", reject);
      req.write('{"type":');
    });

  it("answers 504 problem+json when a request takes longer than limits.requestTimeoutMs", async () => {
    const res = await stalledPost("/api/v1/tasks");
    expect(res.status).toBe(504);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).toMatchObject({ code: "REQUEST_TIMEOUT", status: 504 });
    expect(await h.engine.count({})).toBe(0);
    // Quick requests still pass, and a wait may run past the request timeout up to its own.
    const ok = await h.call("/api/v1/tasks", { body: { type: "x" } });
    expect(ok.status).toBe(201);
    const id = ((await ok.json()) as Json)["id"] as string;
    const waited = await h.call(`/api/v1/tasks/${id}/wait?timeoutMs=300`);
    expect(waited.status).toBe(408);
  });

  it("leaves event streams open past the timeout", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${h.url}/api/v1/events`, { signal: ctrl.signal });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the "connected" comment
    await new Promise((r) => setTimeout(r, 250));
    await h.call("/api/v1/tasks", { body: { type: "after-timeout" } });
    let text = "";
    while (!text.includes("after-timeout")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain("task.created");
    ctrl.abort();
  });
});
