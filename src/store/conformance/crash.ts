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
  settle,
  sorted,
  type StoreContext,
} from "./fixtures.js";

export function crashSuite(ctx: StoreContext): void {
  describe("rescueExpired", () => {
    it("touches only attempts whose lease expired", async () => {
      const short = newTask({ leaseMs: 1_000 });
      const long = newTask({ leaseMs: 5_000 });
      const waiting = newTask({ runAt: T0 });
      await insert(ctx.store, short, long);
      await claim(ctx.store, T0, { limit: 2 });
      await insert(ctx.store, waiting);
      expect(await ctx.store.rescueExpired(T0 + 999, 100)).toEqual([]);
      const changes = await ctx.store.rescueExpired(T0 + 2_000, 100);
      expect(changes.map((c) => c.id)).toEqual([short.id]);
      expect((await mustGet(ctx.store, long.id)).status).toBe("running");
      expect((await mustGet(ctx.store, waiting.id)).status).toBe("pending");
      // Already rescued: nothing more to do at the same time.
      expect(await ctx.store.rescueExpired(T0 + 2_000, 100)).toEqual([]);
    });

    it("handles at most `limit` attempts per call", async () => {
      for (let i = 0; i < 3; i++) await insert(ctx.store, newTask({ leaseMs: 100 }));
      await claim(ctx.store, T0);
      expect(await ctx.store.rescueExpired(T0 + 1_000, 2)).toHaveLength(2);
      expect(await ctx.store.rescueExpired(T0 + 1_000, 2)).toHaveLength(1);
      expect(await ctx.store.rescueExpired(T0 + 1_000, 2)).toHaveLength(0);
    });

    it('crash policy "fail": failed_crash, crash count + 1, ended, and the old attempt is fenced off', async () => {
      const t = newTask({
        crashPolicy: "fail",
        leaseMs: 1_000,
        tenant: "acme",
        project: "p",
        requestId: "r",
      });
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const changes = await ctx.store.rescueExpired(T0 + 5_000, 10);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({
        id: t.id,
        type: "t",
        tenant: "acme",
        project: "p",
        requestId: "r",
        workflowId: null,
        attempt: 1,
        status: "failed_crash",
      });
      expect(changes[0]!.error).toEqual(expect.any(String));
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({ status: "failed_crash", crashCount: 1, leaseExpiresAt: null });
      expect(row.completedAt?.getTime()).toBe(T0 + 5_000);
      expect(row.error).toEqual(expect.any(String));
      expect((await settle(ctx.store, T0 + 5_001, complete(c)))[0]).toMatchObject({
        ok: false,
        status: "failed_crash",
      });
      expect(await claim(ctx.store, T0 + 10_000)).toEqual([]);
    });

    it('crash policy "retry": a running attempt goes to retrying and is claimable again at once', async () => {
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000, maxRetries: 0 });
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      const changes = await ctx.store.rescueExpired(T0 + 2_000, 10);
      expect(changes).toMatchObject([{ id: t.id, status: "retrying", attempt: 1 }]);
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({
        status: "retrying",
        crashCount: 1,
        completedAt: null,
        leaseExpiresAt: null,
      });
      // The old attempt can no longer write.
      expect((await settle(ctx.store, T0 + 2_001, complete(c)))[0]).toMatchObject({
        ok: false,
        status: "retrying",
      });
      expect(await ctx.store.touch({ id: t.id, attemptId: c.attemptId, now: T0 + 2_001 })).toEqual({
        ok: false,
        status: "retrying",
      });
      const again = await claimOne(ctx.store, T0 + 2_000);
      expect(again).toMatchObject({ id: t.id, attempt: 2, crashCount: 1 });
      // A crash retry does not use up maxRetries: one (failed or crashed-free) attempt so far.
      expect(again.attempt - again.crashCount).toBe(1);
    });

    it('crash policy "retry": a claimed (not started) attempt goes back to pending', async () => {
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000 });
      await insert(ctx.store, t);
      const got = await ctx.store.claimForAgent({ agent: "bot", max: 1, now: T0 });
      expect(got?.status).toBe("claimed");
      const changes = await ctx.store.rescueExpired(T0 + 2_000, 10);
      expect(changes).toMatchObject([{ id: t.id, status: "pending" }]);
      expect(await mustGet(ctx.store, t.id)).toMatchObject({ status: "pending", crashCount: 1 });
      expect((await claimOne(ctx.store, T0 + 2_000)).id).toBe(t.id);
    });

    it("dead-letters a task that crashed more than maxCrashes times, whatever the policy", async () => {
      const t = newTask({ crashPolicy: "retry", maxCrashes: 2, leaseMs: 100 });
      await insert(ctx.store, t);
      const statuses: string[] = [];
      for (let i = 0; i < 3; i++) {
        const now = T0 + i * 1_000;
        await claimOne(ctx.store, now);
        const [change] = await ctx.store.rescueExpired(now + 500, 10);
        statuses.push(change!.status);
      }
      expect(statuses).toEqual(["retrying", "retrying", "failed_crash"]);
      const row = await mustGet(ctx.store, t.id);
      expect(row).toMatchObject({ status: "failed_crash", crashCount: 3 });
      expect(row.completedAt).not.toBeNull();
      expect(await claim(ctx.store, T0 + 10_000)).toEqual([]);
    });

    it("with maxCrashes 0 the first crash is final", async () => {
      const t = newTask({ crashPolicy: "retry", maxCrashes: 0, leaseMs: 100 });
      await insert(ctx.store, t);
      await claimOne(ctx.store, T0);
      expect(await ctx.store.rescueExpired(T0 + 500, 10)).toMatchObject([
        { id: t.id, status: "failed_crash" },
      ]);
    });

    it("counts claimed returns toward maxCrashes too (poison pill in a prefetch buffer)", async () => {
      const t = newTask({ crashPolicy: "retry", maxCrashes: 1, leaseMs: 100 });
      await insert(ctx.store, t);
      await ctx.store.claimForAgent({ agent: "bot", max: 1, now: T0 });
      expect(await ctx.store.rescueExpired(T0 + 500, 10)).toMatchObject([{ status: "pending" }]);
      await ctx.store.claimForAgent({ agent: "bot", max: 1, now: T0 + 1_000 });
      expect(await ctx.store.rescueExpired(T0 + 1_500, 10)).toMatchObject([
        { status: "failed_crash" },
      ]);
      expect(await mustGet(ctx.store, t.id)).toMatchObject({
        status: "failed_crash",
        crashCount: 2,
      });
    });

    it("cancels the dependents of a dead-lettered task, in the same call", async () => {
      const a = newTask({ crashPolicy: "fail", leaseMs: 100 });
      const b = newTask({ dependsOn: [a.id] });
      const c = newTask({ dependsOn: [b.id] });
      await insert(ctx.store, a, b, c);
      await claimOne(ctx.store, T0);
      const changes = await ctx.store.rescueExpired(T0 + 500, 10);
      expect(changes.find((x) => x.id === a.id)?.status).toBe("failed_crash");
      const cascaded = changes.filter((x) => x.id !== a.id);
      expect(sorted(cascaded.map((x) => x.id))).toEqual(sorted([b.id, c.id]));
      for (const x of cascaded) expect(x.status).toBe("cancelled");
      expect((await mustGet(ctx.store, c.id)).status).toBe("cancelled");
    });

    it("does not cancel dependents of a task sent to retry", async () => {
      const a = newTask({ crashPolicy: "retry", leaseMs: 100 });
      const b = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b);
      await claimOne(ctx.store, T0);
      expect(await ctx.store.rescueExpired(T0 + 500, 10)).toMatchObject([
        { id: a.id, status: "retrying" },
      ]);
      expect((await mustGet(ctx.store, b.id)).status).toBe("pending");
    });

    it("leaves settled tasks alone", async () => {
      const a = newTask({ leaseMs: 100 });
      const b = newTask({ leaseMs: 100 });
      await insert(ctx.store, a, b);
      const cs = new Map((await claim(ctx.store, T0, { limit: 2 })).map((c) => [c.id, c]));
      await settle(
        ctx.store,
        T0 + 1,
        complete(cs.get(a.id)!),
        fail(cs.get(b.id)!, "later", T0 + 10_000),
      );
      expect(await ctx.store.rescueExpired(T0 + 5_000, 10)).toEqual([]);
      expect((await mustGet(ctx.store, a.id)).status).toBe("completed");
      expect((await mustGet(ctx.store, b.id)).status).toBe("retrying");
    });
  });

  describe("recoverEngine", () => {
    it("applies the crash policy to every claimed or running attempt of that engine only, expired or not", async () => {
      const mineFail = newTask({ type: "a", crashPolicy: "fail" });
      const mineRetry = newTask({ type: "a", crashPolicy: "retry" });
      const theirs = newTask({ type: "a" });
      const agentHeld = newTask({ type: "b", crashPolicy: "retry" });
      const pending = newTask({ type: "c" });
      await insert(ctx.store, mineFail, mineRetry, theirs, agentHeld, pending);
      const mine = await ctx.store.exchange({
        now: T0,
        settle: [],
        claim: { engineName: "engine-a", types: ["a"], limit: 2 },
      });
      expect(sorted(mine.claimed.map((c) => c.id))).toEqual(sorted([mineFail.id, mineRetry.id]));
      await claimOne(ctx.store, T0, { types: ["a"], engineName: "engine-b" });
      await ctx.store.claimForAgent({ agent: "engine-a", types: ["b"], max: 5, now: T0 });

      const changes = await ctx.store.recoverEngine("engine-a", T0 + 10);
      const byId = new Map(changes.map((c) => [c.id, c.status]));
      expect(byId).toEqual(
        new Map([
          [mineFail.id, "failed_crash"],
          [mineRetry.id, "retrying"],
          [agentHeld.id, "pending"],
        ]),
      );
      expect((await mustGet(ctx.store, theirs.id)).status).toBe("running");
      expect((await mustGet(ctx.store, pending.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, mineRetry.id)).crashCount).toBe(1);
      expect(await ctx.store.recoverEngine("engine-a", T0 + 20)).toEqual([]);
      expect(await ctx.store.recoverEngine("nobody", T0 + 20)).toEqual([]);
    });

    it("dead-letters past maxCrashes and cascades like a rescue", async () => {
      const a = newTask({ crashPolicy: "retry", maxCrashes: 0 });
      const b = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b);
      await claimOne(ctx.store, T0, { engineName: "engine-a" });
      const changes = await ctx.store.recoverEngine("engine-a", T0 + 1);
      expect(new Map(changes.map((c) => [c.id, c.status]))).toEqual(
        new Map([
          [a.id, "failed_crash"],
          [b.id, "cancelled"],
        ]),
      );
    });
  });
}
