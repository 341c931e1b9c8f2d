import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

describe("HTTP tasks", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startServer({ limits: { bodyBytes: 4096 } });
    h.engine.register("echo", async (task) => ({ echoed: task.input }));
    await h.engine.start();
  });
  afterAll(async () => h.close());

  it("runs the whole life cycle: submit → worker completes → GET shows completed", async () => {
    const res = await h.call("/api/v1/tasks", {
      body: { type: "echo", input: { n: 1 }, labels: { env: "test" }, project: "p1" },
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Json;
    expect(created).toMatchObject({ type: "echo", project: "p1", input: { n: 1 } });
    expect(typeof created["createdAt"]).toBe("string");
    expect(new Date(created["createdAt"] as string).toISOString()).toBe(created["createdAt"]);

    await h.engine.wait(created["id"] as string, { timeoutMs: 3_000 });
    const got = (await (await h.call(`/api/v1/tasks/${String(created["id"])}`)).json()) as Json;
    expect(got).toMatchObject({ status: "completed", result: { echoed: { n: 1 } }, attempt: 1 });
    expect(typeof got["completedAt"]).toBe("string");
  });

  it("lists with filters, comma-separated or repeated status, cursor pages and counts", async () => {
    const batch = await h.call("/api/v1/tasks/batch", {
      body: {
        tasks: [1, 2, 3].map((n) => ({
          type: "later",
          input: n,
          project: "list",
          runAt: Date.now() + 3_600_000,
        })),
      },
    });
    expect(batch.status).toBe(201);
    expect(((await batch.json()) as { items: Json[] }).items).toHaveLength(3);

    const page1 = (await (
      await h.call("/api/v1/tasks?project=list&limit=2&status=pending,running&x=1")
    ).json()) as {
      items: Json[];
      nextCursor: string | null;
    };
    expect(page1.items).toHaveLength(2);
    expect(page1.nextCursor).toBeTypeOf("string");
    const page2 = (await (
      await h.call(
        `/api/v1/tasks?project=list&limit=2&status=pending&status=running&cursor=${page1.nextCursor}`,
      )
    ).json()) as { items: Json[]; nextCursor: string | null };
    expect(page2.items).toHaveLength(1);
    expect(page2.nextCursor).toBeNull();

    const count = (await (
      await h.call("/api/v1/tasks/count?project=list&type=later")
    ).json()) as Json;
    expect(count).toEqual({ count: 3 });

    const id = page2.items[0]!["id"] as string;
    const notQueued = await h.call(`/api/v1/tasks/${id}/position`);
    expect(notQueued.status).toBe(409);
    expect((await problemOf(notQueued))["code"]).toBe("NOT_QUEUED");
    const idle = (await (await h.call("/api/v1/tasks", { body: { type: "idle" } })).json()) as Json;
    const pos = await h.call(`/api/v1/tasks/${String(idle["id"])}/position`);
    expect(pos.status).toBe(200);
    expect(((await pos.json()) as Json)["position"]).toBe(1);

    const cancelled = await h.call(`/api/v1/tasks/${id}/cancel`, {
      body: { reason: "no longer needed" },
    });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ status: "cancelled" });
    const again = await h.call(`/api/v1/tasks/${id}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
    expect((await problemOf(again))["code"]).toBe("INVALID_TRANSITION");
  });

  it("answers validation errors with 400 problem+json, code VALIDATION", async () => {
    const cases: [string, { body?: unknown; method?: string }][] = [
      ["/api/v1/tasks", { body: { input: 1 } }],
      ["/api/v1/tasks", { body: { type: "echo", priority: 9 } }],
      ["/api/v1/tasks", { body: { type: "echo", typo: true } }],
      ["/api/v1/tasks", { body: "{not json" }],
      ["/api/v1/tasks?limit=0", {}],
      ["/api/v1/tasks?limit=1001", {}],
      ["/api/v1/tasks?limit=abc", {}],
      ["/api/v1/tasks?status=bogus", {}],
      ["/api/v1/tasks?cursor=%27%3B%20DROP%20TABLE", {}],
    ];
    for (const [path, init] of cases) {
      const res = await h.call(path, init);
      expect(res.status, path + JSON.stringify(init)).toBe(400);
      const p = await problemOf(res);
      expect(p).toMatchObject({
        status: 400,
        code: "VALIDATION",
        title: expect.any(String) as string,
      });
      expect(p["type"]).toBeTypeOf("string");
      expect(p["detail"]).toBeTypeOf("string");
      expect(JSON.stringify(p)).not.toMatch(/select|sqlite|drop table/i);
    }
  });

  it("404s unknown tasks and routes as problem+json", async () => {
    const res = await h.call("/api/v1/tasks/nope");
    expect(res.status).toBe(404);
    expect((await problemOf(res))["code"]).toBe("TASK_NOT_FOUND");
    expect((await h.call("/api/v1/nothing")).status).toBe(404);
  });

  it("rejects oversized bodies with 413, by Content-Length and when streamed", async () => {
    const big = { type: "echo", input: "x".repeat(10_000) };
    const res = await h.call("/api/v1/tasks", { body: big });
    expect(res.status).toBe(413);
    expect((await problemOf(res))["code"]).toBe("PAYLOAD_TOO_LARGE");

    const bytes = new TextEncoder().encode(JSON.stringify(big));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    });
    const streamed = await fetch(`${h.url}/api/v1/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    });
    expect(streamed.status).toBe(413);
    expect(await h.engine.count({ type: "echo", project: "default" })).toBe(0);
  });

  it("serves /openapi.json (3.1, task routes) and a self-contained /docs", async () => {
    const doc = (await (await h.call("/openapi.json")).json()) as { openapi: string; paths: Json };
    expect(doc.openapi).toBe("3.1.0");
    for (const p of [
      "/api/v1/tasks",
      "/api/v1/tasks/batch",
      "/api/v1/tasks/{id}",
      "/api/v1/tasks/count",
      "/api/v1/tasks/{id}/cancel",
      "/api/v1/claim",
      "/api/v1/tasks/{id}/complete",
      "/api/v1/events",
    ]) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    const docs = await h.call("/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toMatch(/text\/html/);
    const html = await docs.text();
    expect(html).toContain("/api/v1/tasks");
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script[^>]+src=/i);
  });
});
