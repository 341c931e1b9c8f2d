import { describe, expect, it } from "vitest";
import type { ClaimedTask, ExchangeResult, Store } from "../store.js";
import {
  T0,
  complete,
  insert,
  mustGet,
  newTask,
  parse,
  release,
  settle,
  sorted,
  type StoreContext,
} from "./fixtures.js";

/** One exchange that claims (no settlements) with a prefetch allowance. */
async function claimWithPrefetch(
  store: Store,
  now: number,
  opts: { limit: number; prefetch?: number; types?: string[]; engineName?: string },
): Promise<{ claimed: ClaimedTask[]; prefetched: ClaimedTask[] }> {
  const out: ExchangeResult = await store.exchange({
    now,
    settle: [],
    claim: {
      engineName: opts.engineName ?? "engine-a",
      types: opts.types ?? ["t"],
      limit: opts.limit,
      ...(opts.prefetch === undefined ? {} : { prefetch: opts.prefetch }),
    },
  });
  expect(out.settled).toEqual([]);
  return { claimed: out.claimed, prefetched: out.prefetched ?? [] };
}

const ids = (cs: readonly ClaimedTask[]): string[] => cs.map((c) => c.id);

/** DESIGN §3 "Prefetch": retry-policy tasks claimed ahead into `claimed` for a local buffer. */
export function prefetchSuite(ctx: StoreContext): void {
  describe("exchange: prefetch", () => {
    it("prefetches into claimed: attempt + 1, a new attempt id, engine name, lease = now + leaseMs", async () => {
      const run = newTask({ crashPolicy: "retry", priority: 3 });
      const t = newTask({
        crashPolicy: "retry",
        priority: 2,
        input: JSON.stringify({ a: 1 }),
        caller: "alice",
        labels: { k: "v" },
        maxRetries: 4,
        leaseMs: 7_000,
        timeoutMs: 3_000,
        tenant: "acme",
        project: "p",
        requestId: "r-1",
        workflowId: "w-1",
        runAt: T0 - 50,
      });
      await insert(ctx.store, run, t);
      const now = T0 + 100;
      const { claimed, prefetched } = await claimWithPrefetch(ctx.store, now, {
        limit: 1,
        prefetch: 5,
        engineName: "engine-x",
      });
      expect(ids(claimed)).toEqual([run.id]);
      expect(ids(prefetched)).toEqual([t.id]);
      const p = prefetched[0]!;
      expect(p).toMatchObject({
        id: t.id,
        type: "t",
        tenant: "acme",
        project: "p",
        requestId: "r-1",
        workflowId: "w-1",
        attempt: 1,
        caller: "alice",
        priority: 2,
        timeoutMs: 3_000,
        maxRetries: 4,
        crashCount: 0,
        leaseMs: 7_000,
        runAt: T0 - 50,
      });
      expect(parse(p.input)).toEqual({ a: 1 });
      expect(parse(p.labels)).toEqual({ k: "v" });
      expect(typeof p.attemptId).toBe("string");
      expect(p.attemptId.length).toBeGreaterThan(0);

      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "claimed",
        attempt: 1,
        attemptId: p.attemptId,
        engineName: "engine-x",
        progress: null,
      });
      expect(row.leaseExpiresAt?.getTime()).toBe(now + 7_000);
      expect(row.updatedAt.getTime()).toBe(now);
      expect((await mustGet(ctx.store, run.id)).status).toBe("running");
    });

    it("without prefetch, or with prefetch 0, prefetches nothing", async () => {
      for (let i = 0; i < 4; i++) await insert(ctx.store, newTask({ crashPolicy: "retry" }));
      const absent = await claimWithPrefetch(ctx.store, T0, { limit: 1 });
      expect(absent.claimed).toHaveLength(1);
      expect(absent.prefetched).toEqual([]);
      const zero = await claimWithPrefetch(ctx.store, T0, { limit: 1, prefetch: 0 });
      expect(zero.claimed).toHaveLength(1);
      expect(zero.prefetched).toEqual([]);
      expect(await ctx.store.countTasks({ status: "claimed" })).toBe(0);
      expect(await ctx.store.countTasks({ status: "pending" })).toBe(2);
    });

    it("prefetches with no free slot (limit 0)", async () => {
      const a = newTask({ crashPolicy: "retry" });
      const b = newTask({ crashPolicy: "retry" });
      await insert(ctx.store, a, b);
      const { claimed, prefetched } = await claimWithPrefetch(ctx.store, T0, {
        limit: 0,
        prefetch: 1,
      });
      expect(claimed).toEqual([]);
      expect(ids(prefetched)).toEqual([a.id]);
      expect((await mustGet(ctx.store, a.id)).status).toBe("claimed");
      expect((await mustGet(ctx.store, b.id)).status).toBe("pending");
    });

    it("never prefetches a fail-policy task: it stays pending even with room in the buffer", async () => {
      const risky = newTask({ crashPolicy: "fail", priority: 5 });
      const idem1 = newTask({ crashPolicy: "retry", priority: 1 });
      const idem2 = newTask({ crashPolicy: "retry", priority: 0 });
      const risky2 = newTask({ crashPolicy: "fail", priority: 0, runAt: T0 + 1 });
      await insert(ctx.store, risky, idem1, idem2, risky2);
      // No free slot: only the retry-policy tasks are taken, the better fail-policy one is skipped.
      const first = await claimWithPrefetch(ctx.store, T0 + 10, { limit: 0, prefetch: 10 });
      expect(first.claimed).toEqual([]);
      expect(ids(first.prefetched)).toEqual([idem1.id, idem2.id]);
      expect((await mustGet(ctx.store, risky.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, risky2.id)).status).toBe("pending");
      // A free slot takes a fail-policy task straight into running.
      const second = await claimWithPrefetch(ctx.store, T0 + 10, { limit: 1, prefetch: 10 });
      expect(ids(second.claimed)).toEqual([risky.id]);
      expect(second.prefetched).toEqual([]);
      expect((await mustGet(ctx.store, risky.id)).status).toBe("running");
      expect((await mustGet(ctx.store, risky2.id)).status).toBe("pending");
      expect(await ctx.store.countTasks({ status: "claimed" })).toBe(2);
    });

    it("fills the free slots first, then the buffer, in priority, runAt, id order", async () => {
      const now = T0 + 100;
      const a = newTask({ crashPolicy: "retry", priority: 1, runAt: T0 });
      const b = newTask({ crashPolicy: "retry", priority: 2, runAt: T0 + 5 });
      const c = newTask({ crashPolicy: "retry", priority: 2, runAt: T0 + 1 });
      const d = newTask({ crashPolicy: "retry", priority: 1, runAt: T0 - 10 });
      const e = newTask({ crashPolicy: "retry", priority: 2, runAt: T0 + 1 });
      const f = newTask({ crashPolicy: "retry", priority: 0, runAt: T0 - 1000 });
      const g = newTask({ crashPolicy: "retry", priority: 3, runAt: T0 + 99 });
      const later = newTask({ crashPolicy: "retry", priority: 9, runAt: now + 1 });
      // Inserted out of order, so insertion order cannot explain the result.
      await insert(ctx.store, e, f, a, later, g, c, b, d);
      const { claimed, prefetched } = await claimWithPrefetch(ctx.store, now, {
        limit: 2,
        prefetch: 4,
      });
      expect(ids(claimed)).toEqual([g.id, c.id]);
      expect(ids(prefetched)).toEqual([e.id, b.id, d.id, a.id]);
      for (const x of claimed) expect((await mustGet(ctx.store, x.id)).status).toBe("running");
      for (const x of prefetched) expect((await mustGet(ctx.store, x.id)).status).toBe("claimed");
      expect((await mustGet(ctx.store, f.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, later.id)).status).toBe("pending");
    });

    it("prefetches across several types in the same order, and only those types", async () => {
      const now = T0 + 100;
      const x1 = newTask({ type: "x", crashPolicy: "retry", priority: 1, runAt: T0 });
      const y1 = newTask({ type: "y", crashPolicy: "retry", priority: 2, runAt: T0 + 10 });
      const x2 = newTask({ type: "x", crashPolicy: "retry", priority: 2, runAt: T0 + 5 });
      const y2 = newTask({ type: "y", crashPolicy: "retry", priority: 1, runAt: T0 - 1 });
      const x3 = newTask({ type: "x", crashPolicy: "retry", priority: 0, runAt: T0 });
      const z = newTask({ type: "z", crashPolicy: "retry", priority: 9 });
      await insert(ctx.store, x1, y1, x2, y2, x3, z);
      const { claimed, prefetched } = await claimWithPrefetch(ctx.store, now, {
        types: ["y", "x"],
        limit: 1,
        prefetch: 3,
      });
      expect(ids(claimed)).toEqual([x2.id]);
      expect(ids(prefetched)).toEqual([y1.id, y2.id, x1.id]);
      expect((await mustGet(ctx.store, x3.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, z.id)).status).toBe("pending");
    });

    it("never prefetches a delayed or blocked task", async () => {
      const dep = newTask({ crashPolicy: "fail" });
      const blocked = newTask({ crashPolicy: "retry", dependsOn: [dep.id] });
      const delayed = newTask({ crashPolicy: "retry", runAt: T0 + 1_000 });
      await insert(ctx.store, dep, blocked, delayed);
      const { prefetched } = await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 10 });
      expect(prefetched).toEqual([]);
      expect((await mustGet(ctx.store, blocked.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, delayed.id)).status).toBe("pending");
    });

    it("a prefetched task completes, fenced by its attempt id", async () => {
      const t = newTask({ crashPolicy: "retry" });
      await insert(ctx.store, t);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1 })).prefetched;
      expect(p?.id).toBe(t.id);
      const [stale] = await settle(
        ctx.store,
        T0 + 1,
        complete({ id: t.id, attemptId: `${p!.attemptId}-not` }, "x"),
      );
      expect(stale).toEqual({ id: t.id, ok: false, status: "claimed", cascade: [] });
      const [out] = await settle(ctx.store, T0 + 2, complete(p!, { ok: 1 }));
      expect(out).toEqual({ id: t.id, ok: true, status: "completed", cascade: [] });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({ status: "completed", result: { ok: 1 }, leaseExpiresAt: null });
      expect(row.completedAt?.getTime()).toBe(T0 + 2);
    });

    it("a prefetched task completed in the same exchange unblocks its dependents", async () => {
      const t = newTask({ crashPolicy: "retry" });
      const child = newTask({ crashPolicy: "retry", dependsOn: [t.id] });
      await insert(ctx.store, t, child);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 5 })).prefetched;
      expect(p?.id).toBe(t.id);
      const out = await ctx.store.exchange({
        now: T0 + 1,
        settle: [complete(p!)],
        claim: { engineName: "engine-a", types: ["t"], limit: 0, prefetch: 5 },
      });
      expect(out.settled).toMatchObject([{ id: t.id, ok: true, status: "completed" }]);
      expect(out.claimed).toEqual([]);
      expect(ids(out.prefetched ?? [])).toEqual([child.id]);
    });

    it("release gives a prefetched task back: pending, attempt restored, old attempt fenced off", async () => {
      const t = newTask({ crashPolicy: "retry", maxRetries: 1 });
      await insert(ctx.store, t);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1 })).prefetched;
      expect(p).toMatchObject({ id: t.id, attempt: 1 });
      const [out] = await settle(ctx.store, T0 + 1, release(p!));
      expect(out).toEqual({ id: t.id, ok: true, status: "pending", cascade: [] });
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        status: "pending",
        attempt: 0,
        crashCount: 0,
        leaseExpiresAt: null,
        error: null,
        completedAt: null,
      });
      const again = (await claimWithPrefetch(ctx.store, T0 + 2, { limit: 1, prefetch: 1 })).claimed;
      expect(again).toMatchObject([{ id: t.id, attempt: 1 }]);
      expect(again[0]!.attemptId).not.toBe(p!.attemptId);
      expect((await settle(ctx.store, T0 + 3, complete(p!)))[0]!.ok).toBe(false);
      expect((await settle(ctx.store, T0 + 3, complete(again[0]!)))[0]!.ok).toBe(true);
    });

    it("touch starts a prefetched task: claimed becomes running, same attempt", async () => {
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000 });
      await insert(ctx.store, t);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1 })).prefetched;
      const touched = await ctx.store.touch({ id: t.id, attemptId: p!.attemptId, now: T0 + 500 });
      expect(touched).toMatchObject({ ok: true, movedToRunning: true, status: "running" });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({ status: "running", attempt: 1, attemptId: p!.attemptId });
      expect(row.leaseExpiresAt?.getTime()).toBe(T0 + 1_500);
    });

    it("heartbeatMany renews a prefetched task's lease and leaves it claimed", async () => {
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000 });
      await insert(ctx.store, t);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1 })).prefetched;
      expect(await ctx.store.heartbeatMany([p!], T0 + 800)).toEqual([]);
      const row = await mustGet(ctx.store, t.id);
      expect(row.status).toBe("claimed");
      expect(row.leaseExpiresAt?.getTime()).toBe(T0 + 1_800);
      expect(await ctx.store.rescueExpired(T0 + 1_500, 10)).toEqual([]);
    });

    it("a prefetched task whose lease expired goes back to pending, crash count + 1", async () => {
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000, maxCrashes: 3 });
      await insert(ctx.store, t);
      const [p] = (await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1 })).prefetched;
      expect(await ctx.store.rescueExpired(T0 + 999, 10)).toEqual([]);
      const changes = await ctx.store.rescueExpired(T0 + 1_001, 10);
      expect(changes).toMatchObject([{ id: t.id, status: "pending", attempt: 1 }]);
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        status: "pending",
        crashCount: 1,
        leaseExpiresAt: null,
      });
      expect((await settle(ctx.store, T0 + 1_002, complete(p!)))[0]!.ok).toBe(false);
      const again = (await claimWithPrefetch(ctx.store, T0 + 1_002, { limit: 0, prefetch: 1 }))
        .prefetched;
      expect(again).toMatchObject([{ id: t.id, attempt: 2, crashCount: 1 }]);
      expect(again[0]!.attemptId).not.toBe(p!.attemptId);
    });

    it("recoverEngine returns that engine's prefetched tasks to pending", async () => {
      const mine = newTask({ crashPolicy: "retry", priority: 2 });
      const theirs = newTask({ crashPolicy: "retry", priority: 1 });
      await insert(ctx.store, mine, theirs);
      await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1, engineName: "dead" });
      await claimWithPrefetch(ctx.store, T0, { limit: 0, prefetch: 1, engineName: "alive" });
      const changes = await ctx.store.recoverEngine("dead", T0 + 1);
      expect(changes).toMatchObject([{ id: mine.id, status: "pending" }]);
      expect(await mustGet(ctx.store, mine.id)).toMatchObject({
        status: "pending",
        crashCount: 1,
      });
      expect((await mustGet(ctx.store, theirs.id)).status).toBe("claimed");
    });

    it.runIf(ctx.hasPeer)("two peers prefetching at once never get the same task", async () => {
      const peer = await ctx.peer();
      const all = Array.from({ length: 40 }, () => newTask({ crashPolicy: "retry" }));
      await insert(ctx.store, ...all);
      const seen: string[] = [];
      for (let round = 0; round < 5; round++) {
        const now = T0 + round;
        const [a, b] = await Promise.all([
          claimWithPrefetch(ctx.store, now, { limit: 2, prefetch: 3, engineName: "a" }),
          claimWithPrefetch(peer, now, { limit: 2, prefetch: 3, engineName: "b" }),
        ]);
        for (const got of [a, b]) seen.push(...ids(got.claimed), ...ids(got.prefetched));
        expect(a.claimed.length + a.prefetched.length).toBeLessThanOrEqual(5);
        expect(b.claimed.length + b.prefetched.length).toBeLessThanOrEqual(5);
      }
      expect(new Set(seen).size).toBe(seen.length);
      // Nothing was lost either: every task is held by exactly one engine or still pending.
      const held = sorted(seen);
      const running = (await ctx.store.listTasks({ status: "running", limit: 100 })).items;
      const claimed = (await ctx.store.listTasks({ status: "claimed", limit: 100 })).items;
      expect(sorted([...running, ...claimed].map((t) => t.id))).toEqual(held);
      expect(await ctx.store.countTasks({ status: "pending" })).toBe(40 - held.length);
    });
  });
}
