import { setTimeout as delay } from "node:timers/promises";
import type { Engine } from "../../core/engine.js";
import { fanOut } from "../../workflow/flows.js";

/**
 * The example task types `loom dev` registers, so a first run has something to look at.
 * Each shows one engine feature: progress, results, retries.
 */
export async function registerExamples(engine: Engine): Promise<void> {
  /** Sleeps `ms` in ten steps, reporting progress; honours cancellation. */
  engine.register(
    "demo.sleep",
    async (task: { input: { ms?: number } | null }, ctx) => {
      const ms = Math.min(Math.max(Number(task.input?.ms ?? 3000), 0), 600_000);
      for (let i = 1; i <= 10; i++) {
        await delay(ms / 10, undefined, { signal: ctx.signal });
        await ctx.progress(i * 10, `step ${i} of 10`);
      }
      return { sleptMs: ms };
    },
    // After Ctrl-C mid-sleep, the next `loom dev` runs it again rather than marking it crashed.
    { timeoutMs: 15 * 60_000, crashPolicy: "retry" },
  );

  /** Returns its input, stamped. */
  engine.register("demo.echo", (task: { input: unknown }) => ({
    echo: task.input,
    at: new Date().toISOString(),
  }));

  /** Fails with probability `failRate` (default 0.5): watch it retry, then succeed or fail. */
  engine.register(
    "demo.flaky",
    (task: { input: { failRate?: number } | null }, ctx) => {
      const rate = Math.min(Math.max(Number(task.input?.failRate ?? 0.5), 0), 1);
      if (Math.random() < rate) throw new Error(`demo.flaky: unlucky on attempt ${ctx.attempt}`);
      return { ok: true, attempt: ctx.attempt };
    },
    { maxRetries: 3, backoff: { baseMs: 500, maxMs: 2000, factor: 2 } },
  );

  // A scarce resource: at most 2 "model calls" at once, shared fairly between callers.
  await engine.lane("demo.llm", { concurrency: 2 });
  engine.register(
    "demo.chat",
    async (task: { input: { prompt?: string } | null }, ctx) => {
      await delay(1500, undefined, { signal: ctx.signal });
      return { reply: `echo: ${String(task.input?.prompt ?? "")}` };
    },
    { lane: "demo.llm" },
  );

  /** A durable workflow: a step, an activity through the lane, a durable sleep, a signal. */
  engine.workflow("demo.onboarding", {
    run: async (ctx, input: { user?: string } | null) => {
      const user = String(input?.user ?? "ada");
      const account = await ctx.step("create-account", () => ({ user, id: `acct-${user}` }));
      const welcome = await ctx.activity("demo.chat", { prompt: `welcome ${user}` });
      await ctx.sleep("settle", 2_000);
      let approved: unknown = "timed out";
      try {
        approved = await ctx.waitForSignal("approve", { timeoutMs: 60_000 });
      } catch {
        // No one approved within a minute: carry on, recorded as such.
      }
      return { account, welcome, approved };
    },
  });
}

/** The tasks `loom dev` submits at start. */
export async function submitExamples(engine: Engine): Promise<string[]> {
  const ids = await engine.submitMany([
    { type: "demo.echo", input: { hello: "world" } },
    { type: "demo.sleep", input: { ms: 5000 }, labels: { example: "progress" } },
    { type: "demo.sleep", input: { ms: 20_000 }, priority: 2 },
    { type: "demo.flaky", input: { failRate: 0.5 } },
    { type: "demo.flaky", input: { failRate: 0.9 } },
    ...["ada", "grace", "alan"].map((caller) => ({
      type: "demo.chat",
      input: { prompt: `hello from ${caller}` },
      caller,
    })),
  ]);
  await engine.workflows.start("demo.onboarding", { user: "ada" });
  await engine.flow(
    fanOut("demo.fan-out", {
      tasks: [
        { key: "a", type: "demo.echo", input: { part: "a" } },
        { key: "b", type: "demo.sleep", input: { ms: 2000 } },
        { key: "c", type: "demo.echo", input: { part: "c" } },
      ],
      then: { key: "join", type: "demo.echo", input: { joined: true } },
    }),
  );
  return ids;
}
