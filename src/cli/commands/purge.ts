import type { Command } from "commander";
import { TERMINAL_STATUSES } from "../../core/types.js";
import { withEngine } from "../context.js";
import { parseDuration } from "../duration.js";
import { usageError } from "../errors.js";
import { action } from "../run.js";
import { statusList } from "./list.js";

export function purgeCommand(program: Command): void {
  program
    .command("purge")
    .description("delete terminal tasks that ended more than a duration ago")
    .requiredOption("--older-than <duration>", "e.g. 7d, 12h, 30m")
    .option(
      "--status <status...>",
      `terminal statuses to delete (default all: ${TERMINAL_STATUSES.join(", ")})`,
    )
    .action(
      action(async (ctx, f: { olderThan: string; status?: string[] }) => {
        const olderThan = parseDuration(f.olderThan, "--older-than");
        const statuses = statusList(f.status);
        for (const s of statuses ?? []) {
          if (!TERMINAL_STATUSES.includes(s)) {
            throw usageError(`--status: only terminal statuses can be purged, not ${s}`);
          }
        }
        await withEngine(ctx, async (engine) => {
          const purged = await engine.purge({ olderThan, ...(statuses ? { statuses } : {}) });
          if (ctx.o.json) ctx.o.data({ purged });
          else ctx.o.out(`purged ${purged} task${purged === 1 ? "" : "s"}`);
        });
      }),
    );
}
