import { afterEach, describe, expect, it } from "vitest";
import { createTestEngine, type TestEngine } from "./index.js";

let t: TestEngine;
afterEach(() => t?.close());

describe("loomkit/testing", () => {
  it("drain runs everything ready, including dependents, without waiting", async () => {
    t = createTestEngine();
    const seen: string[] = [];
    t.register("step", (task: { input: string }) => void seen.push(task.input));
    const a = await t.submit({ type: "step", input: "a" });
    await t.submit({ type: "step", input: "b", dependsOn: [a] });
    await t.drain();
    expect(seen).toEqual(["a", "b"]);
    expect(t.eventTypes(a)).toEqual([
      "task.created",
      "task.claimed",
      "task.running",
      "task.completed",
    ]);
  });

  it("delays and retry backoff happen when the clock is advanced", async () => {
    t = createTestEngine();
    let calls = 0;
    t.register("flaky", () => {
      if (++calls === 1) throw new Error("first try fails");
      return "ok";
    });
    const later = await t.submit({ type: "flaky", runAt: t.clock.now() + 60_000 });
    await t.drain();
    expect(calls).toBe(0);
    await t.advance(60_000);
    expect(calls).toBe(1);
    expect((await t.get(later)).status).toBe("retrying");
    await t.advance(5_000); // past the first backoff (1 s ± jitter)
    expect(await t.get(later)).toMatchObject({ status: "completed", result: "ok", attempt: 2 });
  });

  it("timeouts fire on the manual clock", async () => {
    t = createTestEngine();
    t.register(
      "hang",
      (_task, ctx) =>
        new Promise((_r, reject) =>
          ctx.signal.addEventListener("abort", () => reject(new Error("aborted"))),
        ),
      {
        timeoutMs: 10_000,
        maxRetries: 0,
      },
    );
    const id = await t.submit({ type: "hang" });
    await t.drain();
    expect((await t.get(id)).status).toBe("running");
    await t.advance(10_000);
    expect((await t.get(id)).status).toBe("failed");
  });

  it("run() submits, drains and returns the final task; destructuring works", async () => {
    t = createTestEngine();
    const { engine, drain } = t;
    engine.register("double", (task: { input: number }) => task.input * 2);
    expect(await t.run({ type: "double", input: 21 })).toMatchObject({
      status: "completed",
      result: 42,
    });
    await drain();
  });
});
