import { describe, expect, it } from "vitest";
import type { NewFlow } from "../flows.js";
import type { NewTask } from "../store.js";
import {
  T0,
  claimOne,
  complete,
  fail,
  insert,
  newTask,
  nextId,
  settle,
  statusOf,
  type StoreContext,
} from "./fixtures.js";

/** A flow of `a`, `b` (after `a`) and `c` (independent), in dependency order. */
function threeTasks(tenant = "default"): { flow: NewFlow; tasks: NewTask[] } {
  const a = newTask({ tenant });
  const b = newTask({ tenant, dependsOn: [a.id] });
  const c = newTask({ tenant });
  const flow: NewFlow = {
    id: nextId("flow"),
    name: "three",
    tenant,
    project: "default",
    createdAt: T0,
    tasks: [
      { key: "a", taskId: a.id, type: "t", dependsOn: [] },
      { key: "b", taskId: b.id, type: "t", dependsOn: ["a"] },
      { key: "c", taskId: c.id, type: "t", dependsOn: [] },
    ],
  };
  return { flow, tasks: [a, b, c] };
}

export function flowSuite(ctx: StoreContext): void {
  describe("flows", () => {
    it("inserts a flow and its tasks together and reads it back, running", async () => {
      const { flow, tasks } = threeTasks();
      const outcomes = await ctx.store.flows.insertFlow(flow, tasks);
      expect(outcomes.map((o) => [o.id, o.created, o.status])).toEqual(
        tasks.map((t) => [t.id, true, "pending"]),
      );
      const row = await ctx.store.flows.getFlow(flow.id);
      expect(row).toEqual({
        id: flow.id,
        name: "three",
        status: "running",
        tenant: "default",
        project: "default",
        createdAt: T0,
        completedAt: null,
        tasks: flow.tasks.map((t) => ({ ...t, status: "pending" })),
      });
      expect(await ctx.store.flows.flowOfTask(tasks[1]!.id)).toBe(flow.id);
      expect(await ctx.store.flows.flowOfTask("other")).toBeNull();
      expect(await ctx.store.flows.getFlow("missing")).toBeNull();
    });

    it("is all or nothing: a bad task leaves neither the flow nor any task", async () => {
      const { flow, tasks } = threeTasks();
      tasks[2] = newTask({ id: tasks[2]!.id, dependsOn: ["no-such-task"] });
      await expect(ctx.store.flows.insertFlow(flow, tasks)).rejects.toThrow(/no-such-task/);
      expect(await ctx.store.flows.getFlow(flow.id)).toBeNull();
      expect(await ctx.store.getTask(tasks[0]!.id)).toBeNull();
      expect(await ctx.store.flows.flowOfTask(tasks[0]!.id)).toBeNull();
    });

    it("derives the status from the tasks: failed, then completed and cancelled", async () => {
      const { flow, tasks } = threeTasks();
      await ctx.store.flows.insertFlow(flow, tasks);
      // a fails: b is cancelled with it (a dependency ended unsuccessfully), c still runs.
      const a = await claimOne(ctx.store, T0 + 1);
      expect(a.id).toBe(tasks[0]!.id);
      await settle(ctx.store, T0 + 2, fail(a, "bad"));
      expect(await statusOf(ctx.store, tasks[1]!.id)).toBe("cancelled");
      let row = (await ctx.store.flows.getFlow(flow.id))!;
      expect(row.status).toBe("failed");
      expect(row.completedAt).toBeNull(); // c has not ended
      const c = await claimOne(ctx.store, T0 + 3);
      await settle(ctx.store, T0 + 4, complete(c));
      row = (await ctx.store.flows.getFlow(flow.id))!;
      expect(row.status).toBe("failed");
      expect(row.completedAt).toBe(T0 + 4);
      expect(row.tasks.map((t) => t.status)).toEqual(["failed", "cancelled", "completed"]);

      const ok = threeTasks();
      await ctx.store.flows.insertFlow(ok.flow, ok.tasks);
      for (let i = 0; i < 3; i++) {
        const t = await claimOne(ctx.store, T0 + 10 + i);
        await settle(ctx.store, T0 + 20 + i, complete(t));
      }
      expect(await ctx.store.flows.getFlow(ok.flow.id)).toMatchObject({
        status: "completed",
        completedAt: T0 + 22,
      });

      const stop = threeTasks();
      await ctx.store.flows.insertFlow(stop.flow, stop.tasks);
      await ctx.store.cancel({ ids: stop.tasks.map((t) => t.id) }, "stop", T0 + 30);
      expect(await ctx.store.flows.getFlow(stop.flow.id)).toMatchObject({
        status: "cancelled",
        completedAt: T0 + 30,
      });
    });

    it("lists newest first, by status and tenant, with a cursor", async () => {
      const flows = [threeTasks(), threeTasks("acme"), threeTasks()];
      for (const f of flows) await ctx.store.flows.insertFlow(f.flow, f.tasks);
      await ctx.store.cancel({ ids: flows[0]!.tasks.map((t) => t.id) }, "stop", T0 + 1);
      const ids = (p: { items: { id: string }[] }) => p.items.map((f) => f.id);
      expect(ids(await ctx.store.flows.listFlows({}))).toEqual(
        [flows[2], flows[1], flows[0]].map((f) => f!.flow.id),
      );
      expect(ids(await ctx.store.flows.listFlows({ status: "cancelled" }))).toEqual([
        flows[0]!.flow.id,
      ]);
      expect(
        ids(await ctx.store.flows.listFlows({ status: "running", tenant: "default" })),
      ).toEqual([flows[2]!.flow.id]);
      const first = await ctx.store.flows.listFlows({ limit: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.items[0]!.tasks).toHaveLength(3);
      const second = await ctx.store.flows.listFlows({ limit: 2, cursor: first.nextCursor! });
      expect(ids(second)).toEqual([flows[0]!.flow.id]);
      expect(second.nextCursor).toBeNull();
      const byStatus = await ctx.store.flows.listFlows({ status: "running", limit: 1 });
      expect(ids(byStatus)).toEqual([flows[2]!.flow.id]);
      expect(
        ids(await ctx.store.flows.listFlows({ status: "running", cursor: byStatus.nextCursor! })),
      ).toEqual([flows[1]!.flow.id]);
    });
  });

  describe("schedules", () => {
    const base = {
      name: "nightly",
      cron: "0 3 * * *",
      timezone: "UTC",
      type: "report",
      workflow: null,
      input: '{"a":1}',
      catchUp: "last" as const,
      tenant: "default",
      project: "default",
      nextRunAt: T0 + 1000,
    };

    it("upserts: the last writer wins, an unchanged cron keeps its next tick", async () => {
      const created = await ctx.store.schedules.upsertSchedule(base, T0);
      expect(created).toEqual({
        ...base,
        lastRunAt: null,
        lastTaskId: null,
        createdAt: T0,
        updatedAt: T0,
      });
      const same = await ctx.store.schedules.upsertSchedule(
        { ...base, input: "2", nextRunAt: T0 + 5000 },
        T0 + 1,
      );
      expect(same).toMatchObject({
        input: "2",
        nextRunAt: T0 + 1000,
        createdAt: T0,
        updatedAt: T0 + 1,
      });
      const changed = await ctx.store.schedules.upsertSchedule(
        { ...base, cron: "0 4 * * *", nextRunAt: T0 + 7000 },
        T0 + 2,
      );
      expect(changed.nextRunAt).toBe(T0 + 7000);
      await ctx.store.schedules.upsertSchedule(
        { ...base, name: "a-first", tenant: "acme", nextRunAt: T0 + 500 },
        T0,
      );
      expect((await ctx.store.schedules.listSchedules({})).map((s) => s.name)).toEqual([
        "a-first",
        "nightly",
      ]);
      expect(
        (await ctx.store.schedules.listSchedules({ tenant: "acme" })).map((s) => s.name),
      ).toEqual(["a-first"]);
      expect(await ctx.store.schedules.nextScheduleAt()).toBe(T0 + 500);
      expect((await ctx.store.schedules.dueSchedules(T0 + 500, 10)).map((s) => s.name)).toEqual([
        "a-first",
      ]);
      expect(await ctx.store.schedules.dueSchedules(T0 + 499, 10)).toEqual([]);
      expect(await ctx.store.schedules.getSchedule("nope")).toBeNull();
      expect(await ctx.store.schedules.removeSchedule("a-first")).toBe(true);
      expect(await ctx.store.schedules.removeSchedule("a-first")).toBe(false);
      expect(await ctx.store.schedules.getSchedule("a-first")).toBeNull();
    });

    it("fires a tick exactly once: compare-and-set of next_run_at plus the task, together", async () => {
      await ctx.store.schedules.upsertSchedule(base, T0);
      const task = newTask({ type: "report", idempotencyKey: "loom.schedule:nightly:t1" });
      const fire = (t: NewTask) =>
        ctx.store.schedules.fireSchedule({
          name: "nightly",
          expected: T0 + 1000,
          next: T0 + 2000,
          tick: T0 + 1000,
          task: t,
          now: T0 + 1001,
        });
      const first = await fire(task);
      expect(first).toEqual({
        fired: true,
        outcome: { id: task.id, created: true, status: "pending", error: null },
      });
      // A second firing of the same tick (another process, same expectation) writes nothing.
      const again = newTask({ type: "report", idempotencyKey: "loom.schedule:nightly:t1" });
      expect(await fire(again)).toEqual({ fired: false, outcome: null });
      expect(await ctx.store.getTask(again.id)).toBeNull();
      expect(await ctx.store.schedules.getSchedule("nightly")).toMatchObject({
        nextRunAt: T0 + 2000,
        lastRunAt: T0 + 1000,
        lastTaskId: task.id,
        updatedAt: T0 + 1001,
      });
      // Skipping ticks moves next_run_at without a task.
      expect(
        await ctx.store.schedules.fireSchedule({
          name: "nightly",
          expected: T0 + 2000,
          next: T0 + 9000,
          tick: null,
          task: null,
          now: T0 + 8000,
        }),
      ).toEqual({ fired: true, outcome: null });
      expect(await ctx.store.schedules.getSchedule("nightly")).toMatchObject({
        nextRunAt: T0 + 9000,
        lastRunAt: T0 + 1000,
        lastTaskId: task.id,
      });
    });

    it("a firing whose task fails to insert writes nothing", async () => {
      await ctx.store.schedules.upsertSchedule(base, T0);
      const existing = newTask();
      await insert(ctx.store, existing);
      const clash = newTask({ id: existing.id, type: "report" });
      await expect(
        ctx.store.schedules.fireSchedule({
          name: "nightly",
          expected: T0 + 1000,
          next: T0 + 2000,
          tick: T0 + 1000,
          task: clash,
          now: T0 + 1001,
        }),
      ).rejects.toThrow();
      expect(await ctx.store.schedules.getSchedule("nightly")).toMatchObject({
        nextRunAt: T0 + 1000,
        lastRunAt: null,
      });
    });

    if (ctx.hasPeer) {
      it("concurrent firings of one tick from two connections: one wins", async () => {
        await ctx.store.schedules.upsertSchedule(base, T0);
        const peer = await ctx.peer();
        const fire = (s: typeof peer) =>
          s.schedules.fireSchedule({
            name: "nightly",
            expected: T0 + 1000,
            next: T0 + 2000,
            tick: T0 + 1000,
            task: newTask({ type: "report", idempotencyKey: "loom.schedule:nightly:race" }),
            now: T0 + 1001,
          });
        const results = await Promise.all([
          fire(ctx.store),
          fire(peer),
          fire(ctx.store),
          fire(peer),
        ]);
        expect(results.filter((r) => r.fired)).toHaveLength(1);
        expect(await ctx.store.countTasks({ type: "report" })).toBe(1);
      });
    }
  });
}
