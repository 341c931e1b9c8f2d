import { createNoopMeter, type ObservableCallback } from "@opentelemetry/api";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LaneBusyError, ValidationError } from "../../src/index.js";
import { engineFactory, tempDir, until } from "../support/sqlite.js";

const tmp = tempDir();
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

/** A handler whose runs block until released, recording who started when. */
function gatedHandler() {
  const started: { id: string; caller: string | null }[] = [];
  const gates = new Map<string, () => void>();
  return {
    started,
    running: () => gates.size,
    handler: (task: { id: string; caller: string | null }) =>
      new Promise<string>((resolve) => {
        started.push({ id: task.id, caller: task.caller });
        gates.set(task.id, () => {
          gates.delete(task.id);
          resolve("ok");
        });
      }),
    releaseAll() {
      for (const g of [...gates.values()]) g();
    },
    releaseOne() {
      const first = gates.values().next();
      if (!first.done) first.value();
    },
  };
}

describe("engine lanes", () => {
  it("validates lane options and concurrency", async () => {
    const engine = engines.make();
    await expect(engine.lane("l", { concurrency: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(engine.lane("l", { concurrency: 1.5 })).rejects.toBeInstanceOf(ValidationError);
    const lane = await engine.lane("l", { concurrency: 2 });
    await expect(lane.setConcurrency(0)).rejects.toBeInstanceOf(ValidationError);
    expect(lane.name).toBe("l");
    expect(await lane.stats()).toMatchObject({ name: "l", concurrency: 2, running: 0, queued: 0 });
  });

  it("runs at most `concurrency` at once and shares slots fairly across callers", async () => {
    const engine = engines.make({ concurrency: 10, pollMs: 20 });
    const lane = await engine.lane("gpu", { concurrency: 2 });
    const h = gatedHandler();
    const job = engine.register("job", h.handler, { lane: "gpu" });
    // alice floods first, then bob and carol submit one each.
    for (let i = 0; i < 6; i++) await job.submit(null, { caller: "alice" });
    const bob = await job.submit(null, { caller: "bob" });
    const carol = await job.submit(null, { caller: "carol" });
    expect((await engine.get(bob)).lane).toBe("gpu");
    await engine.start();
    await until(() => h.running() === 2);
    const stats = await lane.stats();
    expect(stats).toMatchObject({ running: 2, queued: 6, concurrency: 2 });
    expect(stats.perCaller.map((c) => c.caller)).toEqual(["alice", "bob", "carol"]);
    // The first two slots went to two different callers, not both to alice.
    expect(new Set(h.started.map((s) => s.caller)).size).toBe(2);
    const pos = await engine.position(h.started.some((s) => s.id === carol) ? bob : carol);
    expect(pos.position).toBe(1);
    while (h.started.length < 4) {
      h.releaseOne();
      await until(() => h.running() === 2 || h.started.length === 8);
    }
    // After four starts, bob and carol have both run, alice only twice.
    expect(h.started.slice(0, 4).filter((s) => s.caller === "alice").length).toBe(2);
    expect(h.running()).toBeLessThanOrEqual(2);
    await lane.setConcurrency(4);
    await until(() => h.running() === 4);
    h.releaseAll();
    await until(() => h.started.length === 8);
    h.releaseAll();
    await until(async () => (await lane.stats()).running === 0 && h.running() === 0);
    expect((await lane.stats()).throughput1m).toBe(8);
  });

  it("defaults a laned task's caller to its tenant", async () => {
    const engine = engines.make();
    await engine.lane("l", { concurrency: 1 });
    engine.register("t", () => 1, { lane: "l" });
    const id = await engine.submit({ type: "t", input: null, tenant: "acme" });
    expect((await engine.get(id)).caller).toBe("acme");
  });

  it("rejects a submit past maxQueue or whose ETA exceeds maxWaitMs, persisting nothing", async () => {
    const engine = engines.make({ pollMs: 20 });
    await engine.lane("q", { concurrency: 1, maxQueue: 2 });
    const h = gatedHandler();
    engine.register("t", h.handler, { lane: "q" });
    await engine.submit({ type: "t", input: null });
    await engine.submit({ type: "t", input: null });
    await expect(engine.submit({ type: "t", input: null })).rejects.toBeInstanceOf(LaneBusyError);
    expect(await engine.count({})).toBe(2);
    await engine.start();
    await until(() => h.running() === 1);
    // One ran to completion to give the lane a pace, then the lane is full again.
    h.releaseOne();
    await until(() => h.started.length === 2);
    await engine.submit({ type: "t", input: null, caller: "x" });
    const err = await engine
      .submit({ type: "t", input: null, caller: "y" }, { maxWaitMs: 0.001 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LaneBusyError);
    expect(await engine.count({})).toBe(3);
    // A generous wait is admitted.
    await engine.submit({ type: "t", input: null, caller: "y" }, { maxWaitMs: 3_600_000 });
    h.releaseAll();
  });

  it("a lane nobody declared runs nothing; external agents respect the lane limit", async () => {
    const path = tmp.file();
    const engine = engines.make({ path });
    engine.register("t", () => 1, { lane: "later" });
    await engine.submit({ type: "t", input: null });
    await engine.submit({ type: "t", input: null });
    await engine.settle();
    expect(await engine.count({ status: ["pending"] })).toBe(2);
    const other = engines.make({ path, name: "other" });
    other.register("t", () => 1, { lane: "later" });
    await other.lane("later", { concurrency: 1 });
    const a = await engine.claimNext({ agent: "a", max: 5 });
    expect(a).not.toBeNull();
    expect(await engine.claimNext({ agent: "a", max: 5 })).toBeNull();
  });

  it("reports running and queued per lane as OpenTelemetry gauges", async () => {
    const callbacks = new Map<string, ObservableCallback>();
    const noop = createNoopMeter();
    const meter = Object.assign(Object.create(noop) as typeof noop, {
      createObservableGauge(name: string) {
        return {
          addCallback: (cb: ObservableCallback) => callbacks.set(name, cb),
          removeCallback: () => {},
        };
      },
    });
    const engine = engines.make({ meter });
    await engine.lane("g", { concurrency: 1 });
    engine.register("t", () => 1, { lane: "g" });
    await engine.submit({ type: "t", input: null, caller: "a" });
    await engine.submit({ type: "t", input: null, caller: "b" });
    await engine.maintain();
    const read = async (name: string) => {
      const seen: [number, unknown][] = [];
      await callbacks.get(name)!({
        observe: (v: number, attrs?: unknown) => seen.push([v, attrs]),
      });
      return seen;
    };
    expect(await read("loom.lane.queued")).toEqual([[2, { lane: "g" }]]);
    expect(await read("loom.lane.running")).toEqual([[0, { lane: "g" }]]);
  });

  it("preempts the oldest preemptible running task for a higher-priority arrival; it is re-queued, not failed", async () => {
    const engine = engines.make({ pollMs: 10, maintenanceMs: 10 });
    await engine.lane("p", { concurrency: 1, preemption: { minRuntimeMs: 0 } });
    const log: string[] = [];
    let releaseUrgent = () => {};
    engine.register(
      "t",
      (task: { input: string }, ctx: { signal: AbortSignal }) =>
        new Promise<string>((resolve, reject) => {
          log.push(`start ${task.input}`);
          if (task.input === "urgent") releaseUrgent = () => resolve("u");
          else if (log.filter((l) => l === "start low").length > 1) resolve("l");
          ctx.signal.addEventListener("abort", () => {
            log.push(`abort ${task.input}`);
            reject(ctx.signal.reason as Error);
          });
        }),
      { lane: "p", preemptible: true },
    );
    await engine.start();
    const low = await engine.submit({ type: "t", input: "low", priority: 0 });
    await until(() => log.includes("start low"));
    const urgent = await engine.submit({ type: "t", input: "urgent", priority: 3 });
    await until(() => log.includes("start urgent"));
    expect(log).toEqual(["start low", "abort low", "start urgent"]);
    expect((await engine.get(low)).status).toBe("pending");
    releaseUrgent();
    expect((await engine.wait(urgent, { timeoutMs: 5_000 })).status).toBe("completed");
    const done = await engine.wait(low, { timeoutMs: 5_000 });
    expect(done).toMatchObject({ status: "completed", result: "l", error: null });
  });
});
