import { describe, expect, it } from "vitest";
import { WORKFLOW_TASK_TYPE, type Checkpoint, type NewWorkflowRun } from "../workflows.js";
import type { Store } from "../store.js";
import {
  T0,
  claim,
  claimOne,
  complete,
  fail,
  insert,
  newTask,
  nextId,
  settle,
  type StoreContext,
} from "./fixtures.js";

function newRun(fields: Partial<NewWorkflowRun> = {}): NewWorkflowRun {
  return {
    id: nextId("wf"),
    name: "w",
    version: "1",
    input: '{"n":1}',
    tenant: "default",
    project: "default",
    parentId: null,
    leaseMs: 30_000,
    now: T0,
    ...fields,
  };
}

function checkpoint(
  workflowId: string,
  expectedLen: number,
  fields: Partial<Checkpoint> = {},
): Checkpoint {
  return {
    workflowId,
    expectedLen,
    events: [],
    status: "running",
    waitingFor: null,
    wakeAt: null,
    tasks: [],
    children: [],
    now: T0 + 1,
    ...fields,
  };
}

/** The pending wake-up tasks of a run. */
async function wakes(store: Store, id: string) {
  const page = await store.listTasks({
    workflowId: id,
    type: WORKFLOW_TASK_TYPE,
    status: ["pending", "retrying"],
  });
  return page.items;
}

