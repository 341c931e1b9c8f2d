import { describe, expect, it } from "vitest";
import { MINUTE_MS } from "../stats.js";
import {
  T0,
  claimOne,
  complete,
  fail,
  insert,
  newTask,
  settle,
  type StoreContext,
} from "./fixtures.js";

/** `taskStats` and tenant-scoped `purge`. */
export function statsSuite(ctx: StoreContext): void {
  const minute = (t: number) => Math.floor(t / MINUTE_MS) * MINUTE_MS;

  /** Tenant "a": one task in most statuses, ended across two minutes; tenant "b": one completed. */
  const seed = async () => {
    const t = {
      old: newTask({ type: "old", runAt: T0 - 4 * 3_600_000 }),
      done1: newTask({ type: "done1" }),
      done2: newTask({ type: "done2", project: "p2" }),
      failed: newTask({ type: "failed" }),
      crashed: newTask({ type: "crashed", leaseMs: 1 }),
      cancelled: newTask({ type: "cancelled" }),
      pending: newTask({ type: "pending" }),
      other: newTask({ type: "other", tenant: "b" }),
    };
    for (const [k, task] of Object.entries(t)) if (k !== "other") task.tenant = "a";
    await insert(ctx.store, ...Object.values(t));
    const ended = (type: string, at: number) => claimOne(ctx.store, at - 1, { types: [type] });
    await settle(ctx.store, T0 - 3 * 3_600_000, complete(await ended("old", T0 - 3 * 3_600_000)));
    await settle(ctx.store, T0 + 10, complete(await ended("done1", T0 + 10)));
    await settle(ctx.store, T0 + MINUTE_MS, complete(await ended("done2", T0 + MINUTE_MS)));
    await settle(ctx.store, T0 + MINUTE_MS, fail(await ended("failed", T0 + MINUTE_MS), "e"));
    await claimOne(ctx.store, T0, { types: ["crashed"] });
    expect(await ctx.store.rescueExpired(T0 + MINUTE_MS, 10)).toHaveLength(1);
    await ctx.store.cancel({ ids: [t.cancelled.id] }, "x", T0 + 10);
    await settle(ctx.store, T0 + 10, complete(await ended("other", T0 + 10)));
    return t;
  };

  describe("taskStats", () => {
    it("counts tasks by status, scoped to a tenant and project", async () => {
      await seed();
      const all = await ctx.store.taskStats({ since: 0 });
      expect(all.counts).toMatchObject({
        completed: 4,
        failed: 1,
        failed_crash: 1,
        cancelled: 1,
        pending: 1,
      });
      const a = await ctx.store.taskStats({ tenant: "a", since: 0 });
      expect(a.counts).toMatchObject({ completed: 3, failed: 1, failed_crash: 1, pending: 1 });
      expect(a.counts.running ?? 0).toBe(0);
      const p2 = await ctx.store.taskStats({ tenant: "a", project: "p2", since: 0 });
      expect(p2.counts).toEqual({ completed: 1 });
      expect(await ctx.store.taskStats({ tenant: "nobody", since: 0 })).toEqual({
        counts: {},
        throughput: [],
      });
    });

    it("buckets completed and failed (with failed_crash) tasks per minute since a time", async () => {
      await seed();
      const a = await ctx.store.taskStats({ tenant: "a", since: minute(T0) });
      expect(a.throughput).toEqual([
        { at: minute(T0), completed: 1, failed: 0 },
        { at: minute(T0 + MINUTE_MS), completed: 1, failed: 2 },
      ]);
      const later = await ctx.store.taskStats({ tenant: "a", since: minute(T0) + MINUTE_MS });
      expect(later.throughput).toEqual([{ at: minute(T0 + MINUTE_MS), completed: 1, failed: 2 }]);
      const all = await ctx.store.taskStats({ since: minute(T0) });
      expect(all.throughput[0]).toEqual({ at: minute(T0), completed: 2, failed: 0 });
    });
  });

  describe("purge with a scope", () => {
    it("deletes only the scope's terminal tasks", async () => {
      const t = await seed();
      const terminal = ["completed", "failed", "failed_crash", "cancelled"] as const;
      expect(await ctx.store.purge(T0 + 2 * MINUTE_MS, [...terminal], { tenant: "nobody" })).toBe(
        0,
      );
      expect(
        await ctx.store.purge(T0 + 2 * MINUTE_MS, [...terminal], { tenant: "a", project: "p2" }),
      ).toBe(1);
      expect(await ctx.store.getTask(t.done2.id)).toBeNull();
      expect(await ctx.store.purge(T0 + 2 * MINUTE_MS, [...terminal], { tenant: "a" })).toBe(5);
      expect(await ctx.store.getTask(t.other.id)).not.toBeNull();
      expect(await ctx.store.getTask(t.pending.id)).not.toBeNull();
      expect(await ctx.store.countTasks({})).toBe(2);
    });
  });
}
