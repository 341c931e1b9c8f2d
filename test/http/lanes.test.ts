import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";
const READER = "reader-token-0123456789";

describe("HTTP lanes", () => {
  let h: Harness;

  // The engine is not started: tasks stay queued, so counts and positions hold still.
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
    h.engine.register("gen", () => null, { lane: "llm" });
  });
  afterAll(async () => h.close());

  it("declares a lane with PUT and reads it back; unknown lanes are 404", async () => {
    expect((await h.call("/api/v1/lanes", { token: ACME }).then((r) => r.json())) as Json).toEqual({
      items: [],
    });
    const missing = await h.call("/api/v1/lanes/llm", { token: ACME });
    expect(missing.status).toBe(404);
    expect((await problemOf(missing))["status"]).toBe(404);

    const put = await h.call("/api/v1/lanes/llm", {
      token: ACME,
      method: "PUT",
      body: { concurrency: 2, fairness: "caller", maxQueue: 100 },
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({
      name: "llm",
      concurrency: 2,
      running: 0,
      queued: 0,
      oldestQueuedAt: null,
      throughput1m: 0,
      etaMs: 0,
      perCaller: [],
    });
    const list = (await (await h.call("/api/v1/lanes", { token: GLOBEX })).json()) as {
      items: Json[];
    };
    expect(list.items.map((l) => l["name"])).toEqual(["llm"]);
  });

  it("rejects bad settings with 400 and writes without the write scope with 403", async () => {
    for (const body of [
      { concurrency: 0 },
      { concurrency: 1.5 },
      { concurrency: 2, fairness: "x" },
    ]) {
      const res = await h.call("/api/v1/lanes/bad", { token: ACME, method: "PUT", body });
      expect(res.status).toBe(400);
    }
    const res = await h.call("/api/v1/lanes/llm/concurrency", {
      token: READER,
      body: { concurrency: 5 },
    });
    expect(res.status).toBe(403);
    expect(
      (await h.call("/api/v1/lanes/nope/concurrency", { token: ACME, body: { concurrency: 5 } }))
        .status,
    ).toBe(404);
  });

  it("changes concurrency, counts queued work per caller (own tenant only) and gives positions", async () => {
    const set = await h.call("/api/v1/lanes/llm/concurrency", {
      token: ACME,
      body: { concurrency: 3 },
    });
    expect(((await set.json()) as Json)["concurrency"]).toBe(3);
    const ids: string[] = [];
    for (const token of [ACME, ACME, GLOBEX]) {
      const res = await h.call("/api/v1/tasks", { token, body: { type: "gen", input: null } });
      expect(res.status).toBe(201);
      const task = (await res.json()) as Json;
      expect(task["lane"]).toBe("llm");
      ids.push(task["id"] as string);
    }
    const acme = (await (await h.call("/api/v1/lanes/llm", { token: ACME })).json()) as Json;
    expect(acme).toMatchObject({ queued: 3, running: 0, concurrency: 3 });
    expect(acme["oldestQueuedAt"]).toEqual(expect.any(String));
    expect(acme["perCaller"]).toEqual([{ caller: "acme", running: 0, queued: 2 }]);
    const globex = (await (await h.call("/api/v1/lanes/llm", { token: GLOBEX })).json()) as Json;
    expect(globex["perCaller"]).toEqual([{ caller: "globex", running: 0, queued: 1 }]);

    // Fair share: globex's only task comes before acme's second.
    const pos = async (id: string, token: string) =>
      (await (await h.call(`/api/v1/tasks/${id}/position`, { token })).json()) as Json;
    expect((await pos(ids[0]!, ACME))["position"]).toBe(1);
    expect((await pos(ids[2]!, GLOBEX))["position"]).toBe(2);
    expect((await pos(ids[1]!, ACME))["position"]).toBe(3);
    expect((await h.call(`/api/v1/tasks/${ids[2]}/position`, { token: ACME })).status).toBe(404);
  });

  it("answers 429 when the lane's queue is full", async () => {
    await h.call("/api/v1/lanes/small", {
      token: ACME,
      method: "PUT",
      body: { concurrency: 1, maxQueue: 0 },
    });
    h.engine.register("tiny", () => null, { lane: "small" });
    const res = await h.call("/api/v1/tasks", { token: ACME, body: { type: "tiny", input: null } });
    expect(res.status).toBe(429);
    expect((await problemOf(res))["code"]).toBe("LANE_BUSY");
  });
});
