import { afterAll, afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  CancelledError,
  EngineClosedError,
  InvalidTransitionError,
  TaskNotFoundError,
  TaskTimeoutError,
  ValidationError,
  WaitTimeoutError,
  sqlite,
  withRequestId,
  type LoomEvent,
} from "../../src/index.js";
import { engineFactory, sleep, tempDir, until } from "../support/sqlite.js";

const tmp = tempDir();
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

const fast = { backoff: { baseMs: 5, maxMs: 20 } };

describe("submit and run", () => {
  it("persists at once, runs, and records the result", async () => {
    const engine = engines.make();
    const add = engine.register(
      "add",
      (task: { input: { a: number; b: number } }) => task.input.a + task.input.b,
    );
    const id = await add.submit({ a: 2, b: 3 });
    const queued = await engine.get(id);
    expect(queued).toMatchObject({
      id,
      type: "add",
      status: "pending",
      input: { a: 2, b: 3 },
      attempt: 0,
    });
    expect(queued.createdAt).toBeInstanceOf(Date);
    await engine.start();
    const done = await engine.wait(id, { timeoutMs: 5_000 });
    expect(done).toMatchObject({
      status: "completed",
      result: 5,
      attempt: 1,
      error: null,
      engineName: "test",
    });
    expect(done.completedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
  });

  it("fires the lifecycle events in order, and a throwing subscriber harms nobody", async () => {
    const engine = engines.make();
    engine.register("ok", async (_t, ctx) => {
      await ctx.progress(40, "warming up");
      return "fine";
    });
    const seen: LoomEvent[] = [];
    engine.events.subscribe(() => {
      throw new Error("bad subscriber");
    });
    const unsubscribe = engine.events.subscribe((e) => void seen.push(e));
    await engine.start();
    const id = await engine.submit({ type: "ok", project: "p1", requestId: "req-1" });
    await engine.wait(id, { timeoutMs: 5_000 });
    expect(seen.map((e) => e.type)).toEqual([
      "task.created",
      "task.claimed",
      "task.running",
      "task.progress",
      "task.completed",
    ]);
    expect(seen[3]).toMatchObject({ progress: 40, note: "warming up", taskId: id });
    for (const e of seen)
      expect(e).toMatchObject({ taskId: id, tenant: "default", project: "p1", requestId: "req-1" });
    unsubscribe();
    unsubscribe();
    await engine.submit({ type: "ok" });
    await sleep(50);
    expect(seen).toHaveLength(5);
  });

  it("filters subscriptions", async () => {
    const engine = engines.make();
    engine.register("x", () => 1);
    const completed: string[] = [];
    engine.events.subscribe((e) => void completed.push(e.taskId!), { types: ["task.completed"] });
    await engine.start();
    const id = await engine.submit({ type: "x" });
    await engine.wait(id);
    expect(completed).toEqual([id]);
  });

  it("takes the ambient request id, and handlers run inside it", async () => {
    const engine = engines.make();
    let child: string | undefined;
    engine.register("parent", async () => {
      child = await engine.submit({ type: "child" });
    });
    engine.register("child", () => "ok");
    await engine.start();
    const id = await withRequestId("trace-42", () => engine.submit({ type: "parent" }));
    await engine.wait(id, { timeoutMs: 5_000 });
    expect((await engine.get(id)).requestId).toBe("trace-42");
    expect((await engine.get(child!)).requestId).toBe("trace-42");
  });

  it("accepts an object with execute() as a handler", async () => {
    const engine = engines.make();
    class Multiplier {
      constructor(private readonly factor: number) {}
      execute(task: { input: number }) {
        return task.input * this.factor;
      }
    }
    engine.register("obj", new Multiplier(3));
    await engine.start();
    const id = await engine.submit({ type: "obj", input: 7 });
    expect((await engine.wait(id)).result).toBe(21);
  });

  it("orders by priority, then age", async () => {
    const engine = engines.make({ concurrency: 1 });
    const order: string[] = [];
    engine.register("p", (t: { input: string }) => void order.push(t.input));
    await engine.submit({ type: "p", input: "low", priority: 0 });
    await engine.submit({ type: "p", input: "normal-1" });
    await engine.submit({ type: "p", input: "urgent", priority: 3 });
    await engine.submit({ type: "p", input: "normal-2", priority: 1 });
    const last = await engine.submit({ type: "p", input: "high", priority: 2 });
    await engine.start();
    await until(async () => (await engine.count({ status: "completed" })) === 5);
    expect(order).toEqual(["urgent", "high", "normal-1", "normal-2", "low"]);
    expect(last).toBeTruthy();
  });

  it("runs delayed tasks when due, not before", async () => {
    const engine = engines.make();
    engine.register("later", () => Date.now());
    await engine.start();
    const runAt = new Date(Date.now() + 300);
    const id = await engine.submit({ type: "later", runAt });
    await sleep(100);
    expect((await engine.get(id)).status).toBe("pending");
    const done = await engine.wait(id, { timeoutMs: 5_000 });
    expect(done.status).toBe("completed");
    expect(done.result as number).toBeGreaterThanOrEqual(runAt.getTime());
  });

  it("returns the first id for a repeated idempotency key, per tenant", async () => {
    const engine = engines.make();
    const a = await engine.submit({ type: "x", idempotencyKey: "order-1" });
    const b = await engine.submit({ type: "x", idempotencyKey: "order-1", input: "ignored" });
    const c = await engine.submit({ type: "x", idempotencyKey: "order-1", tenant: "other" });
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(await engine.count({})).toBe(2);
  });

  it("submitMany is all or nothing", async () => {
    const engine = engines.make();
    const ids = await engine.submitMany([{ type: "x" }, { type: "x", priority: 2 }]);
    expect(ids).toHaveLength(2);
    await expect(engine.submitMany([{ type: "x" }, { type: "x", priority: 9 }])).rejects.toThrow(
      ValidationError,
    );
    await expect(
      engine.submitMany([{ type: "x" }, { type: "x", dependsOn: ["missing"] }]),
    ).rejects.toThrow(/unknown dependency/);
    expect(await engine.count({})).toBe(2);
  });

  it("checks a registered schema at submit", async () => {
    const engine = engines.make();
    const h = engine.register("typed", (t: { input: { n: number } }) => t.input.n, {
      input: z.object({ n: z.number().int() }),
    });
    await expect(h.submit({ n: 1.5 })).rejects.toThrow(ValidationError);
    await expect(engine.submit({ type: "typed", input: { n: "x" } })).rejects.toMatchObject({
      field: "input",
    });
    expect(await engine.count({})).toBe(0);
    await engine.start();
    expect((await h.wait(await h.submit({ n: 4 }))).result).toBe(4);
  });

  it("does not lose a wake-up that arrives while a claim is in flight", async () => {
    // The claim reads an empty queue; another process's submit lands and wakes this dispatcher
    // while that claim is still on its way back. The poll is a minute away, so only that wake-up
    // can start the task.
    const path = tmp.file();
    const store = sqlite(path);
    const exchange = store.exchange.bind(store);
    let holdClaim: Promise<void> | null = null;
    let woken = false;
    store.exchange = async (req) => {
      const out = await exchange(req);
      if (req.claim && holdClaim) await holdClaim;
      return out;
    };
    store.onExternalChange(() => (woken = true));
    const engine = engines.make({ store, pollMs: 60_000 });
    const ran: string[] = [];
    engine.register("x", (t) => void ran.push(t.id));
    let release!: () => void;
    holdClaim = new Promise((r) => (release = r));
    await engine.start();
    await sleep(20); // the first claim has read the (empty) queue and is held
    const id = await engines.make({ path }).submit({ type: "x" });
    await until(() => woken, 2_000);
    holdClaim = null;
    release();
    await until(() => ran.includes(id), 2_000);
  });
});

describe("validation", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["empty type", { type: "" }, "type"],
    ["non-string type", { type: 42 }, "type"],
    ["function in input", { type: "x", input: { f: () => 1 } }, "input"],
    ["bigint input", { type: "x", input: 10n }, "input"],
    ["NaN input", { type: "x", input: { n: NaN } }, "input"],
    ["priority out of range", { type: "x", priority: 4 }, "priority"],
    ["fractional priority", { type: "x", priority: 1.5 }, "priority"],
    ["negative timeout", { type: "x", timeoutMs: -5 }, "timeoutMs"],
    ["negative maxRetries", { type: "x", maxRetries: -1 }, "maxRetries"],
    ["bad runAt", { type: "x", runAt: "not a date" }, "runAt"],
    ["dependsOn not an array", { type: "x", dependsOn: "abc" }, "dependsOn"],
    ["unknown dependency", { type: "x", dependsOn: ["nope"] }, "dependsOn"],
    ["labels not strings", { type: "x", labels: { a: 1 } }, "labels.a"],
    ["unknown field", { type: "x", priorty: 2 }, "priorty"],
    ["reserved type", { type: "loom.workflow" }, "type"],
  ];
  it.each(cases)("rejects %s and persists nothing", async (_name, req, field) => {
    const engine = engines.make();
    const err = await engine.submit(req as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect((err as ValidationError).code).toBe("VALIDATION");
    expect(await engine.count({})).toBe(0);
  });

  it("rejects a circular input", async () => {
    const engine = engines.make();
    const input: Record<string, unknown> = {};
    input.self = input;
    await expect(engine.submit({ type: "x", input })).rejects.toMatchObject({ field: "input" });
  });

  it("rejects bad engine and register options", () => {
    expect(() => engines.make({ concurrency: 0 })).toThrow(ValidationError);
    const engine = engines.make();
    expect(() => engine.register("", () => 1)).toThrow(ValidationError);
    expect(() => engine.register("loom.x", () => 1)).toThrow(/reserved/);
    expect(() => engine.register("x", () => 1, { timeoutMs: -1 })).toThrow(ValidationError);
    expect(() => engine.register("x", () => 1, { crashPolicy: "maybe" as never })).toThrow(
      ValidationError,
    );
  });
});

