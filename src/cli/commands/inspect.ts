import type { Command } from "commander";
import { isTerminal, type LoomEvent, type Task, type TaskStatus } from "../../core/types.js";
import { withEngine } from "../context.js";
import { taskDetails } from "../format.js";
import { paint, paintStatus, table } from "../output.js";
import { action } from "../run.js";

export interface TimelineEntry {
  at: string;
  what: string;
  status?: string;
  detail?: string;
}

/**
 * What the task row tells about its past. Loom keeps no per-task event log (events are live,
 * relayed between processes only while someone listens), so this is the row's own timestamps:
 * created, due, last started attempt, last progress, the end.
 */
export function timelineOf(t: Task): TimelineEntry[] {
  const out: TimelineEntry[] = [
    { at: t.createdAt.toISOString(), what: "created", status: "pending" },
  ];
  if (t.runAt.getTime() > t.createdAt.getTime()) {
    out.push({ at: t.runAt.toISOString(), what: "due (runAt)" });
  }
  if (t.startedAt) {
    out.push({
      at: t.startedAt.toISOString(),
      what: `attempt ${t.attempt} started`,
      status: "running",
      ...(t.engineName ? { detail: `engine ${t.engineName}` } : {}),
    });
  }
  if (t.progress !== null) {
    out.push({
      at: t.updatedAt.toISOString(),
      what: `progress ${t.progress}%`,
      ...(t.progressNote ? { detail: t.progressNote } : {}),
    });
  }
  if (t.completedAt) {
    out.push({
      at: t.completedAt.toISOString(),
      what: "ended",
      status: t.status,
      ...(t.error ? { detail: t.error } : {}),
    });
  } else if (!t.startedAt || t.status !== "running") {
    out.push({
      at: t.updatedAt.toISOString(),
      what: "now",
      status: t.status,
      ...(t.error ? { detail: t.error } : {}),
    });
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

export function inspectCommand(program: Command): void {
  program
    .command("inspect")
    .description("show one task; --events adds its timeline, --follow streams its live events")
    .argument("<id>", "task id")
    .option("--events", "the task's timeline, from its row")
    .option("--follow", "then print live events until the task ends (Ctrl-C to stop)")
    .action(
      action(async (ctx, id: string, f: { events?: boolean; follow?: boolean }) => {
        await withEngine(ctx, async (engine) => {
          const task = await engine.get(id);
          const timeline = f.events || f.follow ? timelineOf(task) : undefined;
          if (ctx.o.json && !f.follow) {
            ctx.o.data(timeline ? { task, timeline } : task);
            return;
          }
          if (!ctx.o.json) {
            ctx.o.out(taskDetails(ctx.o, task));
            if (timeline) {
              ctx.o.out();
              ctx.o.out(
                table(
                  ctx.o,
                  ["AT", "WHAT", "STATUS", "DETAIL"],
                  timeline.map((e) => [
                    e.at,
                    e.what,
                    e.status ? paintStatus(ctx.o, e.status) : "",
                    e.detail ?? "",
                  ]),
                ),
              );
            }
          }
          if (!f.follow || isTerminal(task.status)) {
            if (ctx.o.json) ctx.o.data({ task, timeline, events: [] });
            return;
          }
          const events: LoomEvent[] = [];
          if (!ctx.o.json) ctx.o.out(paint(ctx.o, "dim", "following live events…"));
          let sawEnd: () => void = () => {};
          const endEvent = new Promise<void>((r) => (sawEnd = r));
          const stop = engine.events.subscribe(
            (e) => {
              events.push(e);
              if (isTerminal(e.status as TaskStatus)) sawEnd();
              if (!ctx.o.json) {
                const extra =
                  e.progress !== undefined
                    ? ` ${e.progress}%${e.note ? ` ${e.note}` : ""}`
                    : e.error
                      ? ` ${e.error}`
                      : "";
                ctx.o.out(
                  `${e.at.toISOString()}  ${e.type}  ${paintStatus(ctx.o, e.status)}${extra}`,
                );
              }
            },
            { taskId: id },
          );
          try {
            const end = await engine.wait(id);
            // The row ends in one write and its last event is relayed in the next: the row may
            // be seen first. Give that event a moment to arrive, so it is printed too.
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([endEvent, new Promise((r) => (timer = setTimeout(r, 1_000)))]);
            clearTimeout(timer);
            if (ctx.o.json) ctx.o.data({ task: end, timeline: timelineOf(end), events });
          } finally {
            stop();
          }
        });
      }),
    );
}
