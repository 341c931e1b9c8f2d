import type { Command } from "commander";
import { describeStore, defaultEngineName } from "../config.js";
import { openEngine } from "../context.js";
import { parseDuration, parseIntFlag } from "../duration.js";
import { usageError } from "../errors.js";
import { paint } from "../output.js";
import { action } from "../run.js";
import { untilSignal } from "../signals.js";
import { laneFilteredEngine, loadWorkerModule } from "../worker-module.js";
import { splitList } from "./list.js";

interface WorkerFlags {
  concurrency?: string;
  lanes?: string[];
  pollInterval?: string;
  name?: string;
  drainTimeout: string;
}

export function workerCommand(program: Command): void {
  program
    .command("worker")
    .description("run the task types of a worker module until SIGINT/SIGTERM, then drain")
    .argument(
      "[module]",
      "the worker module (default: config file's `worker`, or ./loom.worker.mjs)",
    )
    .option("--concurrency <n>", "tasks run at once (default 10)")
    .option("--lanes <lane...>", "only run types declared with one of these lanes")
    .option("--poll-interval <duration>", "fallback look for ready work, e.g. 1s, 250ms")
    .option("--name <name>", "engine name, for crash recovery (default <hostname>:<pid>)")
    .option("--drain-timeout <duration>", "on a signal, how long in-flight tasks may finish", "30s")
    .action(
      action(async (ctx, modulePath: string | undefined, f: WorkerFlags) => {
        const { file, baseDir, store } = ctx.config();
        const path = modulePath ?? file.worker ?? "./loom.worker.mjs";
        const setup = await loadWorkerModule(path, modulePath ? process.cwd() : baseDir);
        const concurrency =
          f.concurrency !== undefined
            ? parseIntFlag(f.concurrency, "--concurrency", 1, 10_000)
            : (file.concurrency ?? 10);
        const lanes = splitList(f.lanes) ?? null;
        const drainMs = parseDuration(f.drainTimeout, "--drain-timeout");
        const pollMs =
          f.pollInterval !== undefined
            ? parseDuration(f.pollInterval, "--poll-interval")
            : undefined;
        if (pollMs !== undefined && pollMs < 1)
          throw usageError("--poll-interval must be at least 1ms");
        const name = f.name ?? file.name ?? defaultEngineName();

        const engine = openEngine(ctx, {
          name,
          concurrency,
          retention: {},
          ...(pollMs !== undefined ? { pollMs } : {}),
        });
        const signal = untilSignal();
        try {
          await setup(laneFilteredEngine(engine, lanes), { lanes });
          await engine.start();
        } catch (err) {
          await engine.close({ timeoutMs: 1_000 }).catch(() => {});
          throw err;
        }
        if (!ctx.o.json) {
          ctx.o.err(
            `${paint(ctx.o, "green", "worker")} ${name} running ${path} on ${describeStore(store)} (concurrency ${concurrency}${lanes ? `, lanes ${lanes.join(",")}` : ""}); Ctrl-C to stop`,
          );
        }
        const sig = await signal;
        if (!ctx.o.json) ctx.o.err(`${sig}: stopped claiming; draining in-flight tasks…`);
        await engine.close({ timeoutMs: drainMs });
        if (ctx.o.json) ctx.o.data({ stopped: true, signal: sig, name });
        else ctx.o.err("worker stopped");
      }),
    );
}
