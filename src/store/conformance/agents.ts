import { describe, expect, it } from "vitest";
import type { Task } from "../../core/types.js";
import type { AgentClaimRequest } from "../store.js";
import {
  T0,
  claimOne,
  complete,
  insert,
  mustGet,
  newTask,
  settle,
  sorted,
  type StoreContext,
} from "./fixtures.js";

export function agentSuite(ctx: StoreContext): void {
  const agentClaim = async (req: Partial<AgentClaimRequest> = {}): Promise<Task | null> =>
    ctx.store.claimForAgent({ agent: "bot", max: 1, now: T0, ...req });

  const mustClaim = async (req: Partial<AgentClaimRequest> = {}): Promise<Task> => {
    const task = await agentClaim(req);
    expect(task).not.toBeNull();
    return task!;
  };

  describe("claimForAgent", () => {
    it("returns null when nothing is ready", async () => {
      expect(await agentClaim()).toBeNull();
      await insert(ctx.store, newTask({ runAt: T0 + 1 }));
      expect(await agentClaim()).toBeNull();
    });

    it("claims into `claimed` with attempt + 1, an attempt id, the agent as holder and a lease", async () => {
      const t = newTask({ leaseMs: 4_000, input: JSON.stringify({ q: 1 }) });
      await insert(ctx.store, t);
      const got = await mustClaim({ agent: "bot-1", now: T0 + 10 });
      expect(got).toMatchObject({
        id: t.id,
        type: "t",
        status: "claimed",
        attempt: 1,
        engineName: "bot-1",
        input: { q: 1 },
      });
      expect(typeof got.attemptId).toBe("string");
      expect(got.leaseExpiresAt?.getTime()).toBe(T0 + 10 + 4_000);
      expect(got.startedAt?.getTime()).toBe(T0 + 10);
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        status: "claimed",
        attemptId: got.attemptId,
        engineName: "bot-1",
      });
    });

    it("takes the best ready task across types: priority first, then age", async () => {
      const old = newTask({ type: "a", priority: 1, runAt: T0 - 100, createdAt: T0 - 100 });
      const urgent = newTask({ type: "b", priority: 3, runAt: T0 - 10, createdAt: T0 - 10 });
      const mid = newTask({ type: "c", priority: 1, runAt: T0 - 50, createdAt: T0 - 50 });
      const low = newTask({ type: "a", priority: 0, runAt: T0 - 1000, createdAt: T0 - 1000 });
      await insert(ctx.store, mid, urgent, low, old);
      const order: string[] = [];
      for (let i = 0; i < 4; i++) order.push((await mustClaim({ agent: `bot-${i}` })).id);
      expect(order).toEqual([urgent.id, old.id, mid.id, low.id]);
      expect(await agentClaim({ agent: "bot-9" })).toBeNull();
    });

    it("never claims delayed or blocked tasks", async () => {
      const a = newTask();
      await insert(ctx.store, a);
      await insert(ctx.store, newTask({ runAt: T0 + 1_000 }), newTask({ dependsOn: [a.id] }));
      expect((await mustClaim({ agent: "x" })).id).toBe(a.id);
      expect(await agentClaim({ agent: "y" })).toBeNull();
    });

    it("gives an agent that already holds `max` claimed or running tasks null", async () => {
      for (let i = 0; i < 5; i++) await insert(ctx.store, newTask());
      const first = await mustClaim({ max: 1 });
      expect(await agentClaim({ max: 1 })).toBeNull();
      // Running (after a touch) still counts.
      expect(
        (await ctx.store.touch({ id: first.id, attemptId: first.attemptId!, now: T0 + 1 })).ok,
      ).toBe(true);
      expect(await agentClaim({ max: 1 })).toBeNull();
      const second = await mustClaim({ max: 2 });
      expect(second.id).not.toBe(first.id);
      expect(await agentClaim({ max: 2 })).toBeNull();
      // Another agent has its own allowance.
      expect(await agentClaim({ agent: "other", max: 1 })).not.toBeNull();
      // Finishing one frees a place.
      await settle(ctx.store, T0 + 2, complete({ id: first.id, attemptId: first.attemptId! }));
      expect(await agentClaim({ max: 2 })).not.toBeNull();
      expect(await agentClaim({ max: 2 })).toBeNull();
    });

    it("gives null for max 0", async () => {
      await insert(ctx.store, newTask());
      expect(await agentClaim({ max: 0 })).toBeNull();
    });

    it("filters by tenant, project, types and lanes", async () => {
      const t1 = newTask({ tenant: "t1", project: "p1", type: "a", lane: "l1", priority: 0 });
      const t2 = newTask({ tenant: "t2", project: "p1", type: "a", lane: "l1", priority: 1 });
      const t3 = newTask({ tenant: "t1", project: "p2", type: "b", lane: "l2", priority: 2 });
      const t4 = newTask({ tenant: "t1", project: "p1", type: "c", lane: null, priority: 3 });
      await insert(ctx.store, t1, t2, t3, t4);
      // Laned tasks are claimable only through declared lanes with a free slot.
      for (const name of ["l1", "l2"])
        await ctx.store.saveLane(
          { name, concurrency: 5, fairness: "caller", preemption: null, maxQueue: null },
          T0,
        );
      expect((await mustClaim({ agent: "a1", tenant: "t2" })).id).toBe(t2.id);
      expect((await mustClaim({ agent: "a2", tenant: "t1", project: "p2" })).id).toBe(t3.id);
      expect(await agentClaim({ agent: "a3", types: ["b"] })).toBeNull();
      expect((await mustClaim({ agent: "a4", tenant: "t1", lanes: ["l1", "l9"] })).id).toBe(t1.id);
      expect(await agentClaim({ agent: "a5", lanes: ["l1", "l2"] })).toBeNull();
      expect((await mustClaim({ agent: "a6", types: ["c", "zzz"] })).id).toBe(t4.id);
      expect(await ctx.store.countTasks({ status: "claimed" })).toBe(4);
    });

    it("can be settled through exchange with its attempt id", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const got = await mustClaim();
      const [out] = await settle(
        ctx.store,
        T0 + 5,
        complete({ id: got.id, attemptId: got.attemptId! }, "r"),
      );
      expect(out).toMatchObject({ ok: true, status: "completed" });
      expect((await mustGet(ctx.store, t.id)).result).toBe("r");
    });
  });

  describe("touch", () => {
    it("moves a claimed attempt to running, renews its lease and names the task", async () => {
      const t = newTask({
        leaseMs: 2_000,
        tenant: "acme",
        project: "p",
        requestId: "r",
        workflowId: "w",
      });
      await insert(ctx.store, t);
      const got = await mustClaim();
      const out = await ctx.store.touch({ id: t.id, attemptId: got.attemptId!, now: T0 + 500 });
      expect(out).toEqual({
        ok: true,
        status: "running",
        movedToRunning: true,
        task: {
          id: t.id,
          type: "t",
          tenant: "acme",
          project: "p",
          requestId: "r",
          workflowId: "w",
          attempt: 1,
        },
      });
      const row = await mustGet(ctx.store, t.id);
      expect(row.status).toBe("running");
      expect(row.leaseExpiresAt?.getTime()).toBe(T0 + 500 + 2_000);

      const again = await ctx.store.touch({ id: t.id, attemptId: got.attemptId!, now: T0 + 900 });
      expect(again).toMatchObject({ ok: true, status: "running", movedToRunning: false });
      expect((await mustGet(ctx.store, t.id)).leaseExpiresAt?.getTime()).toBe(T0 + 900 + 2_000);
    });

    it("records progress and a note", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const out = await ctx.store.touch({
        id: t.id,
        attemptId: c.attemptId,
        now: T0 + 1,
        progress: 40,
        note: "half-way",
      });
      expect(out).toMatchObject({ ok: true, movedToRunning: false });
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        progress: 40,
        progressNote: "half-way",
      });
      await ctx.store.touch({
        id: t.id,
        attemptId: c.attemptId,
        now: T0 + 2,
        progress: 75.5,
        note: "most",
      });
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        progress: 75.5,
        progressNote: "most",
      });
      // A plain lease renewal keeps the last progress.
      await ctx.store.touch({ id: t.id, attemptId: c.attemptId, now: T0 + 3 });
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        progress: 75.5,
        progressNote: "most",
      });
      // A note alone keeps the last percentage.
      await ctx.store.touch({ id: t.id, attemptId: c.attemptId, now: T0 + 4, note: "still going" });
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        progress: 75.5,
        progressNote: "still going",
      });
    });

    it("starts every attempt without the progress of the previous one", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      await ctx.store.touch({
        id: t.id,
        attemptId: c.attemptId,
        now: T0 + 1,
        progress: 90,
        note: "nearly",
      });
      await settle(ctx.store, T0 + 2, {
        kind: "fail",
        id: t.id,
        attemptId: c.attemptId,
        error: "e",
        retryAt: T0 + 3,
      });
      await claimOne(ctx.store, T0 + 3);
      expect(await mustGet(ctx.store, t.id)).toMatchObject({ progress: null, progressNote: null });
    });

    it("is fenced: a wrong attempt id gets ok: false with the current status and writes nothing", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const out = await ctx.store.touch({
        id: t.id,
        attemptId: "not-it",
        now: T0 + 10_000,
        progress: 10,
        note: "x",
      });
      expect(out).toEqual({ ok: false, status: "running" });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({ progress: null, progressNote: null, attemptId: c.attemptId });
      expect(row.leaseExpiresAt?.getTime()).toBe(T0 + 30_000);
    });

    it("is stale once the attempt ended, and for an unknown task", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      await settle(ctx.store, T0 + 1, complete(c));
      expect(await ctx.store.touch({ id: t.id, attemptId: c.attemptId, now: T0 + 2 })).toEqual({
        ok: false,
        status: "completed",
      });
      expect(await ctx.store.touch({ id: "no-such-task", attemptId: "a", now: T0 })).toEqual({
        ok: false,
        status: null,
      });
    });
  });

  describe("heartbeatMany", () => {
    it("renews the leases of owned attempts and returns the ids it lost", async () => {
      const a = newTask({ leaseMs: 1_000 });
      const b = newTask({ leaseMs: 2_000 });
      const c = newTask();
      const d = newTask();
      await insert(ctx.store, a, b, c, d);
      const claimed = new Map(
        (
          await ctx.store.exchange({
            now: T0,
            settle: [],
            claim: { engineName: "e", types: ["t"], limit: 4 },
          })
        ).claimed.map((x) => [x.id, x]),
      );
      const [ca, cb, cc] = [a, b, c].map((t) => claimed.get(t.id)!);
      await settle(ctx.store, T0 + 1, complete(cc!));

      const lost = await ctx.store.heartbeatMany(
        [
          { id: a.id, attemptId: ca!.attemptId },
          { id: b.id, attemptId: cb!.attemptId },
          { id: c.id, attemptId: cc!.attemptId },
          { id: d.id, attemptId: "wrong" },
          { id: "no-such-task", attemptId: "x" },
        ],
        T0 + 800,
      );
      expect(sorted(lost)).toEqual(sorted([c.id, d.id, "no-such-task"]));
      expect((await mustGet(ctx.store, a.id)).leaseExpiresAt?.getTime()).toBe(T0 + 800 + 1_000);
      expect((await mustGet(ctx.store, b.id)).leaseExpiresAt?.getTime()).toBe(T0 + 800 + 2_000);
      expect((await mustGet(ctx.store, d.id)).leaseExpiresAt?.getTime()).toBe(T0 + 30_000);
      expect((await mustGet(ctx.store, c.id)).status).toBe("completed");
    });

    it("returns nothing for no items", async () => {
      expect(await ctx.store.heartbeatMany([], T0)).toEqual([]);
    });

    it("keeps a renewed lease from being rescued", async () => {
      const t = newTask({ leaseMs: 1_000 });
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      expect(
        await ctx.store.heartbeatMany([{ id: t.id, attemptId: c.attemptId }], T0 + 900),
      ).toEqual([]);
      expect(await ctx.store.rescueExpired(T0 + 1_500, 10)).toEqual([]);
      expect((await mustGet(ctx.store, t.id)).status).toBe("running");
    });
  });
}
