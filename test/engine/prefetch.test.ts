import { afterAll, afterEach, describe, expect, it } from "vitest";
import { engineFactory, tempDir, until } from "../support/sqlite.js";

const tmp = tempDir("loom-prefetch-");
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

describe("prefetch of retry-policy tasks", () => {
  it("keeps up to `prefetch` tasks claimed ahead and starts them without another claim", async () => {
    const engine = engines.make({ concurrency: 2, prefetch: 3 });
    const release: (() => void)[] = [];
    engine.register("idem", () => new Promise<void>((r) => release.push(r)), {
      crashPolicy: "retry",
    });
    await engine.submitMany(Array.from({ length: 10 }, (_, i) => ({ type: "idem", input: i })));
    await engine.start();
    await until(async () => (await engine.count({ status: "claimed" })) === 3);
    expect(await engine.count({ status: "running" })).toBe(2);
    expect(await engine.count({ status: "pending" })).toBe(5);
    // Finishing one starts a buffered task at once; the next tick tops the buffer up again.
    release.shift()!();
    await until(() => release.length === 2);
    await until(async () => (await engine.count({ status: "completed" })) === 1);
    await until(async () => (await engine.count({ status: "pending" })) === 4);
    while (release.length || (await engine.count({ status: "completed" })) < 10) {
      release.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    const done = await engine.list({ status: "completed" });
    expect(done.items.every((t) => t.attempt === 1)).toBe(true);
  });

  it("never prefetches fail-policy tasks", async () => {
    const engine = engines.make({ concurrency: 1, prefetch: 5 });
    let release!: () => void;
    engine.register("risky", () => new Promise<void>((r) => (release = r)));
    await engine.submitMany([{ type: "risky" }, { type: "risky" }, { type: "risky" }]);
    await engine.start();
    await until(async () => (await engine.count({ status: "running" })) === 1);
    expect(await engine.count({ status: "claimed" })).toBe(0);
    release();
  });

  it("close() gives buffered tasks back, with no retry used", async () => {
    const engine = engines.make({ concurrency: 1, prefetch: 4 });
    const path = (engine.store as unknown as { path: string }).path;
    let release!: () => void;
    engine.register("idem", () => new Promise<void>((r) => (release = r)), {
      crashPolicy: "retry",
    });
    await engine.submitMany(Array.from({ length: 6 }, () => ({ type: "idem" })));
    await engine.start();
    await until(async () => (await engine.count({ status: "claimed" })) === 4);
    const closing = engine.close({ timeoutMs: 5_000 });
    release();
    await closing;
    const reader = engines.make({ path, name: "reader" });
    expect(await reader.count({ status: "completed" })).toBe(1);
    const pending = await reader.list({ status: "pending" });
    expect(pending.items).toHaveLength(5);
    expect(pending.items.every((t) => t.attempt === 0 && t.crashCount === 0)).toBe(true);
  });
});
