import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { CONFIG_FILE, DEFAULT_DB } from "../config.js";
import { CliError, EXIT } from "../errors.js";
import { paint } from "../output.js";
import { action } from "../run.js";

export const WORKER_FILE = "loom.worker.mjs";

const STARTER = `// A Loom worker module: \`loom worker\` loads it (see docs/cli.md, "worker module contract").
// Its default export receives the engine; register your task types (and lanes, workflows) on it.

/** @param {import("loomkit").Engine} engine */
export default function setup(engine) {
  // loom submit hello '{"name":"Ada"}' --wait
  engine.register("hello", async (task, ctx) => {
    await ctx.progress(50, "thinking");
    return { greeting: \`Hello, \${task.input?.name ?? "world"}!\` };
  });
}
`;

export function initCommand(program: Command): void {
  program
    .command("init")
    .description(`write ${CONFIG_FILE} and a starter worker module ${WORKER_FILE}`)
    .option("--force", "overwrite existing files")
    .action(
      action(async (ctx, opts: { force?: boolean }) => {
        const cwd = process.cwd();
        const config = resolve(cwd, ctx.flags.config ?? CONFIG_FILE);
        const worker = resolve(cwd, WORKER_FILE);
        const existing = [config, worker].filter((f) => existsSync(f));
        if (existing.length && !opts.force) {
          throw new CliError(
            `${existing.join(" and ")} already exist${existing.length === 1 ? "s" : ""}; use --force to overwrite`,
            EXIT.usage,
          );
        }
        const body = { db: ctx.flags.db ?? DEFAULT_DB, worker: `./${WORKER_FILE}` };
        writeFileSync(config, JSON.stringify(body, null, 2) + "\n");
        writeFileSync(worker, STARTER);
        if (ctx.o.json) {
          ctx.o.data({ config, worker, db: body.db });
        } else {
          ctx.o.out(`${paint(ctx.o, "green", "wrote")} ${config}`);
          ctx.o.out(`${paint(ctx.o, "green", "wrote")} ${worker}`);
          ctx.o.out(`next: ${paint(ctx.o, "bold", "loom worker")} in one terminal, then`);
          ctx.o.out(`      ${paint(ctx.o, "bold", `loom submit hello '{"name":"Ada"}' --wait`)}`);
        }
      }),
    );
}
