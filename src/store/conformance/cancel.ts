import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.js";
import {
  T0,
  claim,
  claimOne,
  complete,
  insert,
  mustGet,
  newTask,
  settle,
  sorted,
  statusOf,
  type StoreContext,
} from "./fixtures.js";

export function cancelSuite(ctx: StoreContext): void {
  describe("cancel", () => {
    it("cancels pending tasks by id with the reason, and reports each change", async () => {
      const a = newTask({ tenant: "acme", project: "p", requestId: "r", workflowId: "w" });
      const b = newTask({ runAt: T0 + 60_000 });
      const keep = newTask();
      await insert(ctx.store, a, b, keep);
      const changes = await ctx.store.cancel({ ids: [a.id, b.id] }, "user asked", T0 + 5);
      expect(sorted(changes.map((c) => c.id))).toEqual(sorted([a.id, b.id]));
      expect(changes.find((c) => c.id === a.id)).toEqual({
        id: a.id,
        type: "t",
        tenant: "acme",
        project: "p",
        requestId: "r",
        workflowId: "w",
        attempt: 0,
        status: "cancelled",
        error: "user asked",
      });
      const row = await mustGet(ctx.store, a.id);
      expect(row).toMatchObject({ status: "cancelled", error: "user asked" });
      expect(row.completedAt?.getTime()).toBe(T0 + 5);
      expect(await statusOf(ctx.store, keep.id)).toBe("pending");
      expect((await claim(ctx.store, T0 + 60_000)).map((c) => c.id)).toEqual([keep.id]);
    });

    it("cancels claimed, running and retrying tasks and fences their attempts off", async () => {
      const running = newTask({ type: "r" });
      const claimedT = newTask({ type: "c" });
      const retrying = newTask({ type: "x" });
      await insert(ctx.store, running, claimedT, retrying);
      const cr = await claimOne(ctx.store, T0, { types: ["r"] });
      const cc = await ctx.store.claimForAgent({ agent: "bot", types: ["c"], max: 1, now: T0 });
      const cx = await claimOne(ctx.store, T0, { types: ["x"] });
      await settle(ctx.store, T0 + 1, {
        kind: "fail",
        id: cx.id,
        attemptId: cx.attemptId,
        error: "e",
        retryAt: T0 + 100,
      });

      const changes = await ctx.store.cancel(
        { ids: [running.id, claimedT.id, retrying.id] },
        "stop",
        T0 + 2,
      );
      expect(sorted(changes.map((c) => c.id))).toEqual(
        sorted([running.id, claimedT.id, retrying.id]),
      );
      for (const id of [running.id, claimedT.id, retrying.id]) {
        expect(await mustGet(ctx.store, id)).toMatchObject({
          status: "cancelled",
          leaseExpiresAt: null,
        });
      }
      expect((await settle(ctx.store, T0 + 3, complete(cr)))[0]).toMatchObject({
        ok: false,
        status: "cancelled",
      });
      expect(
        await ctx.store.touch({ id: claimedT.id, attemptId: cc!.attemptId!, now: T0 + 3 }),
      ).toEqual({
        ok: false,
        status: "cancelled",
      });
      expect(
        await ctx.store.heartbeatMany([{ id: cr.id, attemptId: cr.attemptId }], T0 + 3),
      ).toEqual([cr.id]);
      expect(await ctx.store.rescueExpired(T0 + 1_000_000, 10)).toEqual([]);
      expect(await claim(ctx.store, T0 + 1_000, { types: ["r", "c", "x"] })).toEqual([]);
    });

    it("leaves terminal and unknown tasks alone", async () => {
      const done = newTask();
      await insert(ctx.store, done);
      await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0), "r"));
      expect(await ctx.store.cancel({ ids: [done.id, "no-such-task"] }, "late", T0 + 2)).toEqual(
        [],
      );
      expect(await mustGet(ctx.store, done.id)).toMatchObject({
        status: "completed",
        error: null,
        result: "r",
      });
      expect(await ctx.store.cancel({ ids: [] }, "nothing", T0)).toEqual([]);
    });

    it("cancelling twice changes nothing the second time", async () => {
      const a = newTask();
      await insert(ctx.store, a);
      expect(await ctx.store.cancel({ ids: [a.id] }, "first", T0)).toHaveLength(1);
      expect(await ctx.store.cancel({ ids: [a.id] }, "second", T0 + 1)).toEqual([]);
      expect((await mustGet(ctx.store, a.id)).error).toBe("first");
    });

    it("cancels dependents transitively, each reported once, with a reason naming the dependency", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      const c = newTask({ dependsOn: [a.id] });
      const d = newTask({ dependsOn: [b.id, c.id] });
      const e = newTask({ dependsOn: [d.id] });
      const other = newTask();
      await insert(ctx.store, a, b, c, d, e, other);
      const changes = await ctx.store.cancel({ ids: [a.id] }, "abort", T0 + 1);
      expect(sorted(changes.map((x) => x.id))).toEqual(sorted([a.id, b.id, c.id, d.id, e.id]));
      expect(changes.find((x) => x.id === a.id)?.error).toBe("abort");
      expect(changes.find((x) => x.id === b.id)?.error).toEqual(expect.stringContaining(a.id));
      for (const x of changes) expect(x.status).toBe("cancelled");
      for (const id of [b.id, c.id, d.id, e.id])
        expect(await statusOf(ctx.store, id)).toBe("cancelled");
      expect(await statusOf(ctx.store, other.id)).toBe("pending");
    });

    it("reports each task once when a task and its dependent are both named", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id] });
      const c = newTask({ dependsOn: [b.id] });
      await insert(ctx.store, a, b, c);
      const changes = await ctx.store.cancel({ ids: [b.id, a.id] }, "both", T0);
      expect(sorted(changes.map((x) => x.id))).toEqual(sorted([a.id, b.id, c.id]));
    });

    it("cascades only to dependents still waiting (finished ones keep their status)", async () => {
      const a = newTask({ type: "a" });
      const b = newTask({ type: "b" });
      await insert(ctx.store, a, b);
      const c = newTask({ dependsOn: [a.id, b.id] });
      await insert(ctx.store, c);
      await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0, { types: ["a"] })));
      const changes = await ctx.store.cancel({ ids: [a.id, b.id] }, "x", T0 + 2);
      expect(sorted(changes.map((x) => x.id))).toEqual(sorted([b.id, c.id]));
      expect(await statusOf(ctx.store, a.id)).toBe("completed");
    });

    describe("by filter", () => {
      it("cancels every non-terminal match (with their dependents) and nothing else", async () => {
        const p1Pending = newTask({ project: "p1", type: "a" });
        const p1Running = newTask({ project: "p1", type: "b" });
        const p1Done = newTask({ project: "p1", type: "c" });
        const p2Pending = newTask({ project: "p2" });
        const p2Dependent = newTask({ project: "p2", dependsOn: [p1Pending.id] });
        const otherTenant = newTask({ tenant: "t2", project: "p1" });
        await insert(ctx.store, p1Pending, p1Running, p1Done, p2Pending, p2Dependent, otherTenant);
        const running = await claimOne(ctx.store, T0, { types: ["b"] });
        await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0, { types: ["c"] })));

        const changes = await ctx.store.cancel(
          { filter: { tenant: "default", project: "p1" } },
          "project gone",
          T0 + 2,
        );
        expect(sorted(changes.map((x) => x.id))).toEqual(
          sorted([p1Pending.id, p1Running.id, p2Dependent.id]),
        );
        expect(await statusOf(ctx.store, p1Done.id)).toBe("completed");
        expect(await statusOf(ctx.store, p2Pending.id)).toBe("pending");
        expect(await statusOf(ctx.store, otherTenant.id)).toBe("pending");
        expect((await settle(ctx.store, T0 + 3, complete(running)))[0]!.ok).toBe(false);
      });

      it("honours status, type, lane, caller, labels and workflowId", async () => {
        const a = newTask({
          type: "x",
          lane: "l",
          caller: "alice",
          labels: { k: "v", z: "1" },
          workflowId: "w1",
        });
        const b = newTask({
          type: "x",
          lane: "l",
          caller: "alice",
          labels: { k: "v" },
          workflowId: "w2",
        });
        const c = newTask({ type: "y", lane: "l", caller: "bob", labels: { k: "other" } });
        const d = newTask({ type: "x", runAt: T0 + 1_000 });
        await insert(ctx.store, a, b, c, d);
        expect(
          (await ctx.store.cancel({ filter: { workflowId: "w1" } }, "r", T0)).map((x) => x.id),
        ).toEqual([a.id]);
        expect(
          (await ctx.store.cancel({ filter: { labels: { k: "other" } } }, "r", T0)).map(
            (x) => x.id,
          ),
        ).toEqual([c.id]);
        expect(await ctx.store.cancel({ filter: { caller: "bob" } }, "r", T0)).toEqual([]);
        expect(
          await ctx.store.cancel({ filter: { status: ["running", "retrying"] } }, "r", T0),
        ).toEqual([]);
        expect(
          (await ctx.store.cancel({ filter: { type: "x", lane: "l" } }, "r", T0)).map((x) => x.id),
        ).toEqual([b.id]);
        expect(await statusOf(ctx.store, d.id)).toBe("pending");
        expect(
          (await ctx.store.cancel({ filter: { status: "pending" } }, "r", T0)).map((x) => x.id),
        ).toEqual([d.id]);
      });

      it("ignores paging fields and cancels every match", async () => {
        for (let i = 0; i < 5; i++) await insert(ctx.store, newTask());
        const first = (await ctx.store.listTasks({ limit: 2 })).nextCursor;
        expect(first).not.toBeNull();
        const changes = await ctx.store.cancel({ filter: { limit: 2, cursor: first! } }, "all", T0);
        expect(changes).toHaveLength(5);
      });

      it("rejects an unknown status with ValidationError", async () => {
        await insert(ctx.store, newTask());
        await expect(
          ctx.store.cancel({ filter: { status: "nope" as unknown as "pending" } }, "r", T0),
        ).rejects.toBeInstanceOf(ValidationError);
        expect(await ctx.store.countTasks({ status: "pending" })).toBe(1);
      });
    });
  });
}