describe("retries, timeouts and the gate", () => {
  it("retries with backoff until it succeeds, and counts attempts", async () => {
    const engine = engines.make();
    let calls = 0;
    engine.register(
      "flaky",
      () => {
        calls++;
        if (calls < 3) throw new Error(`boom ${calls}`);
        return "third time";
      },
      fast,
    );
    const events: string[] = [];
    engine.events.subscribe((e) => void events.push(e.type), {
      types: ["task.retrying", "task.completed"],
    });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "flaky" }), { timeoutMs: 5_000 });
    expect(task).toMatchObject({ status: "completed", result: "third time", attempt: 3 });
    expect(events).toEqual(["task.retrying", "task.retrying", "task.completed"]);
  });

  it("fails after maxRetries with the redacted error", async () => {
    const engine = engines.make();
    engine.register(
      "doomed",
      () => {
        throw new Error(
          "call to https://bob:hunter2@api.example.com failed with Bearer abcdefghijklmnop",
        );
      },
      { ...fast, maxRetries: 1 },
    );
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "doomed" }), { timeoutMs: 5_000 });
    expect(task.status).toBe("failed");
    expect(task.attempt).toBe(2);
    expect(task.error).toContain("failed with");
    expect(task.error).not.toContain("hunter2");
    expect(task.error).not.toContain("abcdefghijklmnop");
  });

  it("an error with retryable: false fails at once, retries left or not", async () => {
    const engine = engines.make();
    engine.register(
      "gone",
      () => {
        throw Object.assign(new Error("404 not found"), { retryable: false });
      },
      fast,
    );
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "gone" }), { timeoutMs: 5_000 });
    expect(task).toMatchObject({ status: "failed", attempt: 1, maxRetries: 2 });
  });

  it("maxRetries on the request overrides the type", async () => {
    const engine = engines.make();
    engine.register("nope", () => Promise.reject(new Error("no")), fast);
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "nope", maxRetries: 0 }), {
      timeoutMs: 5_000,
    });
    expect(task).toMatchObject({ status: "failed", attempt: 1, maxRetries: 0 });
  });

  it("times out: aborts ctx.signal, then counts as a failed attempt", async () => {
    const engine = engines.make();
    let reason: unknown;
    engine.register(
      "hang",
      (_t, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => {
            reason = ctx.signal.reason;
            reject(ctx.signal.reason as Error);
          });
        }),
      { timeoutMs: 50, maxRetries: 0 },
    );
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "hang" }), { timeoutMs: 5_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toMatch(/timed out after 50 ms/);
    expect(reason).toBeInstanceOf(TaskTimeoutError);
  });

  it("gate: an empty result is retried, then fails when retries run out", async () => {
    const engine = engines.make();
    const results: unknown[] = [[], "", { content: "" }];
    let i = 0;
    engine.register("empty", () => results[i++], { ...fast, maxRetries: 2 });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "empty" }), { timeoutMs: 5_000 });
    expect(task).toMatchObject({ status: "failed", attempt: 3 });
    expect(task.error).toMatch(/empty_output/);
  });

  it("gate: undefined (no return) is accepted; a rate-limit answer is retried", async () => {
    const engine = engines.make();
    engine.register("void", () => undefined);
    let n = 0;
    engine.register("limited", () => (n++ === 0 ? { status: 429 } : "served"), fast);
    await engine.start();
    expect((await engine.wait(await engine.submit({ type: "void" }))).status).toBe("completed");
    expect(
      await engine.wait(await engine.submit({ type: "limited" }), { timeoutMs: 5_000 }),
    ).toMatchObject({
      status: "completed",
      result: "served",
      attempt: 2,
    });
  });

  it("gate: thrashing results fail the task even with retries left", async () => {
    const engine = engines.make();
    const picky = () => ({ accept: false, retry: true, reason: "not good enough" });
    const { composeGate, defaultChecks } = await import("../../src/index.js");
    engine.register("loop", () => "the very same answer again", {
      ...fast,
      maxRetries: 10,
      gate: composeGate(...defaultChecks(), picky),
    });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "loop" }), { timeoutMs: 5_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toMatch(/thrashing/);
    expect(task.attempt).toBe(3);
  });

  it("gate: false turns it off", async () => {
    const engine = engines.make();
    engine.register("raw", () => "", { gate: false });
    await engine.start();
    expect(await engine.wait(await engine.submit({ type: "raw" }))).toMatchObject({
      status: "completed",
      result: "",
    });
  });
});

