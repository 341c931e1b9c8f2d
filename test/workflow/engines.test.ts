import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";
import type { Checkpoint } from "../../src/store/workflows.js";
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
