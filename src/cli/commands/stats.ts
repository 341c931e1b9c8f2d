import type { Command } from "commander";
import type { Engine } from "../../core/engine.js";
import { TASK_STATUSES, type TaskStatus } from "../../core/types.js";
import { withEngine } from "../context.js";
import { paintStatus, table } from "../output.js";
import { action } from "../run.js";

/**
 * Lane stats, when the engine has them. COORDINATOR: once lanes land, replace this probe with
 * the lanes helper's engine call that lists every lane's `LaneStats` (as GET /api/v1/stats does).
 */
async function laneStats(engine: Engine): Promise<unknown[]> {
  const lanes = (engine as unknown as { lanes?: { stats?: () => Promise<unknown[]> | unknown[] } })
    .lanes;
  if (lanes && typeof lanes.stats === "function") return await lanes.stats();
  return [];
}

export function statsCommand(program: Command): void {
  program
    .command("stats")
    .description("task counts by status (and lanes, when the engine has them)")
    .option("--tenant <tenant>", "only this tenant")
    .option("--project <project>", "only this project")
    .action(
      action(async (ctx, f: { tenant?: string; project?: string }) => {
        await withEngine(ctx, async (engine) => {
          const scope = {
            ...(f.tenant !== undefined ? { tenant: f.tenant } : {}),
            ...(f.project !== undefined ? { project: f.project } : {}),
          };
          const counts = Object.fromEntries(
            await Promise.all(
              TASK_STATUSES.map(
                async (s) => [s, await engine.count({ ...scope, status: s })] as const,
              ),
            ),
          ) as Record<TaskStatus, number>;
          const lanes = await laneStats(engine);
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
            ctx.o.out(JSON.stringify(lanes, null, 2));
          }
        });
      }),
    );
}
