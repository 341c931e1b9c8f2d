import type { Command } from "commander";
import { TASK_STATUSES, type TaskFilter, type TaskStatus } from "../../core/types.js";
import { withEngine } from "../context.js";
import { parseIntFlag } from "../duration.js";
import { usageError } from "../errors.js";
import { taskTable } from "../format.js";
import { paint } from "../output.js";
import { action } from "../run.js";
import { parseLabels } from "./submit.js";

export interface FilterFlags {
  status?: string[];
  type?: string[];
  tenant?: string;
  project?: string;
  lane?: string;
  caller?: string;
  label?: string[];
}

/** Splits repeated and comma-separated values: `--status a,b --status c`. */
export const splitList = (values: string[] | undefined): string[] | undefined => {
  const out = (values ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
  return out.length ? out : undefined;
};

export function statusList(values: string[] | undefined): TaskStatus[] | undefined {
  const list = splitList(values);
  for (const s of list ?? []) {
    if (!(TASK_STATUSES as readonly string[]).includes(s)) {
      throw usageError(`--status: unknown status "${s}"; use ${TASK_STATUSES.join(", ")}`);
    }
  }
  return list as TaskStatus[] | undefined;
}

export function filterOf(f: FilterFlags): TaskFilter {
  const filter: TaskFilter = {};
  const status = statusList(f.status);
  const type = splitList(f.type);
  if (status) filter.status = status;
  if (type) filter.type = type;
  if (f.tenant !== undefined) filter.tenant = f.tenant;
  if (f.project !== undefined) filter.project = f.project;
  if (f.lane !== undefined) filter.lane = f.lane;
  if (f.caller !== undefined) filter.caller = f.caller;
  if (f.label) filter.labels = parseLabels(f.label);
  return filter;
}

export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option("--status <status...>", "statuses (repeatable or comma-separated)")
    .option("--type <type...>", "task types (repeatable or comma-separated)")
    .option("--tenant <tenant>", "tenant")
    .option("--project <project>", "project")
    .option("--lane <lane>", "lane")
    .option("--caller <caller>", "caller")
    .option("--label <key=value...>", "labels that must all match");
}

export function listCommand(program: Command): void {
  addFilterOptions(
    program.command("list").description("list tasks, newest first, one page at a time"),
  )
    .option("--limit <n>", "page size, 1–1000", "50")
    .option("--cursor <cursor>", "the next page, from a previous page's nextCursor")
    .action(
      action(async (ctx, f: FilterFlags & { limit: string; cursor?: string }) => {
        const filter = filterOf(f);
        filter.limit = parseIntFlag(f.limit, "--limit", 1, 1000);
        if (f.cursor !== undefined) filter.cursor = f.cursor;
        await withEngine(ctx, async (engine) => {
          const page = await engine.list(filter);
          if (ctx.o.json) return ctx.o.data(page);
          if (page.items.length === 0) return ctx.o.out("no tasks match");
          ctx.o.out(taskTable(ctx.o, page.items));
          if (page.nextCursor) {
            ctx.o.out(paint(ctx.o, "dim", `more: loom list --cursor ${page.nextCursor}`));
          }
        });
      }),
    );
}
