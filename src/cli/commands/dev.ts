import type { Command } from "commander";
import { createServer } from "../../http/index.js";
import { describeStore } from "../config.js";
import { openEngine } from "../context.js";
import { parseIntFlag } from "../duration.js";
import { registerExamples, submitExamples } from "../dev/examples.js";
import { paint } from "../output.js";
import { action } from "../run.js";
import { untilSignal } from "../signals.js";
import { listenOf, type ListenFlags } from "./serve.js";

/**
 * One command, zero set-up: an embedded SQLite engine (`.loom/loom.db`, or `--db`), a worker
 * with the example task types, the HTTP API and dashboard, and a few example tasks.
 */
export function devCommand(program: Command): void {
  program
    .command("dev")
    .description("embedded engine + worker + HTTP API + dashboard with example tasks, one command")
    .option("--host <host>", "interface to bind (default 127.0.0.1)")
    .option("--port <port>", "port (default 7070; 0 picks a free one)")
    .option("--concurrency <n>", "tasks run at once", "4")
    .option("--no-examples", "do not submit the example tasks at start")
    .action(
      action(async (ctx, f: ListenFlags & { concurrency: string; examples: boolean }) => {
        const { host, port } = listenOf(ctx, f);
        const concurrency = parseIntFlag(f.concurrency, "--concurrency", 1, 1000);
        // The configured store: by default the embedded SQLite file .loom/loom.db in the cwd.
        const { store } = ctx.config();
        const engine = openEngine(ctx, { name: "loom-dev", concurrency, retention: {} });
        const signal = untilSignal();
        let running;
        try {
          await registerExamples(engine);
          await engine.start();
          running = await createServer(engine).listen(port, host);
        } catch (err) {
          await engine.close({ timeoutMs: 1_000 }).catch(() => {});
          throw err;
        }
        const ids = f.examples ? await submitExamples(engine) : [];
        if (ctx.o.json) {
          ctx.o.data({ url: running.url, api: `${running.url}/api/v1`, examples: ids });
        } else {
          const o = ctx.o;
          o.out(`${paint(o, "green", "loom dev")} ready`);
          o.out(`  dashboard  ${paint(o, "bold", running.url + "/")}`);
          o.out(`  API        ${running.url}/api/v1   (docs ${running.url}/docs)`);
          o.out(`  store      ${describeStore(store)}`);
          if (ids.length)
            o.out(
              `  submitted  ${ids.length} example tasks, a workflow run (demo.onboarding) and a flow (demo.fan-out)`,
            );
          o.out(
            paint(
              o,
              "dim",
              `  try: loom submit demo.sleep '{"ms":3000}' --wait     Ctrl-C to stop`,
            ),
          );
        }
        await signal;
        if (!ctx.o.json) ctx.o.err("stopping…");
        await running.close();
        await engine.close({ timeoutMs: 5_000 });
      }),
    );
}
