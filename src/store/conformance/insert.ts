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
  sorted,
  type StoreContext,
} from "./fixtures.js";

export function insertSuite(ctx: StoreContext): void {
  describe("insertTasks", () => {
    it("creates pending tasks and reports one outcome per task, in order", async () => {
      const a = newTask();
      const b = newTask({ type: "other" });
      const outcomes = await ctx.store.insertTasks([a, b]);
      expect(outcomes).toEqual([
        { id: a.id, created: true, status: "pending", error: null },
        { id: b.id, created: true, status: "pending", error: null },
      ]);
      expect((await mustGet(ctx.store, a.id)).status).toBe("pending");
      expect((await mustGet(ctx.store, b.id)).type).toBe("other");
      expect(await ctx.store.countTasks({})).toBe(2);
    });

    it("accepts an empty batch", async () => {
      expect(await ctx.store.insertTasks([])).toEqual([]);
      expect(await ctx.store.countTasks({})).toBe(0);
    });

    it("round-trips every field of a new task", async () => {
      const t = newTask({
        type: "email.send",
        input: JSON.stringify({ to: "a@example.com", n: [1, 2, { x: null }] }),
        tenant: "acme",
        project: "web",
        caller: "user-7",
        priority: 3,
        lane: "llm",
        labels: { env: "prod", "app.kubernetes.io/name": "mailer" },
        metadata: { source: "signup", nested: { ok: true } },
        maxRetries: 5,
        backoff: { baseMs: 10, maxMs: 1000, factor: 3, jitter: 0 },
        crashPolicy: "retry",
        maxCrashes: 7,
        leaseMs: 12_345,
        timeoutMs: 9_000,
        runAt: T0 + 5_000,
        idempotencyKey: "key-1",
        requestId: "req-1",
        workflowId: "wf-1",
        traceContext: { traceparent: "00-abc-def-01" },
        createdAt: T0 - 10,
      });
      await insert(ctx.store, t);
      const got = await mustGet(ctx.store, t.id);
      expect(got).toMatchObject({
        id: t.id,
        type: "email.send",
        status: "pending",
        input: { to: "a@example.com", n: [1, 2, { x: null }] },
        result: null,
        error: null,
        tenant: "acme",
        project: "web",
        caller: "user-7",
        priority: 3,
        lane: "llm",
        labels: { env: "prod", "app.kubernetes.io/name": "mailer" },
        metadata: { source: "signup", nested: { ok: true } },
        attempt: 0,
        attemptId: null,
        maxRetries: 5,
        progress: null,
        progressNote: null,
        dependsOn: [],
        idempotencyKey: "key-1",
        requestId: "req-1",
        workflowId: "wf-1",
        engineName: null,
        timeoutMs: 9_000,
        crashPolicy: "retry",
        crashCount: 0,
        maxCrashes: 7,
        leaseMs: 12_345,
        leaseExpiresAt: null,
        startedAt: null,
        completedAt: null,
      });
      expect(got.runAt.getTime()).toBe(T0 + 5_000);
      expect(got.createdAt.getTime()).toBe(T0 - 10);
      expect(got.updatedAt).toBeInstanceOf(Date);
    });

    it("reads absent JSON fields back as null input, empty labels and empty metadata", async () => {
      const t = newTask();
      await insert(ctx.store, t);
      const got = await mustGet(ctx.store, t.id);
      expect(got.input).toBeNull();
      expect(got.labels).toEqual({});
      expect(got.metadata).toEqual({});
      expect(got.dependsOn).toEqual([]);
    });

    it("returns null for an unknown id", async () => {
      expect(await ctx.store.getTask("no-such-task")).toBeNull();
    });

    describe("dependencies", () => {
      it("throws ValidationError for an unknown dependency and inserts nothing from the batch", async () => {
        const ok = newTask();
        const bad = newTask({ dependsOn: ["no-such-task"] });
        await expect(ctx.store.insertTasks([ok, bad])).rejects.toBeInstanceOf(ValidationError);
        expect(await ctx.store.getTask(ok.id)).toBeNull();
        expect(await ctx.store.getTask(bad.id)).toBeNull();
        expect(await ctx.store.countTasks({})).toBe(0);
        // Nothing half-written: the same ids can be inserted afterwards.
        await insert(ctx.store, ok);
      });

      it("rejects a dependency on a task of another tenant (it does not exist in the task's tenant)", async () => {
        const other = newTask({ tenant: "t1" });
        await insert(ctx.store, other);
        const t = newTask({ tenant: "t2", dependsOn: [other.id] });
        await expect(ctx.store.insertTasks([t])).rejects.toBeInstanceOf(ValidationError);
        expect(await ctx.store.getTask(t.id)).toBeNull();
      });

      it("blocks a task until every dependency completed", async () => {
        const a = newTask();
        const b = newTask();
        await insert(ctx.store, a, b);
        const c = newTask({ dependsOn: [a.id, b.id] });
        const [outcome] = await insert(ctx.store, c);
        expect(outcome!.status).toBe("pending");
        expect((await mustGet(ctx.store, c.id)).dependsOn).toEqual([a.id, b.id]);

        const first = await claim(ctx.store, T0);
        expect(sorted(first.map((x) => x.id))).toEqual(sorted([a.id, b.id]));
        const byId = new Map(first.map((x) => [x.id, x]));
        await settle(ctx.store, T0 + 1, complete(byId.get(a.id)!));
        expect(await claim(ctx.store, T0 + 2)).toEqual([]);
        const [out] = await settle(ctx.store, T0 + 3, complete(byId.get(b.id)!));
        expect(out).toMatchObject({ ok: true, status: "completed", cascade: [] });
        expect((await claimOne(ctx.store, T0 + 4)).id).toBe(c.id);
      });

      it("accepts a dependency that comes earlier in the same batch", async () => {
        const a = newTask();
        const b = newTask({ dependsOn: [a.id] });
        await insert(ctx.store, a, b);
        const claimed = await claim(ctx.store, T0);
        expect(claimed.map((x) => x.id)).toEqual([a.id]);
      });

      it("rejects a dependency that comes later in the same batch, inserting nothing", async () => {
        const b = newTask();
        const a = newTask({ dependsOn: [b.id] });
        await expect(ctx.store.insertTasks([a, b])).rejects.toBeInstanceOf(ValidationError);
        expect(await ctx.store.countTasks({})).toBe(0);
      });

      it("does not block on a dependency that already completed", async () => {
        const a = newTask();
        await insert(ctx.store, a);
        await settle(ctx.store, T0, complete(await claimOne(ctx.store, T0)));
        const b = newTask({ dependsOn: [a.id] });
        const [outcome] = await insert(ctx.store, b);
        expect(outcome).toEqual({ id: b.id, created: true, status: "pending", error: null });
        expect((await claimOne(ctx.store, T0 + 1)).id).toBe(b.id);
      });

      for (const end of ["failed", "cancelled", "failed_crash"] as const) {
        it(`creates a task cancelled, with a reason, when a dependency already ended ${end}`, async () => {
          const a = newTask({ crashPolicy: "fail", leaseMs: 1_000 });
          await insert(ctx.store, a);
          if (end === "failed") {
            await settle(ctx.store, T0, fail(await claimOne(ctx.store, T0), "boom"));
          } else if (end === "cancelled") {
            await ctx.store.cancel({ ids: [a.id] }, "stop", T0);
          } else {
            await claimOne(ctx.store, T0);
            await ctx.store.rescueExpired(T0 + 5_000, 10);
          }
          expect((await mustGet(ctx.store, a.id)).status).toBe(end);

          const b = newTask({ dependsOn: [a.id], createdAt: T0 + 10 });
          const c = newTask({ dependsOn: [b.id], createdAt: T0 + 10 });
          const outcomes = await ctx.store.insertTasks([b, c]);
          expect(outcomes[0]).toMatchObject({ id: b.id, created: true, status: "cancelled" });
          expect(outcomes[0]!.error).toEqual(expect.stringContaining(a.id));
          // Transitively: a dependency created cancelled cancels its own dependents.
          expect(outcomes[1]).toMatchObject({ id: c.id, created: true, status: "cancelled" });
          expect(outcomes[1]!.error).toEqual(expect.any(String));

          const got = await mustGet(ctx.store, b.id);
          expect(got.status).toBe("cancelled");
          expect(got.error).toBe(outcomes[0]!.error);
          expect(got.completedAt).not.toBeNull();
          expect(await claim(ctx.store, T0 + 20)).toEqual([]);
        });
      }
    });

    it("counts a dependency named twice once", async () => {
      const a = newTask();
      const b = newTask({ dependsOn: [a.id, a.id] });
      await insert(ctx.store, a, b);
      await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0)));
      expect((await claimOne(ctx.store, T0 + 2)).id).toBe(b.id);
    });

    it.runIf(ctx.transaction !== undefined)(
      "inserts inside the caller's transaction: committed with it, or rolled back with it",
      async () => {
        const inTx = ctx.transaction!;
        expect(ctx.store.capabilities.transactionalEnqueue).toBe(true);
        const kept = newTask({ type: "tx-kept" });
        const dropped = newTask({ type: "tx-dropped" });
        await inTx(ctx.store, "commit", (tx) => ctx.store.insertTasks([kept], tx));
        await inTx(ctx.store, "rollback", (tx) => ctx.store.insertTasks([dropped], tx));
        expect((await mustGet(ctx.store, kept.id)).status).toBe("pending");
        expect(await ctx.store.getTask(dropped.id)).toBeNull();
        expect(await ctx.store.countTasks({})).toBe(1);
        // The rolled-back type is still found by a claim across types once really submitted.
        const again = newTask({ type: "tx-dropped" });
        await insert(ctx.store, again);
        const peer = ctx.hasPeer ? await ctx.peer() : ctx.store;
        const claimed: string[] = [];
        for (let i = 0; i < 3; i++) {
          const got = await peer.claimForAgent({ agent: "a", max: 5, now: T0 });
          if (got) claimed.push(got.id);
        }
        expect(sorted(claimed)).toEqual(sorted([kept.id, again.id]));
      },
    );

    describe("idempotency keys", () => {
      it("returns the existing task with created: false for the same key in the same tenant", async () => {
        const first = newTask({ idempotencyKey: "k", tenant: "acme" });
        await insert(ctx.store, first);
        const again = newTask({ idempotencyKey: "k", tenant: "acme", input: '"different"' });
        const [outcome] = await ctx.store.insertTasks([again]);
        expect(outcome).toEqual({ id: first.id, created: false, status: "pending", error: null });
        expect(await ctx.store.getTask(again.id)).toBeNull();
        expect(await ctx.store.countTasks({})).toBe(1);
        expect((await mustGet(ctx.store, first.id)).input).toBeNull();
      });

      it("reports the existing task's current status", async () => {
        const first = newTask({ idempotencyKey: "k" });
        await insert(ctx.store, first);
        await settle(ctx.store, T0, complete(await claimOne(ctx.store, T0), { done: true }));
        const [outcome] = await ctx.store.insertTasks([newTask({ idempotencyKey: "k" })]);
        expect(outcome).toMatchObject({ id: first.id, created: false, status: "completed" });
      });

      it("creates a new task for the same key in another tenant", async () => {
        const a = newTask({ idempotencyKey: "k", tenant: "t1" });
        const b = newTask({ idempotencyKey: "k", tenant: "t2" });
        const outcomes = await ctx.store.insertTasks([a, b]);
        expect(outcomes.map((o) => [o.id, o.created])).toEqual([
          [a.id, true],
          [b.id, true],
        ]);
        expect(await ctx.store.countTasks({})).toBe(2);
      });

      it("deduplicates the same key within one batch", async () => {
        const a = newTask({ idempotencyKey: "k" });
        const b = newTask({ idempotencyKey: "k" });
        const c = newTask({ idempotencyKey: "other" });
        const outcomes = await ctx.store.insertTasks([a, b, c]);
        expect(outcomes.map((o) => [o.id, o.created])).toEqual([
          [a.id, true],
          [a.id, false],
          [c.id, true],
        ]);
        expect(await ctx.store.countTasks({})).toBe(2);
      });

      it("is all or nothing together with a failing task in the batch", async () => {
        const a = newTask({ idempotencyKey: "k" });
        const bad = newTask({ dependsOn: ["no-such-task"] });
        await expect(ctx.store.insertTasks([a, bad])).rejects.toBeInstanceOf(ValidationError);
        expect(await ctx.store.countTasks({})).toBe(0);
        // The key was not taken by the rolled-back batch.
        const [outcome] = await ctx.store.insertTasks([a]);
        expect(outcome).toMatchObject({ id: a.id, created: true });
      });
    });
  });
}