export function workflowSuite(ctx: StoreContext): void {
  describe("workflows", () => {
    it("creates a run with WORKFLOW_STARTED and one wake-up; an existing id is returned, not replaced", async () => {
      const run = newRun();
      const out = await ctx.store.createWorkflowRun(run);
      expect(out.created).toBe(true);
      expect(out.run).toMatchObject({
        id: run.id,
        name: "w",
        version: "1",
        status: "pending",
        input: '{"n":1}',
        historyLen: 1,
        parentId: null,
        createdAt: T0,
      });
      const again = await ctx.store.createWorkflowRun({ ...run, input: '{"n":2}' });
      expect(again.created).toBe(false);
      expect(again.run.input).toBe('{"n":1}');
      const loaded = await ctx.store.loadWorkflow(run.id);
      expect(loaded!.history).toEqual([
        { seq: 0, kind: "WORKFLOW_STARTED", name: "w", data: '{"n":1}', at: T0 },
      ]);
      const w = await wakes(ctx.store, run.id);
      expect(w).toHaveLength(1);
      expect(w[0]).toMatchObject({ crashPolicy: "retry", runAt: new Date(T0), workflowId: run.id });
      expect(await ctx.store.loadWorkflow("nope")).toBeNull();
      expect(await ctx.store.getWorkflowRun("nope")).toBeNull();
      // Many at once, in the order asked, unknown ids as null.
      const other = newRun({ input: null });
      await ctx.store.createWorkflowRun(other);
      await ctx.store.signalWorkflow(other.id, "go", '"now"', T0 + 5);
      const many = await ctx.store.loadWorkflows([other.id, "nope", run.id]);
      expect(many[0]).toEqual({
        run: await ctx.store.getWorkflowRun(other.id),
        history: [{ seq: 0, kind: "WORKFLOW_STARTED", name: "w", data: null, at: T0 }],
        signals: [{ name: "go", data: '"now"', at: T0 + 5 }],
      });
      expect(many[1]).toBeNull();
      expect(many[2]).toEqual(loaded);
    });

    it("appends checkpoints fenced by history length, in one group commit", async () => {
      const a = newRun();
      const b = newRun();
      await ctx.store.createWorkflowRun(a);
      await ctx.store.createWorkflowRun(b);
      const ev = { seq: 1, kind: "STEP_COMPLETED", name: "s", data: "1", at: T0 + 1 };
      const results = await ctx.store.appendCheckpoints([
        checkpoint(a.id, 1, { events: [ev], state: '{"k":1}' }),
        checkpoint(b.id, 5, { events: [ev] }), // stale length
        checkpoint(a.id, 1, { events: [ev] }), // a second execution of a: loses
      ]);
      expect(results).toEqual([true, false, false]);
      const la = await ctx.store.loadWorkflow(a.id);
      expect(la!.run).toMatchObject({ status: "running", historyLen: 2, state: '{"k":1}' });
      expect(la!.history.map((e) => e.kind)).toEqual(["WORKFLOW_STARTED", "STEP_COMPLETED"]);
      expect((await ctx.store.loadWorkflow(b.id))!.history).toHaveLength(1);
    });

    it("writes starts and checkpoints in one group commit, answered in order", async () => {
      const running = newRun();
      await ctx.store.createWorkflowRun(running);
      const existing = newRun();
      await ctx.store.createWorkflowRun(existing);
      const claimed = newRun({
        claim: { taskId: nextId("wake"), attemptId: "g1.1", engineName: "e1" },
      });
      const queued = newRun({ input: null });
      const ev = { seq: 1, kind: "STEP_COMPLETED", name: "s", data: "1", at: T0 + 1 };
      const out = await ctx.store.writeWorkflows(
        [claimed, { ...existing, input: '{"n":2}' }, queued],
        [checkpoint(running.id, 1, { events: [ev] }), checkpoint(existing.id, 7)],
      );
      expect(out.checkpoints).toEqual([true, false]);
      expect(out.starts.map((s) => s.created)).toEqual([true, false, true]);
      expect(out.starts[0]!.run).toMatchObject({
        id: claimed.id,
        status: "pending",
        historyLen: 1,
      });
      expect(out.starts[1]!.run).toMatchObject({
        id: existing.id,
        input: '{"n":1}',
        historyLen: 1,
      });
      expect(out.starts[2]!.run).toMatchObject({ id: queued.id, input: null, createdAt: T0 });
      expect((await ctx.store.loadWorkflow(claimed.id))!.history).toEqual([
        { seq: 0, kind: "WORKFLOW_STARTED", name: "w", data: '{"n":1}', at: T0 },
      ]);
      expect(await ctx.store.getTask(claimed.claim!.taskId)).toMatchObject({
        status: "running",
        attempt: 1,
        workflowId: claimed.id,
      });
      expect(await wakes(ctx.store, claimed.id)).toHaveLength(0);
      expect(await wakes(ctx.store, queued.id)).toHaveLength(1);
      expect(await wakes(ctx.store, existing.id)).toHaveLength(1);
      expect((await ctx.store.loadWorkflow(running.id))!.run.historyLen).toBe(2);

      // The same id twice in one batch (a retried start), and a checkpoint that inserts a
      // task: still one transaction, each as if alone.
      const twice = newRun();
      const activity = newTask({ type: "act", workflowId: running.id });
      const mixed = await ctx.store.writeWorkflows(
        [twice, { ...twice, input: '{"n":3}' }],
        [checkpoint(running.id, 2, { status: "waiting", tasks: [activity] })],
      );
      expect(mixed.starts.map((s) => s.created)).toEqual([true, false]);
      expect(mixed.starts[1]!.run.input).toBe('{"n":1}');
      expect(mixed.checkpoints).toEqual([true]);
      expect(await ctx.store.getTask(activity.id)).toMatchObject({ status: "pending" });
      expect(await wakes(ctx.store, twice.id)).toHaveLength(1);
    });

    it("a group commit of many runs fences each on its own, wakes and ends them", async () => {
      const parent = newRun();
      await ctx.store.createWorkflowRun(parent);
      await settle(
        ctx.store,
        T0,
        complete(await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] })),
      );
      const child = newRun({ id: `${parent.id}:1`, parentId: parent.id });
      await ctx.store.appendCheckpoints([
        checkpoint(parent.id, 1, { status: "waiting", children: [child] }),
      ]);
      await settle(
        ctx.store,
        T0,
        complete(await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] })),
      );
      const a = newRun();
      const b = newRun();
      const c = newRun();
      for (const r of [a, b, c]) await ctx.store.createWorkflowRun(r);
      const step = (seq: number, data: string) => ({
        seq,
        kind: "STEP_COMPLETED",
        name: `s${seq}`,
        data,
        at: T0 + 1,
      });
      const results = await ctx.store.appendCheckpoints([
        checkpoint(a.id, 1, { events: [step(1, "1"), step(2, "2")], state: '{"k":1}' }),
        checkpoint(b.id, 4, { events: [step(1, "x")] }), // stale length
        checkpoint(c.id, 1, {
          status: "waiting",
          waitingFor: '{"kind":"timer","name":"t"}',
          wakeAt: T0 + 60_000,
        }),
        checkpoint(child.id, 1, {
          status: "completed",
          result: "7",
          events: [{ seq: 0, kind: "WORKFLOW_COMPLETED", name: null, data: "7", at: T0 + 1 }],
        }),
      ]);
      expect(results).toEqual([true, false, true, true]);
      const la = await ctx.store.loadWorkflow(a.id);
      expect(la!.run).toMatchObject({ status: "running", historyLen: 3, state: '{"k":1}' });
      expect(la!.history.map((e) => [e.kind, e.data])).toEqual([
        ["WORKFLOW_STARTED", '{"n":1}'],
        ["STEP_COMPLETED", "1"],
        ["STEP_COMPLETED", "2"],
      ]);
      expect((await ctx.store.loadWorkflow(b.id))!.history).toHaveLength(1);
      // c's first wake-up is still pending: kept (the earlier time), not doubled.
      expect(await wakes(ctx.store, c.id)).toHaveLength(1);
      expect((await ctx.store.getWorkflowRun(c.id))!.waitingFor).toBe(
        '{"kind":"timer","name":"t"}',
      );
      expect(await ctx.store.getWorkflowRun(child.id)).toMatchObject({
        status: "completed",
        result: "7",
        completedAt: T0 + 1,
      });
      expect(await wakes(ctx.store, parent.id)).toHaveLength(1);
    });

    it("a run created with its first wake-up claimed: running for that attempt, settled by it", async () => {
      const run = newRun({
        claim: { taskId: nextId("wake"), attemptId: "n1.1", engineName: "e1" },
      });
      expect((await ctx.store.createWorkflowRun(run)).created).toBe(true);
      expect(await wakes(ctx.store, run.id)).toHaveLength(0);
      const task = await ctx.store.getTask(run.claim!.taskId);
      expect(task).toMatchObject({
        type: WORKFLOW_TASK_TYPE,
        status: "running",
        workflowId: run.id,
        attempt: 1,
        crashPolicy: "retry",
      });
      // Not claimable by anyone else; recovered like any attempt of that engine.
      expect(await claim(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] })).toEqual([]);
      const again = await ctx.store.createWorkflowRun({
        ...run,
        claim: { taskId: nextId("wake"), attemptId: "n2.1", engineName: "e1" },
      });
      expect(again.created).toBe(false);
      expect((await ctx.store.listTasks({ workflowId: run.id })).items).toHaveLength(1);
      const recovered = await ctx.store.recoverEngine("e1", T0 + 1);
      expect(recovered.map((c) => c.id)).toEqual([run.claim!.taskId]);
      expect(await wakes(ctx.store, run.id)).toHaveLength(1);
      const other = newRun({
        claim: { taskId: nextId("wake"), attemptId: "n3.1", engineName: "e1" },
      });
      await ctx.store.createWorkflowRun(other);
      const out = await settle(
        ctx.store,
        T0 + 2,
        complete({ id: other.claim!.taskId, attemptId: "n3.1" }),
      );
      expect(out[0]).toMatchObject({ ok: true, status: "completed" });
    });

    it("a run's last checkpoint completes its wake-up task in the same write (if still owned)", async () => {
      const run = newRun({
        claim: { taskId: nextId("wake"), attemptId: "m1.1", engineName: "e1" },
      });
      await ctx.store.createWorkflowRun(run);
      const settle = { taskId: run.claim!.taskId, attemptId: "m1.1" };
      // A stale checkpoint writes nothing, the task included.
      expect(await ctx.store.appendCheckpoints([checkpoint(run.id, 3, { settle })])).toEqual([
        false,
      ]);
      expect((await ctx.store.getTask(settle.taskId))!.status).toBe("running");
      // Another attempt's id completes nothing; the checkpoint still applies.
      const ok = await ctx.store.appendCheckpoints([
        checkpoint(run.id, 1, {
          status: "waiting",
          waitingFor: '{"kind":"signal","name":"s"}',
          settle: { taskId: settle.taskId, attemptId: "other.1" },
        }),
      ]);
      expect(ok).toEqual([true]);
      expect((await ctx.store.getTask(settle.taskId))!.status).toBe("running");
      const done = await ctx.store.appendCheckpoints([
        checkpoint(run.id, 1, {
          status: "completed",
          result: "1",
          events: [{ seq: 0, kind: "WORKFLOW_COMPLETED", name: null, data: "1", at: T0 + 1 }],
          settle,
        }),
      ]);
      expect(done).toEqual([true]);
      expect(await ctx.store.getTask(settle.taskId)).toMatchObject({
        status: "completed",
        result: null,
        completedAt: new Date(T0 + 1),
      });
      // In a group commit too.
      const a = newRun({ claim: { taskId: nextId("wake"), attemptId: "m2.1", engineName: "e1" } });
      const b = newRun({ claim: { taskId: nextId("wake"), attemptId: "m3.1", engineName: "e1" } });
      await ctx.store.createWorkflowRun(a);
      await ctx.store.createWorkflowRun(b);
      const both = await ctx.store.appendCheckpoints([
        checkpoint(a.id, 1, {
          status: "failed",
          error: "x",
          settle: { taskId: a.claim!.taskId, attemptId: "m2.1" },
        }),
        checkpoint(b.id, 1, { status: "running", events: [] }),
      ]);
      expect(both).toEqual([true, true]);
      expect((await ctx.store.getTask(a.claim!.taskId))!.status).toBe("completed");
      expect((await ctx.store.getTask(b.claim!.taskId))!.status).toBe("running");
    });

    it("a checkpoint's wake-up pulls the pending one earlier instead of adding another", async () => {
      const run = newRun();
      await ctx.store.createWorkflowRun(run);
      const first = await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] });
      await settle(ctx.store, T0 + 1, complete(first));
      await ctx.store.appendCheckpoints([
        checkpoint(run.id, 1, {
          status: "waiting",
          waitingFor: '{"kind":"timer","name":"t"}',
          wakeAt: T0 + 60_000,
        }),
      ]);
      let w = await wakes(ctx.store, run.id);
      expect(w).toHaveLength(1);
      expect(w[0]!.runAt.getTime()).toBe(T0 + 60_000);
      expect(await ctx.store.signalWorkflow(run.id, "go", '"x"', T0 + 10)).toBe("waiting");
      w = await wakes(ctx.store, run.id);
      expect(w).toHaveLength(1);
      expect(w[0]!.runAt.getTime()).toBe(T0 + 10);
      const loaded = await ctx.store.loadWorkflow(run.id);
      expect(loaded!.signals).toEqual([{ name: "go", data: '"x"', at: T0 + 10 }]);
      expect(loaded!.run.waitingFor).toBe('{"kind":"timer","name":"t"}');
    });

    it("inserts activities with the checkpoint; an activity's end wakes its run in the same write", async () => {
      const run = newRun();
      await ctx.store.createWorkflowRun(run);
      const wake = await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] });
      const act = newTask({ type: "act", workflowId: run.id, crashPolicy: "retry", maxRetries: 0 });
      const ok = await ctx.store.appendCheckpoints([
        checkpoint(run.id, 1, {
          events: [
            {
              seq: 1,
              kind: "ACTIVITY_SCHEDULED",
              name: "act",
              data: `{"taskId":"${act.id}"}`,
              at: T0,
            },
          ],
          status: "waiting",
          tasks: [act],
        }),
      ]);
      expect(ok).toEqual([true]);
      await settle(ctx.store, T0 + 1, complete(wake));
      expect(await wakes(ctx.store, run.id)).toHaveLength(0);
      const c = await claimOne(ctx.store, T0 + 2, { types: ["act"] });
      await settle(ctx.store, T0 + 3, complete(c, 42));
      expect(await wakes(ctx.store, run.id)).toHaveLength(1);
      // A failure wakes it too (the pending wake-up is reused).
      const act2 = newTask({ type: "act", workflowId: run.id, maxRetries: 0 });
      await insert(ctx.store, act2);
      const c2 = await claimOne(ctx.store, T0 + 4, { types: ["act"] });
      await settle(ctx.store, T0 + 5, fail(c2, "boom", null));
      expect(await wakes(ctx.store, run.id)).toHaveLength(1);
      // A task without workflowId wakes nothing.
      const plain = newTask({ type: "act" });
      await insert(ctx.store, plain);
      await settle(
        ctx.store,
        T0 + 6,
        complete(await claimOne(ctx.store, T0 + 6, { types: ["act"] })),
      );
      expect((await ctx.store.listTasks({ type: WORKFLOW_TASK_TYPE })).items).toHaveLength(2);
    });

    it("a cancelled activity wakes its run", async () => {
      const run = newRun();
      await ctx.store.createWorkflowRun(run);
      await settle(
        ctx.store,
        T0,
        complete(await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] })),
      );
      const act = newTask({ type: "act", workflowId: run.id });
      await insert(ctx.store, act);
      await ctx.store.cancel({ ids: [act.id] }, "stop", T0 + 1);
      expect(await wakes(ctx.store, run.id)).toHaveLength(1);
    });

    it("starts children with the checkpoint; a child's end wakes its parent", async () => {
      const parent = newRun();
      await ctx.store.createWorkflowRun(parent);
      await settle(
        ctx.store,
        T0,
        complete(await claimOne(ctx.store, T0, { types: [WORKFLOW_TASK_TYPE] })),
      );
      const child = newRun({ id: `${parent.id}:1`, parentId: parent.id, name: "kid" });
      await ctx.store.appendCheckpoints([
        checkpoint(parent.id, 1, { status: "waiting", children: [child] }),
      ]);
      expect((await ctx.store.getWorkflowRun(child.id))!.parentId).toBe(parent.id);
      expect(await wakes(ctx.store, parent.id)).toHaveLength(0);
      const ok = await ctx.store.appendCheckpoints([
        checkpoint(child.id, 1, {
          status: "completed",
          result: "7",
          events: [{ seq: 0, kind: "WORKFLOW_COMPLETED", name: null, data: "7", at: T0 + 2 }],
        }),
      ]);
      expect(ok).toEqual([true]);
      const done = await ctx.store.getWorkflowRun(child.id);
      expect(done).toMatchObject({ status: "completed", result: "7", completedAt: T0 + 1 });
      expect(await wakes(ctx.store, parent.id)).toHaveLength(1);
      // Nothing is appended to an ended run.
      expect(await ctx.store.appendCheckpoints([checkpoint(child.id, 2)])).toEqual([false]);
      expect(await ctx.store.signalWorkflow(child.id, "x", null, T0)).toBe("completed");
      expect(await ctx.store.signalWorkflow("nope", "x", null, T0)).toBeNull();
    });

    it("cancels a run and its open descendants with WORKFLOW_CANCELLED", async () => {
      const parent = newRun();
      await ctx.store.createWorkflowRun(parent);
      const child = newRun({ id: `${parent.id}:1`, parentId: parent.id });
      const grandchild = newRun({ id: `${parent.id}:1:1`, parentId: child.id });
      await ctx.store.appendCheckpoints([
        checkpoint(parent.id, 1, { status: "waiting", children: [child] }),
      ]);
      await ctx.store.appendCheckpoints([
        checkpoint(child.id, 1, { status: "waiting", children: [grandchild] }),
      ]);
      const ids = await ctx.store.cancelWorkflow(parent.id, "stop", T0 + 9);
      expect(ids).toEqual([parent.id, child.id, grandchild.id]);
      for (const id of ids!) {
        const l = await ctx.store.loadWorkflow(id);
        expect(l!.run.status).toBe("cancelled");
        expect(l!.history.at(-1)!.kind).toBe("WORKFLOW_CANCELLED");
      }
      expect((await ctx.store.getWorkflowRun(parent.id))!.error).toBe("stop");
      expect(await ctx.store.cancelWorkflow(parent.id, "again", T0)).toEqual([]);
      expect(await ctx.store.cancelWorkflow("nope", "x", T0)).toBeNull();
    });

    it("lists runs newest first with filters and a cursor", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = newRun({ name: i < 3 ? "a" : "b", tenant: i === 4 ? "other" : "default" });
        ids.push(r.id);
        await ctx.store.createWorkflowRun(r);
      }
      const page1 = await ctx.store.listWorkflowRuns({ name: "a", limit: 2 });
      expect(page1.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
      const page2 = await ctx.store.listWorkflowRuns({
        name: "a",
        limit: 2,
        cursor: page1.nextCursor!,
      });
      expect(page2.items.map((r) => r.id)).toEqual([ids[0]]);
      expect(page2.nextCursor).toBeNull();
      expect(
        (await ctx.store.listWorkflowRuns({ tenant: "other" })).items.map((r) => r.id),
      ).toEqual([ids[4]]);
      expect((await ctx.store.listWorkflowRuns({ status: ["completed"] })).items).toEqual([]);
      expect(
        (await ctx.store.listWorkflowRuns({ status: "pending", name: "b" })).items,
      ).toHaveLength(2);
    });
  });
}
