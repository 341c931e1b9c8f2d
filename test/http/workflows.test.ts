import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;
const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";

describe("HTTP workflows", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startServer({
      auth: {
        tokens: [
          { token: ACME, tenant: "acme" },
          { token: GLOBEX, tenant: "globex", project: "g1" },
        ],
      },
    });
    h.engine.workflow("approve", {
      run: async (ctx, input: { amount: number }) => {
        const checked = await ctx.step("check", () => input.amount < 100);
        ctx.state.set("checked", checked);
        const decision = await ctx.waitForSignal<{ ok: boolean }>("decision");
        return { checked, ok: decision.ok };
      },
    });
    await h.engine.start();
  });
  afterAll(async () => h.close());

  const waitFor = async (id: string, token: string, pred: (r: Json) => boolean) => {
    for (let i = 0; i < 200; i++) {
      const r = (await (await h.call(`/api/v1/workflows/${id}`, { token })).json()) as Json;
      if (pred(r)) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`workflow ${id} never matched`);
  };

  it("starts (201, then 200 for the same id), shows waitingFor and state, takes a signal, completes", async () => {
    const res = await h.call("/api/v1/workflows/approve/start", {
      token: ACME,
      body: { input: { amount: 5 }, id: "wf-http-1", project: "p1", tenant: "ignored" },
    });
    expect(res.status).toBe(201);
    const run = (await res.json()) as Json;
    expect(run).toMatchObject({
      id: "wf-http-1",
      name: "approve",
      version: 1,
      tenant: "acme",
      project: "p1",
      input: { amount: 5 },
      parentId: null,
    });
    expect(new Date(run["createdAt"] as string).toISOString()).toBe(run["createdAt"]);
    const again = await h.call("/api/v1/workflows/approve/start", {
      token: ACME,
      body: { input: { amount: 7 }, id: "wf-http-1" },
    });
    expect(again.status).toBe(200);
    expect(((await again.json()) as Json)["input"]).toEqual({ amount: 5 });

    const waiting = await waitFor("wf-http-1", ACME, (r) => r["status"] === "waiting");
    expect(waiting["waitingFor"]).toEqual({ kind: "signal", name: "decision" });
    expect(waiting["state"]).toEqual({ checked: true });

    const sig = await h.call("/api/v1/workflows/wf-http-1/signals/decision", {
      token: ACME,
      body: { data: { ok: true } },
    });
    expect(sig.status).toBe(202);
    expect(await sig.json()).toEqual({ accepted: true });
    const done = await waitFor("wf-http-1", ACME, (r) => r["status"] === "completed");
    expect(done["result"]).toEqual({ checked: true, ok: true });
    expect(typeof done["completedAt"]).toBe("string");

    const hist = (await (
      await h.call("/api/v1/workflows/wf-http-1/history", { token: ACME })
    ).json()) as { items: Json[] };
    expect(hist.items.map((e) => e["kind"])).toEqual([
      "WORKFLOW_STARTED",
      "STEP_COMPLETED",
      "STATE_SET",
      "SIGNAL_RECEIVED",
      "WORKFLOW_COMPLETED",
    ]);
    expect(hist.items[1]).toMatchObject({ seq: 1, name: "check", data: true });

    const late = await h.call("/api/v1/workflows/wf-http-1/signals/decision", {
      token: ACME,
      body: {},
    });
    expect(late.status).toBe(409);
    expect((await problemOf(late))["code"]).toBe("INVALID_TRANSITION");
  });

  it("lists with filters and cursor pages, scoped to the token's tenant", async () => {
    for (const n of [1, 2, 3]) {
      await h.call("/api/v1/workflows/approve/start", {
        token: ACME,
        body: { input: { amount: n }, project: "list" },
      });
    }
    await h.call("/api/v1/workflows/approve/start", {
      token: GLOBEX,
      body: { input: { amount: 1 } },
    });
    const first = (await (
      await h.call("/api/v1/workflows?name=approve&limit=2&project=list", { token: ACME })
    ).json()) as { items: Json[]; nextCursor: string | null };
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toBeTruthy();
    const second = (await (
      await h.call(
        `/api/v1/workflows?name=approve&limit=2&project=list&cursor=${first.nextCursor}`,
        { token: ACME },
      )
    ).json()) as { items: Json[]; nextCursor: string | null };
    expect(second.items).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
    const globex = (await (await h.call("/api/v1/workflows", { token: GLOBEX })).json()) as {
      items: Json[];
    };
    expect(globex.items.map((r) => r["tenant"])).toEqual(["globex"]);
    expect(globex.items[0]!["project"]).toBe("g1");
    const bad = await h.call("/api/v1/workflows?status=nope", { token: ACME });
    expect(bad.status).toBe(400);
    const badLimit = await h.call("/api/v1/workflows?limit=0", { token: ACME });
    expect(badLimit.status).toBe(400);
  });

  it("cancels; another tenant's run is 404 on every route; unknown names are 400", async () => {
    const res = await h.call("/api/v1/workflows/approve/start", {
      token: ACME,
      body: { input: { amount: 1 }, id: "wf-http-2" },
    });
    expect(res.status).toBe(201);
    for (const [path, body] of [
      ["/api/v1/workflows/wf-http-2", undefined],
      ["/api/v1/workflows/wf-http-2/history", undefined],
      ["/api/v1/workflows/wf-http-2/signals/decision", {}],
      ["/api/v1/workflows/wf-http-2/cancel", {}],
    ] as const) {
      const r = await h.call(path, { token: GLOBEX, body });
      expect(r.status).toBe(404);
      expect((await problemOf(r))["code"]).toBe("WORKFLOW_NOT_FOUND");
    }
    const taken = await h.call("/api/v1/workflows/approve/start", {
      token: GLOBEX,
      body: { input: { amount: 1 }, id: "wf-http-2" },
    });
    expect(taken.status).toBe(400);
    const cancelled = await h.call("/api/v1/workflows/wf-http-2/cancel", {
      token: ACME,
      body: { reason: "no longer needed" },
    });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({
      status: "cancelled",
      error: "no longer needed",
    });
    const unknown = await h.call("/api/v1/workflows/nope/start", { token: ACME, body: {} });
    expect(unknown.status).toBe(400);
    expect((await h.call("/api/v1/workflows/missing", { token: ACME })).status).toBe(404);
  });

  it("documents the routes in /openapi.json", async () => {
    const doc = (await (await h.call("/openapi.json")).json()) as { paths: Json };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/v1/workflows/{name}/start",
        "/api/v1/workflows",
        "/api/v1/workflows/{id}",
        "/api/v1/workflows/{id}/history",
        "/api/v1/workflows/{id}/signals/{signal}",
        "/api/v1/workflows/{id}/cancel",
      ]),
    );
  });
});
