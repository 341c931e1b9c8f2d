import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

describe("HTTP external agents", () => {
  let h: Harness;

  // The engine is not started: only the external agent works on these tasks.
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(async () => h.close());

  it("claims, heartbeats, reports progress and completes a task; a stale attempt gets 409", async () => {
    expect((await h.call("/api/v1/claim", { body: { agent: "a1", types: ["scan"] } })).status).toBe(
      204,
    );

    const created = (await (
      await h.call("/api/v1/tasks", { body: { type: "scan", input: { url: "x" } } })
    ).json()) as Json;
    const claimRes = await h.call("/api/v1/claim", { body: { agent: "a1", types: ["scan"] } });
    expect(claimRes.status).toBe(200);
    const claimed = (await claimRes.json()) as Json;
    expect(claimed).toMatchObject({ id: created["id"], status: "claimed" });
    const id = claimed["id"] as string;
    const attemptId = claimed["attemptId"] as string;

    // It already holds max (1) task.
    expect((await h.call("/api/v1/claim", { body: { agent: "a1" } })).status).toBe(204);

    expect((await h.call(`/api/v1/tasks/${id}/heartbeat`, { body: { attemptId } })).status).toBe(
      204,
    );
    expect(
      (
        await h.call(`/api/v1/tasks/${id}/progress`, {
          body: { attemptId, progress: 50, note: "half" },
        })
      ).status,
    ).toBe(204);
    const mid = (await (await h.call(`/api/v1/tasks/${id}`)).json()) as Json;
    expect(mid).toMatchObject({ status: "running", progress: 50, progressNote: "half" });

    const stale = await h.call(`/api/v1/tasks/${id}/complete`, {
      body: { attemptId: "not-mine", result: 1 },
    });
    expect(stale.status).toBe(409);
    expect((await problemOf(stale))["code"]).toBe("STALE_ATTEMPT");

    const done = await h.call(`/api/v1/tasks/${id}/complete`, {
      body: { attemptId, result: { ok: true } },
    });
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ status: "completed", result: { ok: true } });

    const late = await h.call(`/api/v1/tasks/${id}/progress`, {
      body: { attemptId, progress: 90 },
    });
    expect(late.status).toBe(409);
    expect((await problemOf(late))["code"]).toBe("STALE_ATTEMPT");
  });

  it("fails a claimed task without retry, and validates agent bodies", async () => {
    await h.call("/api/v1/tasks", { body: { type: "flaky" } });
    const claimed = (await (
      await h.call("/api/v1/claim", { body: { agent: "a2", types: ["flaky"] } })
    ).json()) as Json;
    const res = await h.call(`/api/v1/tasks/${String(claimed["id"])}/fail`, {
      body: { attemptId: claimed["attemptId"], error: "boom", retry: false },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "failed", error: "boom" });

    const bad = await h.call(`/api/v1/tasks/${String(claimed["id"])}/progress`, {
      body: { attemptId: claimed["attemptId"], progress: 101 },
    });
    expect(bad.status).toBe(400);
    expect((await problemOf(bad))["code"]).toBe("VALIDATION");
    const noAgent = await h.call("/api/v1/claim", { body: {} });
    expect(noAgent.status).toBe(400);
    expect(await problemOf(noAgent)).toMatchObject({ code: "VALIDATION", field: "agent" });
  });
});
