import { describe, expect, it } from "vitest";
import {
  T0,
  claim,
  claimOne,
  complete,
  fail,
  insert,
  mustGet,
  newTask,
  parse,
  release,
  settle,
  sorted,
  type StoreContext,
} from "./fixtures.js";

export function dispatchSuite(ctx: StoreContext): void {
  describe("exchange: claims", () => {
    it("claims nothing from an empty store, and nothing with claim: null or limit 0", async () => {
      expect(await claim(ctx.store, T0)).toEqual([]);
      await insert(ctx.store, newTask());
      // `prefetched` is optional: absent or empty when nothing was prefetched.
      const idle = await ctx.store.exchange({ now: T0, settle: [], claim: null });
      expect(idle).toMatchObject({ settled: [], claimed: [] });
      expect(idle.prefetched ?? []).toEqual([]);
      const none = await ctx.store.exchange({
        now: T0,
        settle: [],
        claim: { engineName: "engine-a", types: ["t"], limit: 0 },
      });
      expect(none).toMatchObject({ settled: [], claimed: [] });
      expect(none.prefetched ?? []).toEqual([]);
      expect((await mustGet(ctx.store, (await ctx.store.listTasks({})).items[0]!.id)).status).toBe(
        "pending",
      );
    });

    it("claims straight into running: attempt + 1, a new attempt id, engine name, lease = now + leaseMs", async () => {
      const t = newTask({
        input: JSON.stringify({ a: 1 }),
        caller: "alice",
        priority: 2,
        labels: { k: "v" },
        metadata: { m: 1 },
        maxRetries: 4,
        backoff: { baseMs: 5 },
        leaseMs: 7_000,
        timeoutMs: 3_000,
        tenant: "acme",
        project: "p",
        requestId: "r-1",
        workflowId: "w-1",
        traceContext: { traceparent: "tp" },
        runAt: T0 - 50,
      });
      await insert(ctx.store, t);
      const now = T0 + 100;
      const c = await claimOne(ctx.store, now, { engineName: "engine-x" });
      expect(c).toMatchObject({
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
      expect(typeof c.attemptId).toBe("string");
      expect(c.attemptId.length).toBeGreaterThan(0);
      expect(parse(c.input)).toEqual({ a: 1 });
      expect(parse(c.labels)).toEqual({ k: "v" });
      expect(parse(c.metadata)).toEqual({ m: 1 });
      expect(parse(c.backoff)).toEqual({ baseMs: 5 });
      expect(parse(c.traceContext)).toEqual({ traceparent: "tp" });

      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "running",
        attempt: 1,
        attemptId: c.attemptId,
        engineName: "engine-x",
      });
      expect(row.leaseExpiresAt?.getTime()).toBe(now + 7_000);
      expect(row.startedAt?.getTime()).toBe(now);
      expect(row.updatedAt.getTime()).toBe(now);
    });

    it("gives JSON columns back as null when the task has none", async () => {
      await insert(ctx.store, newTask());
      const c = await claimOne(ctx.store, T0);
      expect(c).toMatchObject({
        input: null,
        labels: null,
        metadata: null,
        backoff: null,
        traceContext: null,
      });
    });

    it("claims in priority order (highest first), then runAt, then id", async () => {
      const now = T0 + 100;
      const a = newTask({ priority: 1, runAt: T0 });
      const b = newTask({ priority: 2, runAt: T0 + 5 });
      const c = newTask({ priority: 2, runAt: T0 + 1 });
      const d = newTask({ priority: 1, runAt: T0 - 10 });
      const e = newTask({ priority: 2, runAt: T0 + 1 });
      const f = newTask({ priority: 0, runAt: T0 - 1000 });
      const g = newTask({ priority: 3, runAt: T0 + 99 });
      // Inserted out of order, so insertion order cannot explain the result.
      await insert(ctx.store, e, f, a, g, c, b, d);
      const order: string[] = [];
      for (let i = 0; i < 7; i++) order.push((await claimOne(ctx.store, now)).id);
      expect(order).toEqual([g.id, c.id, e.id, b.id, d.id, a.id, f.id]);
      expect(await claim(ctx.store, now)).toEqual([]);
    });

    it("orders across several types the same way, and takes the best `limit` of them", async () => {
      const now = T0 + 100;
      const x1 = newTask({ type: "x", priority: 1, runAt: T0 });
      const y1 = newTask({ type: "y", priority: 2, runAt: T0 + 10 });
      const x2 = newTask({ type: "x", priority: 2, runAt: T0 + 5 });
      const y2 = newTask({ type: "y", priority: 1, runAt: T0 - 1 });
      const x3 = newTask({ type: "x", priority: 0, runAt: T0 });
      await insert(ctx.store, x1, y1, x2, y2, x3);
      const top3 = await claim(ctx.store, now, { types: ["x", "y"], limit: 3 });
      expect(sorted(top3.map((c) => c.id))).toEqual(sorted([x2.id, y1.id, y2.id]));
      expect((await claimOne(ctx.store, now, { types: ["y", "x"] })).id).toBe(x1.id);
      expect((await claimOne(ctx.store, now, { types: ["y", "x"] })).id).toBe(x3.id);
    });

    it("claims only the requested types", async () => {
      const a = newTask({ type: "a" });
      const b = newTask({ type: "b" });
      const c = newTask({ type: "c" });
      await insert(ctx.store, a, b, c);
      const got = await claim(ctx.store, T0, { types: ["a", "c"] });
      expect(sorted(got.map((x) => x.id))).toEqual(sorted([a.id, c.id]));
      expect((await mustGet(ctx.store, b.id)).status).toBe("pending");
      expect(await claim(ctx.store, T0, { types: [] })).toEqual([]);
      expect(await claim(ctx.store, T0, { types: ["zzz"] })).toEqual([]);
    });

    it("respects the limit", async () => {
      for (let i = 0; i < 5; i++) await insert(ctx.store, newTask());
      expect(await claim(ctx.store, T0, { limit: 2 })).toHaveLength(2);
      expect(await claim(ctx.store, T0, { limit: 2 })).toHaveLength(2);
      expect(await claim(ctx.store, T0, { limit: 2 })).toHaveLength(1);
      expect(await claim(ctx.store, T0, { limit: 2 })).toHaveLength(0);
    });

    it("never claims a task twice", async () => {
      for (let i = 0; i < 10; i++) await insert(ctx.store, newTask());
      const first = await claim(ctx.store, T0, { limit: 6 });
      const second = await claim(ctx.store, T0, { limit: 6 });
      const ids = [...first, ...second].map((c) => c.id);
      expect(ids).toHaveLength(10);
      expect(new Set(ids).size).toBe(10);
    });

    it("gives every attempt of one task a new attempt id", async () => {
      const t = newTask({ maxRetries: 10 });
      await insert(ctx.store, t);
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const c = await claimOne(ctx.store, T0 + i);
        expect(c.attempt).toBe(i + 1);
        seen.add(c.attemptId);
        await settle(ctx.store, T0 + i, fail(c, "again", T0 + i + 1));
      }
      expect(seen.size).toBe(5);
      expect((await mustGet(ctx.store, t.id)).attempt).toBe(5);
    });

    it("does not claim a delayed task before its runAt, and claims it once due", async () => {
      const t = newTask({ runAt: T0 + 1_000 });
      await insert(ctx.store, t);
      expect(await claim(ctx.store, T0)).toEqual([]);
      expect(await claim(ctx.store, T0 + 999)).toEqual([]);
      expect(await claim(ctx.store, T0 + 999, { types: ["t", "u"] })).toEqual([]);
      expect((await mustGet(ctx.store, t.id)).status).toBe("pending");
      expect((await claimOne(ctx.store, T0 + 1_000)).id).toBe(t.id);
    });

    it("does not claim a blocked task until its dependency completed", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id], priority: 3 });
      await insert(ctx.store, a, b);
      const ca = await claimOne(ctx.store, T0);
      expect(ca.id).toBe(a.id);
      expect(await claim(ctx.store, T0 + 1)).toEqual([]);
      expect(await claim(ctx.store, T0 + 1, { types: ["u", "t"] })).toEqual([]);
      await settle(ctx.store, T0 + 2, complete(ca));
      expect((await claimOne(ctx.store, T0 + 3)).id).toBe(b.id);
    });

    it("does not claim a task that is claimed by an agent", async () => {
      await insert(ctx.store, newTask());
      expect(await ctx.store.claimForAgent({ agent: "bot", max: 1, now: T0 })).not.toBeNull();
      expect(await claim(ctx.store, T0)).toEqual([]);
    });
  });

  describe("exchange: settlements", () => {
    it("complete records the result and ends the attempt", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const [out] = await settle(ctx.store, T0 + 50, complete(c, { answer: 42 }));
      expect(out).toEqual({ id: t.id, ok: true, status: "completed", cascade: [] });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "completed",
        result: { answer: 42 },
        error: null,
        attempt: 1,
      });
      expect(row.completedAt?.getTime()).toBe(T0 + 50);
      expect(row.updatedAt.getTime()).toBe(T0 + 50);
      expect(row.leaseExpiresAt).toBeNull();
    });

    it("complete with a null result stores no result", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      await settle(ctx.store, T0, complete(await claimOne(ctx.store, T0), null));
      expect(await mustGet(ctx.store, t.id)).toMatchObject({ status: "completed", result: null });
    });

    it("fences every settlement by attempt id: a wrong attempt id writes nothing", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const wrong = { id: t.id, attemptId: `${c.attemptId}-not` };
      const outs = await settle(
        ctx.store,
        T0 + 1,
        complete(wrong, "x"),
        fail(wrong, "e", null),
        fail(wrong, "e", T0 + 10),
        release(wrong),
      );
      for (const o of outs)
        expect(o).toEqual({ id: t.id, ok: false, status: "running", cascade: [] });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "running",
        attemptId: c.attemptId,
        result: null,
        error: null,
      });
      expect(row.leaseExpiresAt?.getTime()).toBe(T0 + 30_000);
    });

    it("reports an unknown task as stale with status null", async () => {
      const [out] = await settle(ctx.store, T0, complete({ id: "no-such-task", attemptId: "a" }));
      expect(out).toEqual({ id: "no-such-task", ok: false, status: null, cascade: [] });
    });

    it("rejects a second completion (across calls and within one call)", async () => {
      const a = newTask();
      const b = newTask();
      await insert(ctx.store, a, b);
      const [ca, cb] = await claim(ctx.store, T0, { limit: 2 });
      expect((await settle(ctx.store, T0 + 1, complete(ca!, 1)))[0]!.ok).toBe(true);
      const [again] = await settle(ctx.store, T0 + 2, complete(ca!, 2));
      expect(again).toEqual({ id: ca!.id, ok: false, status: "completed", cascade: [] });
      expect((await mustGet(ctx.store, ca!.id)).result).toBe(1);

      const outs = await settle(ctx.store, T0 + 3, complete(cb!, "first"), fail(cb!, "late", null));
      expect(outs.map((o) => [o.ok, o.status])).toEqual([
        [true, "completed"],
        [false, "completed"],
      ]);
      expect(await mustGet(ctx.store, cb!.id)).toMatchObject({
        status: "completed",
        result: "first",
        error: null,
      });
    });

    it("rejects an old attempt id once the task was claimed again", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const first = await claimOne(ctx.store, T0);
      await settle(ctx.store, T0 + 1, fail(first, "try again", T0 + 2));
      const second = await claimOne(ctx.store, T0 + 2);
      expect(second.attemptId).not.toBe(first.attemptId);
      expect(second.attempt).toBe(2);
      const [stale] = await settle(ctx.store, T0 + 3, complete(first, "old"));
      expect(stale).toEqual({ id: t.id, ok: false, status: "running", cascade: [] });
      const [fresh] = await settle(ctx.store, T0 + 4, complete(second, "new"));
      expect(fresh!.ok).toBe(true);
      expect((await mustGet(ctx.store, t.id)).result).toBe("new");
    });

    it("fail with retryAt: retrying, runAt = retryAt, error kept, claimable again only when due", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const [out] = await settle(ctx.store, T0 + 10, fail(c, "flaky", T0 + 1_000));
      expect(out).toEqual({ id: t.id, ok: true, status: "retrying", cascade: [] });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "retrying",
        error: "flaky",
        completedAt: null,
        leaseExpiresAt: null,
      });
      expect(row.runAt.getTime()).toBe(T0 + 1_000);
      expect(await claim(ctx.store, T0 + 999)).toEqual([]);
      const again = await claimOne(ctx.store, T0 + 1_000);
      expect(again).toMatchObject({ id: t.id, attempt: 2 });
      // A later success clears the error of the failed attempt.
      await settle(ctx.store, T0 + 1_001, complete(again, "ok"));
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        status: "completed",
        error: null,
        result: "ok",
      });
    });

    it("a retry does not cancel or unblock dependents", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b);
      await settle(ctx.store, T0 + 1, fail(await claimOne(ctx.store, T0), "flaky", T0 + 5));
      expect((await mustGet(ctx.store, b.id)).status).toBe("pending");
      const next = await claimOne(ctx.store, T0 + 5);
      expect(next.id).toBe(a.id);
    });

    it("final fail: failed, and dependents cancelled transitively in the same call", async () => {
      const a = newTask({ tenant: "acme", project: "p", requestId: "r" });
      const b = newTask({
        tenant: "acme",
        project: "p",
        dependsOn: [a.id],
        type: "b",
        requestId: "rb",
        workflowId: "w",
      });
      const c = newTask({ tenant: "acme", project: "p", dependsOn: [b.id] });
      const d = newTask({ tenant: "acme", project: "p", dependsOn: [a.id, c.id] });
      const unrelated = newTask({ tenant: "acme", project: "p" });
      await insert(ctx.store, a, b, c, d, unrelated);
      const ca = await claimOne(ctx.store, T0, { types: ["t"] });
      expect(ca.id).toBe(a.id);
      const [out] = await settle(ctx.store, T0 + 20, fail(ca, "fatal", null));
      expect(out!.ok).toBe(true);
      expect(out!.status).toBe("failed");
      expect(sorted(out!.cascade.map((x) => x.id))).toEqual(sorted([b.id, c.id, d.id]));
      for (const change of out!.cascade) {
        expect(change.status).toBe("cancelled");
        expect(change.error).toEqual(expect.any(String));
        expect(change.tenant).toBe("acme");
        expect(change.project).toBe("p");
      }
      const cb = out!.cascade.find((x) => x.id === b.id)!;
      expect(cb).toMatchObject({ type: "b", requestId: "rb", workflowId: "w", attempt: 0 });
      expect(cb.error).toEqual(expect.stringContaining(a.id));

      expect(await mustGet(ctx.store, a.id)).toMatchObject({ status: "failed", error: "fatal" });
      expect((await mustGet(ctx.store, a.id)).completedAt?.getTime()).toBe(T0 + 20);
      for (const id of [b.id, c.id, d.id]) {
        const row = await mustGet(ctx.store, id);
        expect(row.status).toBe("cancelled");
        expect(row.completedAt?.getTime()).toBe(T0 + 20);
      }
      expect((await mustGet(ctx.store, unrelated.id)).status).toBe("pending");
    });

    it("complete unblocks dependents and cancels nothing", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      const c = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b, c);
      const [out] = await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0)));
      expect(out!.cascade).toEqual([]);
      const next = await claim(ctx.store, T0 + 2);
      expect(sorted(next.map((x) => x.id))).toEqual(sorted([b.id, c.id]));
    });

    it("settles first, then claims: a dependent unblocked by the settlement is claimable in the same call", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b);
      const ca = await claimOne(ctx.store, T0);
      const out = await ctx.store.exchange({
        now: T0 + 1,
        settle: [complete(ca, "done")],
        claim: { engineName: "engine-a", types: ["t"], limit: 5 },
      });
      expect(out.settled).toEqual([{ id: a.id, ok: true, status: "completed", cascade: [] }]);
      expect(out.claimed.map((c) => c.id)).toEqual([b.id]);
    });

    it("returns settlement outcomes in the order given", async () => {
      const tasks = [newTask(), newTask(), newTask(), newTask()];
      await insert(ctx.store, ...tasks);
      const cs = await claim(ctx.store, T0, { limit: 4 });
      const byId = new Map(cs.map((c) => [c.id, c]));
      const [t0, t1, t2, t3] = tasks.map((t) => byId.get(t.id)!);
      const outs = await settle(
        ctx.store,
        T0 + 1,
        release(t3!),
        complete(t1!),
        fail(t0!, "x", T0 + 100),
        fail(t2!, "y", null),
      );
      expect(outs.map((o) => [o.id, o.ok, o.status])).toEqual([
        [t3!.id, true, "pending"],
        [t1!.id, true, "completed"],
        [t0!.id, true, "retrying"],
        [t2!.id, true, "failed"],
      ]);
    });

    it("release: pending again, claimable at once, and the released attempt is fenced off", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const [out] = await settle(ctx.store, T0 + 1, release(c));
      expect(out).toEqual({ id: t.id, ok: true, status: "pending", cascade: [] });
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "pending",
        leaseExpiresAt: null,
        error: null,
        completedAt: null,
      });
      const again = await claimOne(ctx.store, T0 + 1);
      expect(again.id).toBe(t.id);
      expect(again.attemptId).not.toBe(c.attemptId);
      expect((await settle(ctx.store, T0 + 2, complete(c)))[0]!.ok).toBe(false);
      expect((await settle(ctx.store, T0 + 2, complete(again)))[0]!.ok).toBe(true);
    });

    it("release uses up no retry (attempt - crashCount, the retries used so far, does not grow)", async () => {
      const t = newTask({ maxRetries: 1 });
      await insert(ctx.store, t);
      let c = await claimOne(ctx.store, T0);
      expect(c.attempt - c.crashCount).toBe(1);
      for (let i = 1; i <= 3; i++) {
        await settle(ctx.store, T0 + i, release(c));
        c = await claimOne(ctx.store, T0 + i);
        expect(c.attempt - c.crashCount).toBe(1);
      }
    });

    it("can settle and claim with one round trip for many tasks", async () => {
      for (let i = 0; i < 20; i++) await insert(ctx.store, newTask());
      let claimed = await claim(ctx.store, T0, { limit: 5 });
      const done = new Set<string>();
      for (let now = T0 + 1; claimed.length > 0; now++) {
        const out = await ctx.store.exchange({
          now,
          settle: claimed.map((c) => complete(c, c.id)),
          claim: { engineName: "engine-a", types: ["t"], limit: 5 },
        });
        expect(out.settled.every((o) => o.ok && o.status === "completed")).toBe(true);
        for (const c of claimed) done.add(c.id);
        claimed = out.claimed;
      }
      expect(done.size).toBe(20);
      expect(await ctx.store.countTasks({ status: "completed" })).toBe(20);
    });
  });
}
