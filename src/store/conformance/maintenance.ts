import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.js";
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
  statusOf,
  type StoreContext,
} from "./fixtures.js";

export function maintenanceSuite(ctx: StoreContext): void {
  describe("promoteDue", () => {
    it("turns retrying tasks whose backoff elapsed into pending and counts them", async () => {
      const due = newTask();
      const later = newTask();
      const waiting = newTask({ runAt: T0 - 1 });
      await insert(ctx.store, due, later);
      const cs = new Map((await claim(ctx.store, T0, { limit: 2 })).map((c) => [c.id, c]));
      await settle(
        ctx.store,
        T0 + 1,
        fail(cs.get(due.id)!, "e", T0 + 100),
        fail(cs.get(later.id)!, "e", T0 + 500),
      );
      await insert(ctx.store, waiting);

      expect(await ctx.store.promoteDue(T0 + 99)).toBe(0);
      expect(await ctx.store.promoteDue(T0 + 100)).toBe(1);
      expect(await statusOf(ctx.store, due.id)).toBe("pending");
      expect(await statusOf(ctx.store, later.id)).toBe("retrying");
      expect(await statusOf(ctx.store, waiting.id)).toBe("pending");
      expect((await mustGet(ctx.store, due.id)).runAt.getTime()).toBe(T0 + 100);
      expect(await ctx.store.promoteDue(T0 + 100)).toBe(0);
      expect(await ctx.store.promoteDue(T0 + 10_000)).toBe(1);
      expect(await ctx.store.promoteDue(T0 + 10_000)).toBe(0);
    });

    it("returns 0 on an empty store", async () => {
      expect(await ctx.store.promoteDue(T0)).toBe(0);
    });
  });

  describe("nextRunAt", () => {
    it("gives the earliest future runAt of a waiting task of the given types, or null", async () => {
      expect(await ctx.store.nextRunAt(["t"], T0)).toBeNull();
      const r = newTask({ type: "t", priority: 3 });
      await insert(
        ctx.store,
        r,
        newTask({ type: "t", runAt: T0 - 5 }), // due already: not "after now"
        newTask({ type: "t", runAt: T0 + 3_000 }),
        newTask({ type: "t", runAt: T0 + 2_000 }),
        newTask({ type: "other", runAt: T0 + 1_000 }),
      );
      expect(await ctx.store.nextRunAt(["t"], T0)).toBe(T0 + 2_000);
      expect(await ctx.store.nextRunAt(["t", "other"], T0)).toBe(T0 + 1_000);
      expect(await ctx.store.nextRunAt(["other"], T0 + 1_000)).toBeNull();
      expect(await ctx.store.nextRunAt(["t"], T0 + 2_500)).toBe(T0 + 3_000);
      expect(await ctx.store.nextRunAt(["nope"], T0)).toBeNull();
      expect(await ctx.store.nextRunAt([], T0)).toBeNull();

      // A retry's backoff counts as a wait too.
      const c = await claimOne(ctx.store, T0);
      expect(c.id).toBe(r.id);
      await settle(ctx.store, T0 + 1, fail(c, "e", T0 + 1_500));
      expect(await ctx.store.nextRunAt(["t"], T0 + 2)).toBe(T0 + 1_500);
    });

    it("ignores tasks that are not waiting (running, ended, cancelled)", async () => {
      const a = newTask({ runAt: T0 + 1_000 });
      const b = newTask({ runAt: T0 + 2_000 });
      const c = newTask({ runAt: T0 + 3_000 });
      await insert(ctx.store, a, b, c);
      await ctx.store.cancel({ ids: [a.id] }, "x", T0);
      expect(await ctx.store.nextRunAt(["t"], T0)).toBe(T0 + 2_000);
      const cb = await claimOne(ctx.store, T0 + 2_000);
      expect(cb.id).toBe(b.id);
      expect(await ctx.store.nextRunAt(["t"], T0)).toBe(T0 + 3_000);
      await settle(ctx.store, T0 + 2_001, complete(cb));
      expect(await ctx.store.nextRunAt(["t"], T0)).toBe(T0 + 3_000);
    });
  });

  describe("queuePosition", () => {
    it("gives the 1-based place among ready tasks of the same type, in claim order", async () => {
      const now = T0 + 100;
      const a = newTask({ priority: 1, runAt: T0 });
      const b = newTask({ priority: 2, runAt: T0 + 50 });
      const c = newTask({ priority: 1, runAt: T0 - 10 });
      const d = newTask({ priority: 1, runAt: T0 });
      const otherType = newTask({ type: "o", priority: 3 });
      await insert(ctx.store, a, b, c, d, otherType);
      const pos = async (id: string) => (await ctx.store.queuePosition(id, now))!;
      expect(await pos(b.id)).toEqual({ position: 1, type: "t", status: "pending", queued: true });
      expect(await pos(c.id)).toEqual({ position: 2, type: "t", status: "pending", queued: true });
      expect(await pos(a.id)).toEqual({ position: 3, type: "t", status: "pending", queued: true });
      expect(await pos(d.id)).toEqual({ position: 4, type: "t", status: "pending", queued: true });
      expect(await pos(otherType.id)).toEqual({
        position: 1,
        type: "o",
        status: "pending",
        queued: true,
      });

      // The head of the queue leaves: everyone moves up.
      expect((await claimOne(ctx.store, now)).id).toBe(b.id);
      expect((await pos(c.id)).position).toBe(1);
      expect((await pos(d.id)).position).toBe(3);
    });

    it("counts a due retrying task as queued", async () => {
      const a = newTask();
      await insert(ctx.store, a);
      await settle(ctx.store, T0 + 1, fail(await claimOne(ctx.store, T0), "e", T0 + 10));
      expect(await ctx.store.queuePosition(a.id, T0 + 10)).toEqual({
        position: 1,
        type: "t",
        status: "retrying",
        queued: true,
      });
    });

    it("reports running, ended, delayed and blocked tasks as not queued, and unknown ids as null", async () => {
      const running = newTask();
      const done = newTask();
      const delayed = newTask({ runAt: T0 + 1_000 });
      const blocked = newTask({ dependsOn: [running.id] });
      const backingOff = newTask({ type: "b" });
      await insert(ctx.store, running, done, delayed, blocked, backingOff);
      const cs = new Map((await claim(ctx.store, T0, { limit: 2 })).map((c) => [c.id, c]));
      await settle(ctx.store, T0, complete(cs.get(done.id)!));
      await settle(
        ctx.store,
        T0 + 1,
        fail(await claimOne(ctx.store, T0, { types: ["b"] }), "e", T0 + 500),
      );

      const now = T0 + 10;
      expect(await ctx.store.queuePosition(running.id, now)).toEqual({
        position: 0,
        type: "t",
        status: "running",
        queued: false,
      });
      expect(await ctx.store.queuePosition(done.id, now)).toMatchObject({
        position: 0,
        status: "completed",
        queued: false,
      });
      expect(await ctx.store.queuePosition(blocked.id, now)).toMatchObject({
        position: 0,
        status: "pending",
        queued: false,
      });
      expect(await ctx.store.queuePosition(delayed.id, now)).toMatchObject({
        position: 0,
        status: "pending",
        queued: false,
      });
      expect(await ctx.store.queuePosition(backingOff.id, now)).toMatchObject({
        position: 0,
        status: "retrying",
        queued: false,
      });
      expect(await ctx.store.queuePosition("no-such-task", now)).toBeNull();
      // Once due, the delayed task is queued.
      expect(await ctx.store.queuePosition(delayed.id, T0 + 1_000)).toMatchObject({
        position: 1,
        queued: true,
      });
    });
  });

  describe("purge", () => {
    /** One task in each status, ended at T0 + 10 where terminal. */
    const everyStatus = async () => {
      const types = [
        "completed",
        "failed",
        "failed_crash",
        "cancelled",
        "pending",
        "running",
        "claimed",
        "retrying",
      ];
      const t = Object.fromEntries(
        types.map((s) => [s, newTask({ type: s, leaseMs: s === "failed_crash" ? 1 : 1_000_000 })]),
      );
      await insert(ctx.store, ...Object.values(t));
      const now = T0 + 10;
      await settle(
        ctx.store,
        now,
        complete(await claimOne(ctx.store, T0, { types: ["completed"] })),
      );
      await settle(ctx.store, now, fail(await claimOne(ctx.store, T0, { types: ["failed"] }), "e"));
      await claimOne(ctx.store, T0, { types: ["failed_crash"] });
      expect(await ctx.store.rescueExpired(now, 10)).toHaveLength(1);
      await ctx.store.cancel({ ids: [t.cancelled!.id] }, "x", now);
      await claimOne(ctx.store, T0, { types: ["running"] });
      await ctx.store.claimForAgent({ agent: "bot", types: ["claimed"], max: 1, now: T0 });
      await settle(
        ctx.store,
        now,
        fail(await claimOne(ctx.store, T0, { types: ["retrying"] }), "e", T0 + 1),
      );
      for (const [s, task] of Object.entries(t)) expect(await statusOf(ctx.store, task.id)).toBe(s);
      return t;
    };

    it("deletes only terminal tasks of the given statuses that ended before the cutoff", async () => {
      const t = await everyStatus();
      expect(
        await ctx.store.purge(T0 + 10, ["completed", "failed", "failed_crash", "cancelled"]),
      ).toBe(0);
      expect(await ctx.store.purge(T0 + 11, ["completed", "failed"])).toBe(2);
      expect(await ctx.store.getTask(t.completed!.id)).toBeNull();
      expect(await ctx.store.getTask(t.failed!.id)).toBeNull();
      expect(await statusOf(ctx.store, t.failed_crash!.id)).toBe("failed_crash");
      expect(
        await ctx.store.purge(T0 + 11, ["completed", "failed", "failed_crash", "cancelled"]),
      ).toBe(2);
      expect(await ctx.store.countTasks({})).toBe(4);
      expect(await ctx.store.purge(T0 + 1_000_000, [])).toBe(0);
    });

    it("never deletes unfinished tasks, even when asked for their status", async () => {
      await everyStatus();
      expect(
        await ctx.store.purge(T0 + 1_000_000, ["pending", "claimed", "running", "retrying"]),
      ).toBe(0);
      expect(await ctx.store.countTasks({})).toBe(8);
    });

    it("purges tasks created cancelled (dependency already failed)", async () => {
      const a = newTask();
      await insert(ctx.store, a);
      await settle(ctx.store, T0 + 1, fail(await claimOne(ctx.store, T0), "e"));
      const b = newTask({ dependsOn: [a.id], createdAt: T0 + 5 });
      await ctx.store.insertTasks([b]);
      expect(await ctx.store.purge(T0 + 100, ["cancelled"])).toBe(1);
      expect(await ctx.store.getTask(b.id)).toBeNull();
    });

    it("a purged task no longer exists as a dependency", async () => {
      const a = newTask();
      await insert(ctx.store, a);
      await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0)));
      expect(await ctx.store.purge(T0 + 2, ["completed"])).toBe(1);
      await expect(ctx.store.insertTasks([newTask({ dependsOn: [a.id] })])).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it("cleans dependency edges: a new task reusing a purged id has no dependents", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      await insert(ctx.store, a, b);
      await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0)));
      // a is purged; b (its dependent, now unblocked) stays.
      expect(await ctx.store.purge(T0 + 2, ["completed"])).toBe(1);
      // A new task with a's id: failing it must not reach b through a stale edge.
      const again = newTask({ id: a.id, type: "again", createdAt: T0 + 3, runAt: T0 + 3 });
      await insert(ctx.store, again);
      const c = await claimOne(ctx.store, T0 + 3, { types: ["again"] });
      const [out] = await settle(ctx.store, T0 + 4, fail(c, "fatal"));
      expect(out).toMatchObject({ ok: true, status: "failed", cascade: [] });
      expect(await statusOf(ctx.store, b.id)).toBe("pending");
      // Even once the new task has dependents of its own, only those are reached.
      const third = newTask({ id: a.id, type: "third", createdAt: T0 + 5, runAt: T0 + 5 });
      await expect(ctx.store.insertTasks([third])).rejects.toBeInstanceOf(ValidationError);
      expect(await ctx.store.purge(T0 + 5, ["failed"])).toBe(1);
      await insert(ctx.store, third);
      const child = newTask({ dependsOn: [a.id], createdAt: T0 + 5 });
      await insert(ctx.store, child);
      const c3 = await claimOne(ctx.store, T0 + 5, { types: ["third"] });
      const [out3] = await settle(ctx.store, T0 + 6, fail(c3, "fatal"));
      expect(out3!.cascade.map((x) => x.id)).toEqual([child.id]);
      expect(await statusOf(ctx.store, b.id)).toBe("pending");
      // And a dependent's own edges go with it: cancelling a task after its dependent was purged is fine.
      const x = newTask();
      const y = newTask({ dependsOn: [x.id] });
      await insert(ctx.store, x, y);
      await ctx.store.cancel({ ids: [y.id] }, "drop", T0 + 5);
      expect(await ctx.store.purge(T0 + 6, ["cancelled"])).toBe(1);
      expect(await ctx.store.cancel({ ids: [x.id] }, "drop", T0 + 7)).toMatchObject([{ id: x.id }]);
    });

    it("purges large backlogs completely (many batches)", async () => {
      const n = 5_100;
      await ctx.store.insertTasks(Array.from({ length: n }, () => newTask()));
      await insert(ctx.store, newTask({ type: "keep" }));
      expect(await ctx.store.cancel({ filter: { type: "t" } }, "bulk", T0 + 1)).toHaveLength(n);
      expect(await ctx.store.purge(T0 + 2, ["cancelled"])).toBe(n);
      expect(await ctx.store.countTasks({})).toBe(1);
    });
  });

  describe("lifecycle", () => {
    it("names its dialect and capabilities", () => {
      expect(typeof ctx.store.dialect).toBe("string");
      expect(ctx.store.dialect.length).toBeGreaterThan(0);
      expect(typeof ctx.store.capabilities.multiProcess).toBe("boolean");
      expect(typeof ctx.store.capabilities.transactionalEnqueue).toBe("boolean");
    });

    it("migrate() is idempotent and keeps the data", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      await ctx.store.migrate();
      await ctx.store.migrate();
      expect(await statusOf(ctx.store, t.id)).toBe("pending");
      expect(await ctx.store.countTasks({})).toBe(1);
    });

    it("close() is idempotent", async () => {
      await ctx.store.close();
      await ctx.store.close();
    });

    it("close() with a change listener attached; unsubscribing afterwards is harmless", async () => {
      let calls = 0;
      const unsubscribe = ctx.store.onExternalChange(() => calls++);
      await ctx.store.close();
      unsubscribe();
      unsubscribe();
      expect(calls).toBe(0);
    });
  });
}
