import type { Task } from "../core/types.js";
import { ago, brief, paint, paintStatus, table, type Output } from "./output.js";

/** The tasks as a table: id, type, status, attempt, progress, project, age. */
export function taskTable(o: Output, tasks: Task[], now = Date.now()): string {
  return table(
    o,
    ["ID", "TYPE", "STATUS", "ATTEMPT", "PROGRESS", "PROJECT", "CREATED"],
    tasks.map((t) => [
      t.id,
      t.type,
      paintStatus(o, t.status),
      String(t.attempt),
      t.progress === null ? "-" : `${Math.round(t.progress)}%`,
      t.project,
      ago(t.createdAt, now),
    ]),
  );
}

/** One task, field by field. */
export function taskDetails(o: Output, t: Task): string {
  const rows: [string, string][] = [
    ["id", t.id],
    ["type", t.type],
    ["status", paintStatus(o, t.status)],
    ["tenant / project", `${t.tenant} / ${t.project}`],
    ["priority", String(t.priority)],
    ["lane", t.lane ?? "-"],
    ["caller", t.caller ?? "-"],
    ["attempt", `${t.attempt} of ${t.maxRetries + 1}`],
    [
      "progress",
      t.progress === null ? "-" : `${t.progress}%${t.progressNote ? ` ${t.progressNote}` : ""}`,
    ],
    ["input", brief(t.input, 200)],
    ["result", brief(t.result, 200)],
    ["error", t.error ? paint(o, "red", t.error) : "-"],
    ["labels", Object.keys(t.labels).length ? brief(t.labels, 200) : "-"],
    ["depends on", t.dependsOn.length ? t.dependsOn.join(", ") : "-"],
    ["engine", t.engineName ?? "-"],
    ["workflow", t.workflowId ?? "-"],
    ["request id", t.requestId ?? "-"],
    ["created", iso(t.createdAt)],
    ["run at", iso(t.runAt)],
    ["started", iso(t.startedAt)],
    ["completed", iso(t.completedAt)],
    ["updated", iso(t.updatedAt)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${paint(o, "dim", k.padEnd(width))}  ${v}`).join("\n");
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : "-");