describe("dependencies", () => {
  it("a task waits for its dependencies, then runs", async () => {
    const engine = engines.make();
    const order: string[] = [];
    engine.register("step", (t: { input: string }) => void order.push(t.input));
    const a = await engine.submit({ type: "step", input: "a", runAt: Date.now() + 150 });
    const b = await engine.submit({ type: "step", input: "b", dependsOn: [a] });
    const c = await engine.submit({ type: "step", input: "c", dependsOn: [a, b] });
    expect((await engine.get(c)).dependsOn).toEqual([a, b]);
    await engine.start();
    await engine.wait(c, { timeoutMs: 5_000 });
    expect(order).toEqual(["a", "b", "c"]);
  });

  it("a failed dependency cancels its dependents transitively, with the reason", async () => {
    const engine = engines.make();
    engine.register(
      "bad",
      () => {
        throw new Error("nope");
      },
      { maxRetries: 0 },
    );
    engine.register("never", () => "ran");
    const a = await engine.submit({ type: "bad" });
    const b = await engine.submit({ type: "never", dependsOn: [a] });
    const c = await engine.submit({ type: "never", dependsOn: [b] });
    await engine.start();
    const cTask = await engine.wait(c, { timeoutMs: 5_000 });
    expect(cTask.status).toBe("cancelled");
    expect(cTask.error).toMatch(/dependency/);
    const bTask = await engine.get(b);
    expect(bTask).toMatchObject({ status: "cancelled", attempt: 0 });
    expect(bTask.error).toContain(a);
    // Depending on an ended task is immediate.
    const d = await engine.submit({ type: "never", dependsOn: [a] });
    expect((await engine.get(d)).status).toBe("cancelled");
  });
});

