import type { Command } from "commander";
import { withEngine } from "../context.js";
import { EXIT, usageError } from "../errors.js";
import { paint } from "../output.js";
import { action } from "../run.js";
import { addFilterOptions, filterOf, type FilterFlags } from "./list.js";

export function cancelCommand(program: Command): void {
  addFilterOptions(
    program
      .command("cancel")
      .description("cancel tasks by id, or every non-terminal match of a filter with --all")
      .argument("[ids...]", "task ids")
      .option("--all", "cancel every non-terminal task matching the filter flags")
      .option("--reason <text>", "why (stored as the tasks' error)", "cancelled from the CLI"),
  ).action(
    action(async (ctx, ids: string[], f: FilterFlags & { all?: boolean; reason: string }) => {
      const filter = filterOf(f);
      const filtered = Object.keys(filter).length > 0;
      if (f.all && ids.length) throw usageError("give task ids or --all with a filter, not both");
      if (!f.all && filtered) throw usageError("filter flags need --all (cancel every match)");
      if (!f.all && ids.length === 0) throw usageError("give task ids, or --all with a filter");
      if (f.all && !filtered) {
        throw usageError("--all needs at least one filter (--type, --project, --status…)");
      }
      return withEngine(ctx, async (engine) => {
        if (f.all) {
          const cancelled = await engine.cancelAll(filter, f.reason);
          if (ctx.o.json) ctx.o.data({ cancelled });
          else ctx.o.out(`cancelled ${cancelled} task${cancelled === 1 ? "" : "s"}`);
          return EXIT.ok;
        }
        // Each id on its own: one unknown or finished id must not stop the others.
        const results: { id: string; status?: string; error?: string; code?: string }[] = [];
        for (const id of ids) {
          try {
            const t = await engine.cancel(id, f.reason);
            results.push({ id, status: t.status });
          } catch (err) {
            const e = err as Error & { code?: string };
            results.push({ id, error: e.message, code: e.code ?? "ERROR" });
          }
        }
        if (ctx.o.json) ctx.o.data({ results });
        else {
          for (const r of results) {
            if (r.error) ctx.o.err(`${paint(ctx.o, "red", "error:")} ${r.error}`);
            else ctx.o.out(`${paint(ctx.o, "green", "cancelled")} ${r.id} (${r.status})`);
          }
        }
        const failed = results.filter((r) => r.error);
        if (!failed.length) return EXIT.ok;
        return failed.every((r) => r.code === "TASK_NOT_FOUND") ? EXIT.notFound : EXIT.error;
      });
    }),
  );
}
