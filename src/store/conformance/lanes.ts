import { describe, expect, it } from "vitest";
import type { ClaimedTask, Store } from "../store.js";
import {
  T0,
  complete,
  fail,
  insert,
  mustGet,
  newTask,
  release,
  settle,
  type StoreContext,
} from "./fixtures.js";

const lane = (
  name: string,
  concurrency: number,
  more: Partial<{ fairness: "caller" | "none"; maxQueue: number | null }> = {},
) => ({
  name,
  concurrency,
  fairness: more.fairness ?? ("caller" as const),
  preemption: null,
  maxQueue: more.maxQueue ?? null,
});

const laned = (caller: string, fields: Parameters<typeof newTask>[0] = {}) =>
  newTask({ lane: "L", caller, ...fields });

async function claimLane(
  store: Store,
  now: number,
  limit = 100,
  engineName = "engine-a",
): Promise<ClaimedTask[]> {
  const out = await store.exchange({
    now,
    settle: [],
    claim: { engineName, types: [], limit, lanes: [{ lane: "L", types: ["t"] }] },
  });
  return out.claimed;
}

export function laneSuite(ctx: StoreContext): void {
  describe("lanes: settings", () => {
    it("saves, lists and updates lanes; the last writer wins", async () => {
      const saved = await ctx.store.saveLane(lane("L", 2, { maxQueue: 5 }), T0);
      expect(saved).toEqual({ ...lane("L", 2, { maxQueue: 5 }), updatedAt: T0 });
      await ctx.store.saveLane(
        { ...lane("L", 3, { fairness: "none" }), preemption: { enabled: true, minRuntimeMs: 10 } },
        T0 + 1,
      );
      await ctx.store.saveLane(lane("A", 1), T0 + 2);
      const lanes = await ctx.store.listLanes();
      expect(lanes.map((l) => l.name)).toEqual(["A", "L"]);
      expect(lanes[1]).toMatchObject({
        concurrency: 3,
        fairness: "none",
        preemption: { enabled: true, minRuntimeMs: 10 },
        maxQueue: null,
      });
      expect(await ctx.store.setLaneConcurrency("L", 7, T0 + 3)).toBe(true);
      expect(await ctx.store.setLaneConcurrency("nope", 7, T0 + 3)).toBe(false);
      expect((await ctx.store.laneSnapshot("L", T0))!.def.concurrency).toBe(7);
      expect(await ctx.store.laneSnapshot("nope", T0)).toBeNull();
    });
  });

  describe("lanes: claims", () => {
    it("adopts ready lane-less rows of a type into its lane, and only those", async () => {
      await ctx.store.saveLane(lane("L", 2), T0);
      const tasks = [
        newTask({ type: "t", tenant: "acme" }),
        newTask({ type: "u" }),
        newTask({ type: "t", lane: "K", caller: "x" }),
      ];
      await ctx.store.insertTasks(tasks);
      const [loose, other, inLane] = tasks.map((t) => t.id) as [string, string, string];
      expect(await claimLane(ctx.store, T0)).toEqual([]);
      expect(await ctx.store.adoptIntoLane("L", ["t"], T0 + 1)).toBe(1);
      expect(await mustGet(ctx.store, loose)).toMatchObject({ lane: "L", caller: "acme" });
      expect(await mustGet(ctx.store, other)).toMatchObject({ lane: null });
      expect(await mustGet(ctx.store, inLane)).toMatchObject({ lane: "K", caller: "x" });
      expect((await claimLane(ctx.store, T0 + 1)).map((c) => c.id)).toEqual([loose]);
      expect(await ctx.store.adoptIntoLane("L", ["t"], T0 + 2)).toBe(0);
    });

    it("claims nothing for a lane nobody declared", async () => {
      await insert(ctx.store, laned("a"));
      expect(await claimLane(ctx.store, T0)).toEqual([]);
    });

    it("never claims past the lane's concurrency, across claims and engines", async () => {
      await ctx.store.saveLane(lane("L", 3), T0);
      for (let i = 0; i < 6; i++) await insert(ctx.store, laned("a"));
      const first = await claimLane(ctx.store, T0, 2);
      expect(first).toHaveLength(2);
      expect(first.every((c) => c.attempt === 1 && c.attemptId)).toBe(true);
      expect((await mustGet(ctx.store, first[0]!.id)).status).toBe("running");
      expect(await claimLane(ctx.store, T0, 100, "engine-b")).toHaveLength(1);
      expect(await claimLane(ctx.store, T0)).toEqual([]);
      // Completion, final failure, a retry and a release each free their slot.
      await settle(ctx.store, T0 + 1, complete(first[0]!));
      const next = await claimLane(ctx.store, T0 + 1);
      expect(next).toHaveLength(1);
      await settle(ctx.store, T0 + 2, fail(first[1]!, "boom"), release(next[0]!));
      expect(await claimLane(ctx.store, T0 + 2)).toHaveLength(2);
      const snap = (await ctx.store.laneSnapshot("L", T0 + 2))!;
      expect(snap).toMatchObject({ running: 3, queued: 1, completed1m: 1 });
    });

    it("plain types in the same exchange share the limit, laned ones first", async () => {
      await ctx.store.saveLane(lane("L", 1), T0);
      await insert(
        ctx.store,
        laned("a"),
        laned("a"),
        newTask({ type: "p" }),
        newTask({ type: "p" }),
      );
      const out = await ctx.store.exchange({
        now: T0,
        settle: [],
        claim: { engineName: "e", types: ["p"], limit: 2, lanes: [{ lane: "L", types: ["t"] }] },
      });
      expect(out.claimed.map((c) => c.type)).toEqual(["t", "p"]);
    });

    it("gives slots to the callers with the least running work, priority first inside a caller", async () => {
      await ctx.store.saveLane(lane("L", 4), T0);
      const a = [laned("a"), laned("a"), laned("a", { priority: 3 }), laned("a")];
      const b = [laned("b"), laned("b")];
      const c = [laned("c")];
      await insert(ctx.store, ...a, ...b, ...c);
      const got = await claimLane(ctx.store, T0);
      expect(got).toHaveLength(4);
      const byCaller = (id: string) => [...a, ...b, ...c].find((t) => t.id === id)!.caller;
      // a, b and c once each (a's urgent task first), then the least recently served of them.
      expect(got.slice(0, 3).map((g) => byCaller(g.id))).toEqual(["a", "b", "c"]);
      expect(got[0]!.id).toBe(a[2]!.id);
      expect(byCaller(got[3]!.id)).toBe("a");
      await settle(ctx.store, T0 + 1, complete(got[1]!), complete(got[2]!));
      // b (1 queued) and a (2 queued): b has 0 running, a has 2 → b first, then a or b by recency.
      const next = await claimLane(ctx.store, T0 + 1);
      expect(next.map((g) => byCaller(g.id))).toEqual(["b", "a"]);
    });

    it("with fairness none, claims in plain priority order", async () => {
      await ctx.store.saveLane(lane("L", 2, { fairness: "none" }), T0);
      const t1 = laned("a", { runAt: T0 - 3 });
      const t2 = laned("a", { runAt: T0 - 2 });
      const t3 = laned("b", { runAt: T0 - 1 });
      await insert(ctx.store, t1, t2, t3);
      expect((await claimLane(ctx.store, T0)).map((c) => c.id)).toEqual([t1.id, t2.id]);
    });

    it("frees slots on cancel and on crash rescue", async () => {
      await ctx.store.saveLane(lane("L", 2), T0);
      await insert(ctx.store, laned("a"), laned("b"), laned("c", { leaseMs: 10 }), laned("d"));
      const got = await claimLane(ctx.store, T0);
      expect(got).toHaveLength(2);
      await ctx.store.cancel({ ids: [got[0]!.id] }, "stop", T0 + 1);
      expect(await claimLane(ctx.store, T0 + 1)).toHaveLength(1);
      const rescued = await ctx.store.rescueExpired(T0 + 1_000_000, 10);
      expect(rescued.length).toBe(2);
      expect(await claimLane(ctx.store, T0 + 1_000_000)).toHaveLength(1);
      expect((await ctx.store.laneSnapshot("L", T0 + 1_000_000))!.running).toBe(1);
    });

    it("agent claims take a laned task only while its lane has a free slot", async () => {
      await ctx.store.saveLane(lane("L", 1), T0);
      await insert(ctx.store, laned("a"), laned("a"));
      const req = { agent: "x", max: 5, now: T0 };
      expect(await ctx.store.claimForAgent(req)).not.toBeNull();
      expect(await ctx.store.claimForAgent(req)).toBeNull();
      expect(await claimLane(ctx.store, T0)).toEqual([]);
    });
  });

  describe("lanes: preemption", () => {
    const claimP = async (now: number, preemptible: string[]) =>
      (
        await ctx.store.exchange({
          now,
          settle: [],
          claim: {
            engineName: "engine-a",
            types: [],
            limit: 10,
            lanes: [{ lane: "L", types: ["t"], preemptible }],
          },
        })
      ).claimed;

    it("marks the oldest preemptible running task past minRuntimeMs when higher-priority work waits", async () => {
      await ctx.store.saveLane(
        { ...lane("L", 1), preemption: { enabled: true, minRuntimeMs: 100 } },
        T0,
      );
      await insert(ctx.store, laned("a", { priority: 0 }));
      const [low] = await claimP(T0, ["t"]);
      expect(low).toBeDefined();
      const urgent = laned("b", { priority: 3 });
      await insert(ctx.store, urgent);
      // Too young to preempt.
      expect(await claimP(T0 + 50, ["t"])).toEqual([]);
      expect(await ctx.store.preemptionsOf("engine-a")).toEqual([]);
      expect(await claimP(T0 + 200, ["t"])).toEqual([]);
      expect(await ctx.store.preemptionsOf("engine-a")).toEqual([
        { id: low!.id, attemptId: low!.attemptId },
      ]);
      expect(await ctx.store.preemptionsOf("engine-b")).toEqual([]);
      // The victim's engine releases it: the urgent task takes the slot, the victim waits again.
      await settle(ctx.store, T0 + 210, release(low!));
      const next = await claimP(T0 + 220, ["t"]);
      expect(next.map((c) => c.id)).toEqual([urgent.id]);
      expect((await mustGet(ctx.store, low!.id)).status).toBe("pending");
      expect(await ctx.store.preemptionsOf("engine-a")).toEqual([]);
    });

    it("never preempts a task whose engine did not declare its type preemptible, or with preemption off", async () => {
      await ctx.store.saveLane(
        { ...lane("L", 1), preemption: { enabled: true, minRuntimeMs: 0 } },
        T0,
      );
      await insert(ctx.store, laned("a", { priority: 0 }));
      await claimP(T0, []);
      await insert(ctx.store, laned("b", { priority: 3 }));
      await claimP(T0 + 1000, ["t"]);
      expect(await ctx.store.preemptionsOf("engine-a")).toEqual([]);
    });
  });

  describe("lanes: reads", () => {
    it("snapshots per-caller counts and ranks queued tasks", async () => {
      await ctx.store.saveLane(lane("L", 1), T0);
      const tasks = [laned("a"), laned("a"), laned("b"), laned("b", { priority: 2 })];
      await insert(ctx.store, ...tasks, laned("c", { runAt: T0 + 10_000 }));
      // a and b tie (nothing running, never served): the name decides, not b's priority.
      const [running] = await claimLane(ctx.store, T0);
      expect(running!.id).toBe(tasks[0]!.id);
      const snap = (await ctx.store.laneSnapshot("L", T0))!;
      expect(snap).toMatchObject({ running: 1, queued: 3, oldestQueuedAt: T0 });
      expect(snap.oldestRunningStartedAt).toBe(T0);
      expect(
        snap.perCaller.map(({ caller, running, queued }) => ({ caller, running, queued })),
      ).toEqual([
        { caller: "a", running: 1, queued: 1 },
        { caller: "b", running: 0, queued: 2 },
      ]);
      expect(snap.perCaller.find((c) => c.caller === "a")!.servedSeq).toBeGreaterThan(0);
      expect(await ctx.store.laneRank({ id: tasks[1]!.id }, T0)).toEqual({
        lane: "L",
        caller: "a",
        aheadInCaller: 0,
        aheadInLane: 1,
      });
      expect(await ctx.store.laneRank({ id: tasks[2]!.id }, T0)).toEqual({
        lane: "L",
        caller: "b",
        aheadInCaller: 1,
        aheadInLane: 2,
      });
      expect(await ctx.store.laneRank({ id: running!.id }, T0)).toBeNull();
      expect(await ctx.store.laneRank({ id: "missing" }, T0)).toBeNull();
      expect(await ctx.store.laneRank({ lane: "L", caller: "b", priority: 1 }, T0)).toEqual({
        lane: "L",
        caller: "b",
        aheadInCaller: 2,
        aheadInLane: 3,
      });
      await settle(ctx.store, T0 + 40, complete(running!));
      const after = (await ctx.store.laneSnapshot("L", T0 + 50))!;
      expect(after).toMatchObject({ completed1m: 1, meanRunMs: 40, running: 0 });
      expect((await ctx.store.laneSnapshot("L", T0 + 70_000))!.completed1m).toBe(0);
    });
  });
}