describe("cancel", () => {
  it("cancelling a running task aborts its signal and its late result is discarded", async () => {
    const engine = engines.make();
    let aborted: unknown;
    let release!: () => void;
    engine.register("long", async (_t, ctx) => {
      ctx.signal.addEventListener("abort", () => {
        aborted = ctx.signal.reason;
      });
      await new Promise<void>((r) => (release = r));
      return "too late";
    });
    await engine.start();
    const id = await engine.submit({ type: "long" });
    await until(async () => (await engine.get(id)).status === "running");
    const cancelled = await engine.cancel(id, "user asked");
    expect(cancelled).toMatchObject({ status: "cancelled", error: "user asked" });
    expect(aborted).toBeInstanceOf(CancelledError);
    release();
    await sleep(50);
    expect(await engine.get(id)).toMatchObject({ status: "cancelled", result: null });
    await expect(engine.cancel(id)).rejects.toThrow(InvalidTransitionError);
    await expect(engine.cancel("missing")).rejects.toThrow(TaskNotFoundError);
  });

  it("cancelAll cancels every non-terminal match of a filter", async () => {
    const engine = engines.make();
    await engine.submit({ type: "x", project: "a" });
    await engine.submit({ type: "x", project: "a" });
    await engine.submit({ type: "x", project: "b" });
    expect(await engine.cancelAll({ project: "a" })).toBe(2);
    expect(await engine.count({ status: "cancelled" })).toBe(2);
    expect(await engine.count({ status: ["pending"], project: "b" })).toBe(1);
  });
});

