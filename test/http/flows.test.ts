import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;
const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";

describe("HTTP flows and schedules", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startServer({
      auth: {
        tokens: [
          { token: ACME, tenant: "acme" },
          { token: GLOBEX, tenant: "globex" },
        ],
      },
    });
    h.engine.register("job", (task: { input: unknown }) => ({ echo: task.input }));
    await h.engine.start();
  });
  afterAll(async () => h.close());

  it("POST /flows submits a DAG scoped to the token's tenant, then it completes", async () => {
    const res = await h.call("/api/v1/flows", {
      token: ACME,
      body: {
        name: "etl",
        tenant: "globex", // the token's tenant wins
        tasks: [
          { key: "a", type: "job", input: 1 },
          { key: "b", type: "job", input: 2, dependsOn: ["a"], priority: 2 },
        ],
      },
    });
    expect(res.status).toBe(201);
    const flow = (await res.json()) as Json & { id: string; tasks: Json[] };
    expect(flow).toMatchObject({
      name: "etl",
      tenant: "acme",
      status: "running",
      completedAt: null,
    });
    expect(flow.tasks.map((t) => [t["key"], t["dependsOn"]])).toEqual([
      ["a", []],
      ["b", ["a"]],
    ]);
    expect(typeof flow["createdAt"]).toBe("string");

    await h.engine.wait(flow.tasks[1]!["taskId"] as string, { timeoutMs: 10_000 });
    const read = (await (await h.call(`/api/v1/flows/${flow.id}`, { token: ACME })).json()) as Json;
    expect(read["status"]).toBe("completed");
    expect(typeof read["completedAt"]).toBe("string");

    // Another tenant sees nothing of it.
    expect((await h.call(`/api/v1/flows/${flow.id}`, { token: GLOBEX })).status).toBe(404);
    const theirs = (await (await h.call("/api/v1/flows", { token: GLOBEX })).json()) as Json;
    expect(theirs["items"]).toEqual([]);
    const mine = (await (
      await h.call("/api/v1/flows?status=completed&limit=10", { token: ACME })
    ).json()) as { items: Json[]; nextCursor: string | null };
    expect(mine.items.map((f) => f["id"])).toEqual([flow.id]);
    expect(mine.nextCursor).toBeNull();
  });

  it("rejects a bad DAG with 400 naming the key, and unknown flows with 404", async () => {
    const cycle = await h.call("/api/v1/flows", {
      token: ACME,
      body: {
        name: "bad",
        tasks: [
          { key: "a", type: "job", dependsOn: ["b"] },
          { key: "b", type: "job", dependsOn: ["a"] },
        ],
      },
    });
    expect(cycle.status).toBe(400);
    expect(cycle.headers.get("content-type")).toContain("application/problem+json");
    const problem = (await cycle.json()) as Json;
    expect(problem["code"]).toBe("VALIDATION");
    expect(problem["detail"]).toMatch(/cycle: a → b → a/);
    const missing = await h.call("/api/v1/flows/nope", { token: ACME });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Json)["code"]).toBe("FLOW_NOT_FOUND");
    expect((await h.call("/api/v1/flows?status=weird", { token: ACME })).status).toBe(400);
  });

  it("POST /flows/{id}/cancel cancels its open tasks; a second cancel is 409", async () => {
    const res = await h.call("/api/v1/flows", {
      token: ACME,
      body: {
        name: "later",
        tasks: [{ key: "a", type: "job", runAt: new Date(Date.now() + 3600_000).toISOString() }],
      },
    });
    const flow = (await res.json()) as Json & { id: string };
    expect(
      (await h.call(`/api/v1/flows/${flow.id}/cancel`, { token: GLOBEX, method: "POST" })).status,
    ).toBe(404);
    const cancelled = await h.call(`/api/v1/flows/${flow.id}/cancel`, {
      token: ACME,
      method: "POST",
    });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as Json)["status"]).toBe("cancelled");
    expect(
      (await h.call(`/api/v1/flows/${flow.id}/cancel`, { token: ACME, method: "POST" })).status,
    ).toBe(409);
  });

  it("declares, reads, lists and removes schedules per tenant", async () => {
    const put = await h.call("/api/v1/schedules/hourly", {
      token: ACME,
      method: "PUT",
      body: { cron: "0 * * * *", timezone: "Europe/Paris", type: "job", input: { x: 1 } },
    });
    expect(put.status).toBe(200);
    const s = (await put.json()) as Json;
    expect(s).toMatchObject({
      name: "hourly",
      cron: "0 * * * *",
      timezone: "Europe/Paris",
      type: "job",
      workflow: null,
      input: { x: 1 },
      catchUp: "last",
      tenant: "acme",
      lastRunAt: null,
      lastTaskId: null,
    });
    expect(typeof s["nextRunAt"]).toBe("string");
    const got = (await (await h.call("/api/v1/schedules/hourly", { token: ACME })).json()) as Json;
    expect(got["name"]).toBe("hourly");
    const list = (await (await h.call("/api/v1/schedules", { token: ACME })).json()) as {
      items: Json[];
    };
    expect(list.items.map((x) => x["name"])).toEqual(["hourly"]);

    // Another tenant neither sees nor replaces nor removes it.
    expect((await h.call("/api/v1/schedules/hourly", { token: GLOBEX })).status).toBe(404);
    expect(
      ((await (await h.call("/api/v1/schedules", { token: GLOBEX })).json()) as { items: Json[] })
        .items,
    ).toEqual([]);
    const steal = await h.call("/api/v1/schedules/hourly", {
      token: GLOBEX,
      method: "PUT",
      body: { cron: "* * * * *", type: "job" },
    });
    expect(steal.status).toBe(404);
    expect(
      (await h.call("/api/v1/schedules/hourly", { token: GLOBEX, method: "DELETE" })).status,
    ).toBe(404);

    const bad = await h.call("/api/v1/schedules/broken", {
      token: ACME,
      method: "PUT",
      body: { cron: "every day", type: "job" },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json)["detail"]).toMatch(/cron/);

    expect(
      (await h.call("/api/v1/schedules/hourly", { token: ACME, method: "DELETE" })).status,
    ).toBe(204);
    const gone = await h.call("/api/v1/schedules/hourly", { token: ACME });
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as Json)["code"]).toBe("SCHEDULE_NOT_FOUND");
  });

  it("documents the routes in /openapi.json", async () => {
    const doc = (await (await h.call("/openapi.json")).json()) as {
      paths: Record<string, unknown>;
    };
    for (const path of [
      "/api/v1/flows",
      "/api/v1/flows/{id}",
      "/api/v1/flows/{id}/cancel",
      "/api/v1/schedules",
      "/api/v1/schedules/{name}",
    ]) {
      expect(doc.paths[path]).toBeDefined();
    }
  });
});
