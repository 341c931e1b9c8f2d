import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SseReader, problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";
const READER = "acme-reader-0123456789";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("HTTP auth and tenant isolation", () => {
  let h: Harness;
  let globexTask: Json;

  beforeAll(async () => {
    h = await startServer({
      auth: {
        tokens: [
          { token: ACME, tenant: "acme" },
          { tokenHash: sha(GLOBEX), tenant: "globex", project: "p1" },
          { token: READER, tenant: "acme", scopes: ["read"] },
        ],
      },
    });
    const res = await h.call("/api/v1/tasks", { token: GLOBEX, body: { type: "job", input: 1 } });
    globexTask = (await res.json()) as Json;
  });
  afterAll(async () => h.close());

  it("401s a missing or unknown token, and never echoes it", async () => {
    const none = await h.call("/api/v1/tasks");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await problemOf(none))["code"]).toBe("UNAUTHORIZED");
    const bad = await h.call("/api/v1/tasks", { token: "wrong-token-secret-xyz" });
    expect(bad.status).toBe(401);
    expect(await bad.text()).not.toContain("wrong-token-secret-xyz");
    expect((await fetch(`${h.url}/api/v1/events`)).status).toBe(401);
  });

  it("lets /openapi.json and /docs through without a token", async () => {
    expect((await h.call("/openapi.json")).status).toBe(200);
    expect((await h.call("/docs")).status).toBe(200);
  });

  it("binds the tenant (and project) of the token over the body", async () => {
    expect(globexTask).toMatchObject({ tenant: "globex", project: "p1" });
    const res = await h.call("/api/v1/tasks", {
      token: ACME,
      body: { type: "job", tenant: "globex", project: "mine" },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ tenant: "acme", project: "mine" });
    const list = (await (await h.call("/api/v1/tasks?tenant=globex", { token: ACME })).json()) as {
      items: Json[];
    };
    expect(list.items.length).toBeGreaterThan(0);
    expect(list.items.every((t) => t["tenant"] === "acme")).toBe(true);
    const count = (await (
      await h.call("/api/v1/tasks/count?tenant=globex", { token: ACME })
    ).json()) as Json;
    expect(count["count"]).toBe(list.items.length);
  });

  it("404s another tenant's task on every task route", async () => {
    const id = globexTask["id"] as string;
    const routes: [string, unknown][] = [
      [`/api/v1/tasks/${id}`, undefined],
      [`/api/v1/tasks/${id}/position`, undefined],
      [`/api/v1/tasks/${id}/cancel`, {}],
      [`/api/v1/tasks/${id}/heartbeat`, { attemptId: "a" }],
      [`/api/v1/tasks/${id}/progress`, { attemptId: "a", progress: 1 }],
      [`/api/v1/tasks/${id}/complete`, { attemptId: "a", result: 1 }],
      [`/api/v1/tasks/${id}/fail`, { attemptId: "a", error: "x" }],
      ["/api/v1/tasks", { type: "job", dependsOn: [id] }],
    ];
    for (const [path, body] of routes) {
      const res = await h.call(path, { token: ACME, body });
      expect(res.status, path).toBe(404);
      expect((await problemOf(res))["code"]).toBe("TASK_NOT_FOUND");
    }
    // An agent of another tenant claims only its own tenant's work (acme has one "job").
    const claim = await h.call("/api/v1/claim", {
      token: ACME,
      body: { agent: "x", types: ["job"] },
    });
    expect(claim.status).toBe(200);
    expect(((await claim.json()) as Json)["tenant"]).toBe("acme");
    const more = await h.call("/api/v1/claim", {
      token: ACME,
      body: { agent: "y", types: ["job"] },
    });
    expect(more.status).toBe(204);
    expect(
      ((await (await h.call(`/api/v1/tasks/${id}`, { token: GLOBEX })).json()) as Json)["status"],
    ).toBe("pending");
    expect((await h.call(`/api/v1/tasks/${id}`, { token: GLOBEX })).status).toBe(200);
  });

  it("enforces scopes with 403", async () => {
    expect((await h.call("/api/v1/tasks", { token: READER })).status).toBe(200);
    const res = await h.call("/api/v1/tasks", { token: READER, body: { type: "job" } });
    expect(res.status).toBe(403);
    expect((await problemOf(res))["code"]).toBe("FORBIDDEN");
  });

  it("shows a token only its own tenant's events", async () => {
    const sse = await SseReader.open(`${h.url}/api/v1/events?tenant=globex`, {
      authorization: `Bearer ${ACME}`,
    });
    try {
      await h.call("/api/v1/tasks", { token: GLOBEX, body: { type: "evt" } });
      await h.call("/api/v1/tasks", { token: ACME, body: { type: "evt" } });
      const msg = await sse.next((m) => m.event === "task.created");
      expect((JSON.parse(msg.data) as Json)["tenant"]).toBe("acme");
      expect(sse.messages.every((m) => (JSON.parse(m.data) as Json)["tenant"] === "acme")).toBe(
        true,
      );
    } finally {
      sse.close();
    }
  });
});
