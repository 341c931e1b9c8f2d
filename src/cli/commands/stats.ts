import type { Command } from "commander";
import { TASK_STATUSES } from "../../core/types.js";
import { withEngine } from "../context.js";
import { paintStatus, table } from "../output.js";
import { action } from "../run.js";

export function statsCommand(program: Command): void {
  program
    .command("stats")
    .description("task counts by status, and every lane's load")
    .option("--tenant <tenant>", "only this tenant")
    .option("--project <project>", "only this project")
    .action(
      action(async (ctx, f: { tenant?: string; project?: string }) => {
        await withEngine(ctx, async (engine) => {
          const scope = {
            ...(f.tenant !== undefined ? { tenant: f.tenant } : {}),
            ...(f.project !== undefined ? { project: f.project } : {}),
          };
          const { counts } = await engine.stats(scope);
          const lanes = await engine.lanes.list();
          if (ctx.o.json) return ctx.o.data({ counts, lanes });
          const total = Object.values(counts).reduce((a, b) => a + b, 0);
          ctx.o.out(
            table(
              ctx.o,
              ["STATUS", "COUNT"],
              [
                ...TASK_STATUSES.map((s) => [paintStatus(ctx.o, s), String(counts[s])]),
                ["total", String(total)],
              ],
            ),
          );
          if (lanes.length) {
            ctx.o.out();
            ctx.o.out(
              table(
                ctx.o,
                ["LANE", "CONCURRENCY", "RUNNING", "QUEUED", "PER MIN", "ETA"],
                lanes.map((l) => [
                  l.name,
                  String(l.concurrency),
                  String(l.running),
                  String(l.queued),
                  String(l.throughput1m),
                  l.queued ? `${Math.round(l.etaMs / 1000)}s` : "-",
                ]),
              ),
            );
          }
        });
      }),
    );
}
