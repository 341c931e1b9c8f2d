import type { Engine } from "../../core/engine.js";

/**
 * The example task types `loom dev` registers, so a first run has something to look at.
 * Each shows one engine feature: progress, results, retries.
 */
export function registerExamples(engine: Engine): void {
  /** Sleeps `ms` in ten steps, reporting progress; honours cancellation. */
  engine.register(
    "demo.sleep",
    async (task: { input: { ms?: number } | null }, ctx) => {
      const ms = Math.min(Math.max(Number(task.input?.ms ?? 3000), 0), 600_000);
      for (let i = 1; i <= 10; i++) {
        await abortableDelay(ms / 10, ctx.signal);
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

  // COORDINATOR: once lanes land, declare an example lane here and put a demo type through it:
  //   engine.lane("demo.llm", { concurrency: 2 });
  //   engine.register("demo.chat", handler, { lane: "demo.llm" });

  // COORDINATOR: once workflows land, define a sample workflow here, e.g.
  //   engine.workflow("demo.onboarding", { run: async (ctx, input) => { ... ctx.activity("demo.echo", …) … } });
}

/** The tasks `loom dev` submits at start. */
export async function submitExamples(engine: Engine): Promise<string[]> {
  return engine.submitMany([
    { type: "demo.echo", input: { hello: "world" } },
    { type: "demo.sleep", input: { ms: 5000 }, labels: { example: "progress" } },
    { type: "demo.sleep", input: { ms: 20_000 }, priority: 2 },
    { type: "demo.flaky", input: { failRate: 0.5 } },
    { type: "demo.flaky", input: { failRate: 0.9 } },
  ]);
  // COORDINATOR: once workflows land, start the sample workflow here too.
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
