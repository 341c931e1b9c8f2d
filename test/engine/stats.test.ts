import { afterEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/index.js";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";

const START = Date.UTC(2030, 0, 1, 12, 0, 30); // 30 s into a minute

describe("engine.stats", () => {
  let engine: TestEngine;
  afterEach(async () => engine?.close());

  it("fills every status and 60 minute buckets ending with the current minute", async () => {
    engine = createTestEngine({ startAt: START });
    engine.register("ok", async () => 1);
    engine.register(
      "bad",
      async () => {
        throw new Error("no");
      },
      { maxRetries: 0 },
    );
    await engine.run({ type: "ok" });
    await engine.advance(2 * 60_000);
    await engine.run({ type: "bad" });
    await engine.run({ type: "ok", tenant: "other" });
    await engine.submit({ type: "never-registered" });

    const stats = await engine.stats();
    expect(stats.counts).toEqual({
      pending: 1,
      claimed: 0,
      running: 0,
      retrying: 0,
      completed: 2,
      failed: 1,
      failed_crash: 0,
      cancelled: 0,
    });
    expect(stats.throughput).toHaveLength(60);
    const last = stats.throughput[59]!;
    expect(last.at.getTime()).toBe(Date.UTC(2030, 0, 1, 12, 2, 0));
    expect(stats.throughput[0]!.at.getTime()).toBe(Date.UTC(2030, 0, 1, 11, 3, 0));
    expect(last).toMatchObject({ completed: 1, failed: 1 });
    expect(stats.throughput[57]).toMatchObject({ completed: 1, failed: 0 });
    expect(stats.throughput.reduce((n, b) => n + b.completed + b.failed, 0)).toBe(3);

    const other = await engine.stats({ tenant: "other" });
    expect(other.counts.completed).toBe(1);
    expect(other.counts.failed).toBe(0);

    // An hour later the first completion has left the window; counts keep it.
    await engine.advance(58 * 60_000);
    const later = await engine.stats();
    expect(later.throughput.reduce((n, b) => n + b.completed, 0)).toBe(1);
    expect(later.counts.completed).toBe(2);
    await expect(engine.stats({ tenant: "" })).rejects.toBeInstanceOf(ValidationError);
  });
});