describe("reads", () => {
  it("lists newest first with cursors and filters", async () => {
    const engine = engines.make();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(
        await engine.submit({
          type: i % 2 ? "odd" : "even",
          labels: { n: String(i) },
          caller: "c" + (i % 3),
        }),
      );
    }
    const first = await engine.list({ limit: 3 });
    expect(first.items.map((t) => t.id)).toEqual(ids.slice(-3).reverse());
    const second = await engine.list({ limit: 3, cursor: first.nextCursor! });
    expect(second.items.map((t) => t.id)).toEqual(ids.slice(1, 4).reverse());
    const third = await engine.list({ limit: 3, cursor: second.nextCursor! });
    expect(third.items.map((t) => t.id)).toEqual([ids[0]]);
    expect(third.nextCursor).toBeNull();
    expect((await engine.list({ type: "odd" })).items).toHaveLength(3);
    expect((await engine.list({ labels: { n: "4" } })).items.map((t) => t.id)).toEqual([ids[4]]);
    expect(await engine.count({ caller: "c0" })).toBe(3);
    await expect(engine.list({ limit: 0 })).rejects.toThrow(ValidationError);
    await expect(engine.list({ status: "bogus" as never })).rejects.toThrow(ValidationError);
    await expect(engine.get("missing")).rejects.toThrow(TaskNotFoundError);
  });

  it("position counts the ready tasks ahead", async () => {
    const engine = engines.make();
    const a = await engine.submit({ type: "q" });
    const b = await engine.submit({ type: "q" });
    const c = await engine.submit({ type: "q", priority: 3 });
    expect((await engine.position(c)).position).toBe(1);
    expect((await engine.position(a)).position).toBe(2);
    expect((await engine.position(b)).position).toBe(3);
  });

  it("wait times out with WaitTimeoutError", async () => {
    const engine = engines.make();
    const id = await engine.submit({ type: "nobody-runs-this" });
    await expect(engine.wait(id, { timeoutMs: 50 })).rejects.toBeInstanceOf(WaitTimeoutError);
  });

  it("purges terminal tasks older than the cutoff", async () => {
    const engine = engines.make();
    engine.register("x", () => 1);
    await engine.start();
    const done = await engine.submit({ type: "x" });
    await engine.wait(done);
    const pending = await engine.submit({ type: "unregistered" });
    expect(await engine.purge({ olderThan: new Date(Date.now() - 60_000) })).toBe(0);
    expect(await engine.purge({ olderThan: new Date(Date.now() + 1) })).toBe(1);
    await expect(engine.get(done)).rejects.toThrow(TaskNotFoundError);
    expect((await engine.get(pending)).status).toBe("pending");
  });
});

describe("close", () => {
  it("waits for a timed-out handler that is still returning, up to the deadline", async () => {
    const engine = engines.make();
    let returned = false;
    engine.register(
      "slow-to-stop",
      async (_t, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
        await sleep(150); // cleaning up after the abort
        returned = true;
      },
      { timeoutMs: 20, maxRetries: 0 },
    );
    await engine.start();
    const id = await engine.submit({ type: "slow-to-stop" });
    expect((await engine.wait(id, { timeoutMs: 5_000 })).status).toBe("failed");
    expect(returned).toBe(false);
    await engine.close({ timeoutMs: 5_000 });
    expect(returned).toBe(true);
  });

  it("drains in-flight work, then refuses submits", async () => {
    const engine = engines.make();
    engine.register("work", async () => {
      await sleep(100);
      return "done";
    });
    await engine.start();
    const id = await engine.submit({ type: "work" });
    await until(async () => (await engine.get(id)).status === "running");
    const reader = engines.make({
      path: (engine.store as unknown as { path: string }).path,
      name: "reader",
    });
    await engine.close();
    await engine.close();
    expect((await reader.get(id)).status).toBe("completed");
    await expect(engine.submit({ type: "work" })).rejects.toBeInstanceOf(EngineClosedError);
    await expect(engine.start()).rejects.toBeInstanceOf(EngineClosedError);
  });

  it("past its deadline, aborts handlers and leaves the rows to lease recovery", async () => {
    const engine = engines.make();
    let aborted = false;
    engine.register("stuck", (_t, ctx) => {
      ctx.signal.addEventListener("abort", () => (aborted = true));
      return new Promise(() => {});
    });
    await engine.start();
    const id = await engine.submit({ type: "stuck" });
    await until(async () => (await engine.get(id)).status === "running");
    const path = (engine.store as unknown as { path: string }).path;
    const t0 = Date.now();
    await engine.close({ timeoutMs: 50 });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(aborted).toBe(true);
    const reader = engines.make({ path, name: "reader" });
    expect((await reader.get(id)).status).toBe("running");
  });
});
