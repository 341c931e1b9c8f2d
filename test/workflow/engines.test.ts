import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";
import type { Checkpoint, NewWorkflowRun } from "../../src/store/workflows.js";
import { GroupCommitter } from "../../src/workflow/committer.js";
import { engineFactory, tempDir } from "../support/sqlite.js";

const tmp = tempDir("loom-wf-engines-");
const engines = engineFactory(tmp);
let t: TestEngine | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  await engines.closeAll();
});
afterAll(() => tmp.cleanup());

describe("workflows across engines and group commit", () => {
  it("writes checkpoints of concurrently executing runs together (group commit)", async () => {
    t = createTestEngine({ concurrency: 10 });
    const batches: number[] = [];
    const store = t.store;
    const append = store.appendCheckpoints.bind(store);
    store.appendCheckpoints = (cps: Checkpoint[]) => {
      batches.push(cps.length);
      return append(cps);
    };
    const wf = t.workflow("three", {
      run: async (ctx, n: number) => {
        const a = await ctx.step("a", () => n);
        const b = await ctx.step("b", () => a + 1);
        return ctx.step("c", () => b + 1);
      },
    });
    const handles = [];
    for (let i = 0; i < 20; i++) handles.push(await wf.start(i));
    await t.drain();
    for (let i = 0; i < 20; i++) expect(await handles[i]!.result()).toBe(i + 2);
    const written = batches.reduce((a, b) => a + b, 0);
    expect(written).toBe(20 * 4); // 3 steps + the end, per run
    expect(Math.max(...batches)).toBeGreaterThan(1);
    expect(batches.length).toBeLessThan(written);
  });

  it("concurrent starts are written together (group commit)", async () => {
    const engine = engines.make({ path: tmp.file(), concurrency: 10 });
    const store = engine.store;
    const batches: { starts: number; checkpoints: number }[] = [];
    const write = store.writeWorkflows.bind(store);
    store.writeWorkflows = (starts, cps) => {
      batches.push({ starts: starts.length, checkpoints: cps.length });
      return write(starts, cps);
    };
    const wf = engine.workflow("three", {
      run: async (ctx, n: number) => {
        const a = await ctx.step("a", () => n);
        const b = await ctx.step("b", () => a + 1);
        return ctx.step("c", () => b + 1);
      },
    });
    await engine.start();
    // Ten callers, each starting a run and awaiting its result, twice over.
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const first = await (await wf.start(i)).result();
        return [first, await (await wf.start(i + 100)).result()];
      }),
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => [i + 2, i + 102]));
    expect(batches.reduce((n, b) => n + b.starts, 0)).toBe(20);
    expect(Math.max(...batches.map((b) => b.starts))).toBeGreaterThan(1);
  });

  it("a failed mixed write is written again as starts and checkpoints apart", async () => {
    t = createTestEngine();
    const store = t.store;
    const write = store.writeWorkflows.bind(store);
    const calls: string[] = [];
    store.writeWorkflows = (starts, cps) => {
      calls.push(`${starts.length}+${cps.length}`);
      if (starts.length && cps.length) return Promise.reject(new Error("one bad checkpoint"));
      return write(starts, cps);
    };
    const run = (id: string): NewWorkflowRun => ({
      id,
      name: "w",
      version: "1",
      input: null,
      tenant: "default",
      project: "default",
      parentId: null,
      leaseMs: 30_000,
      now: 1,
    });
    await store.createWorkflowRun(run("a"));
    const committer = new GroupCommitter(store);
    const [started, written] = await Promise.all([
      committer.start(run("b")),
      committer.commit({
        workflowId: "a",
        expectedLen: 1,
        events: [{ seq: 1, kind: "STEP_COMPLETED", name: "s", data: "1", at: 2 }],
        status: "running",
        waitingFor: null,
        wakeAt: null,
        tasks: [],
        children: [],
        now: 2,
      }),
    ]);
    expect(calls).toEqual(["1+1", "1+0"]);
    expect(started.created).toBe(true);
    expect(written).toBe(true);
    expect((await store.loadWorkflow("a"))!.run.historyLen).toBe(2);
  });

  it("an activity runs on another engine that registered its type; the run resumes on its own", async () => {
    const path = tmp.file();
    const orchestrator = engines.make({ path, name: "orchestrator", pollMs: 20 });
    const worker = engines.make({ path, name: "worker", pollMs: 20 });
    worker.register("remote-double", (task) => (task.input as number) * 2);
    const wf = orchestrator.workflow("remote", {
      run: async (ctx, n: number) => ctx.activity<number>("remote-double", n),
    });
    await orchestrator.start();
    await worker.start();
    const h = await wf.start(21);
    expect(await h.result({ timeoutMs: 10_000 })).toBe(42);
    const [task] = (await orchestrator.list({ workflowId: h.id, type: "remote-double" })).items;
    expect(task!.engineName).toBe("worker");
  });

  it("a store error while checkpointing never reaches workflow code; the wake-up retries", async () => {
    t = createTestEngine();
    const store = t.store;
    const append = store.appendCheckpoints.bind(store);
    let failNext = true;
    store.appendCheckpoints = (cps: Checkpoint[]) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("disk full"));
      }
      return append(cps);
    };
    let runs = 0;
    const wf = t.workflow("flaky-store", {
      run: async (ctx) => {
        try {
          return await ctx.step("s", () => ++runs);
        } catch (err) {
          return `caught ${(err as Error).message}`;
        }
      },
    });
    const h = await wf.start(null);
    await t.drain();
    expect((await h.status()).status).toBe("pending");
    await t.advance(10_000);
    expect(await h.result()).toBe(2); // the step ran again, its first result was never saved
    expect(await t.historyKinds(h.id)).toEqual([
      "WORKFLOW_STARTED",
      "STEP_COMPLETED",
      "WORKFLOW_COMPLETED",
    ]);
  });
});
