import type { Command } from "commander";
import { createServer, DEFAULT_HOST, DEFAULT_PORT } from "../../http/index.js";
import { describeStore } from "../config.js";
import { openEngine, type CliContext } from "../context.js";
import { parseIntFlag } from "../duration.js";
import { action } from "../run.js";
import { untilSignal } from "../signals.js";
import { paint } from "../output.js";

export interface ListenFlags {
  host?: string;
  port?: string;
}

export function listenOf(ctx: CliContext, f: ListenFlags): { host: string; port: number } {
  const file = ctx.config().file;
  return {
    host: f.host ?? file.host ?? DEFAULT_HOST,
    port:
      f.port !== undefined ? parseIntFlag(f.port, "--port", 0, 65535) : (file.port ?? DEFAULT_PORT),
  };
}

export function serveCommand(program: Command): void {
  program
    .command("serve")
    .description("serve the HTTP API (and the dashboard) until SIGINT/SIGTERM")
    .option("--host <host>", `interface to bind (default ${DEFAULT_HOST})`)
    .option("--port <port>", `port (default ${DEFAULT_PORT}; 0 picks a free one)`)
    .action(
      action(async (ctx, f: ListenFlags) => {
        const { host, port } = listenOf(ctx, f);
        const engine = openEngine(ctx, { name: "loom-serve" });
        const signal = untilSignal();
        let running;
        try {
          running = await createServer(engine).listen(port, host);
        } catch (err) {
          await engine.close({ timeoutMs: 1_000 }).catch(() => {});
          throw err;
        }
        if (ctx.o.json) ctx.o.data({ url: running.url, store: describeStore(ctx.config().store) });
        else
          ctx.o.out(
            `${paint(ctx.o, "green", "loom serve")} ${paint(ctx.o, "bold", running.url)}  (API ${running.url}/api/v1, docs ${running.url}/docs)`,
          );
        await signal;
        await running.close();
        await engine.close({ timeoutMs: 5_000 });
      }),
    );
}
