import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Engine } from "../../core/engine.js";
import { isTerminal, type Task, type TaskRequest } from "../../core/types.js";
import type { CliContext } from "../context.js";
import { withEngine } from "../context.js";
import { parseDuration, parseIntFlag } from "../duration.js";
import { EXIT, usageError } from "../errors.js";
import { taskDetails } from "../format.js";
import { paint, paintStatus, progressBar, brief } from "../output.js";
import { action } from "../run.js";

interface SubmitFlags {
  inputFile?: string;
  priority?: string;
  tenant?: string;
  project?: string;
  caller?: string;
  label?: string[];
  idempotencyKey?: string;
  delay?: string;
  wait?: boolean;
  timeout?: string;
}

export function parseJsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw usageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export function submitCommand(program: Command): void {
  program
    .command("submit")
    .description("submit a task; with --wait, follow its progress and print its result")
    .argument("<type>", "task type")
    .argument("[input-json]", "the input as JSON (default null)")
    .option("--input-file <path>", "read the input JSON from a file (- for stdin)")
    .option("--priority <n>", "0 low, 1 normal (default), 2 high, 3 urgent")
    .option("--tenant <tenant>", "tenant (default: default)")
    .option("--project <project>", "project (default: default)")
    .option("--caller <caller>", "fair-share identity")
    .option("--label <key=value...>", "labels, repeatable")
    .option("--idempotency-key <key>", "submit at most once per tenant for this key")
    .option("--delay <duration>", "run no earlier than this from now, e.g. 30s, 5m")
    .option("--wait", "wait for the end: show progress, print the result, exit code = outcome")
    .option("--timeout <duration>", "with --wait: give up after this long (exit 5)")
    .action(
      action(async (ctx, type: string, inputJson: string | undefined, f: SubmitFlags) => {
        if (inputJson !== undefined && f.inputFile !== undefined) {
          throw usageError("give the input either as an argument or with --input-file, not both");
        }
        let input: unknown = null;
        if (inputJson !== undefined) input = parseJsonArg(inputJson, "input-json");
        if (f.inputFile !== undefined) {
          const text = readFileSync(f.inputFile === "-" ? 0 : f.inputFile, "utf8");
          input = parseJsonArg(text, `--input-file ${f.inputFile}`);
        }
        const req: TaskRequest = { type, input };
        if (f.priority !== undefined) req.priority = parseIntFlag(f.priority, "--priority", 0, 3);
        if (f.tenant !== undefined) req.tenant = f.tenant;
        if (f.project !== undefined) req.project = f.project;
        if (f.caller !== undefined) req.caller = f.caller;
        if (f.idempotencyKey !== undefined) req.idempotencyKey = f.idempotencyKey;
        if (f.delay !== undefined)
          req.runAt = new Date(Date.now() + parseDuration(f.delay, "--delay"));
        if (f.label) req.labels = parseLabels(f.label);
        const timeoutMs =
          f.timeout !== undefined ? parseDuration(f.timeout, "--timeout") : undefined;
        if (timeoutMs !== undefined && !f.wait) throw usageError("--timeout needs --wait");

        return withEngine(ctx, async (engine) => {
          const id = await engine.submit(req);
          if (!f.wait) {
            if (ctx.o.json) ctx.o.data(await engine.get(id));
            else ctx.o.out(id);
            return EXIT.ok;
          }
          if (!ctx.o.json) ctx.o.err(`submitted ${paint(ctx.o, "bold", id)} (${type})`);
          const task = await follow(ctx, engine, id, timeoutMs);
          if (ctx.o.json) ctx.o.data(task);
          else if (task.status === "completed")
            ctx.o.out(JSON.stringify(task.result ?? null, null, 2));
          else ctx.o.out(taskDetails(ctx.o, task));
          return task.status === "completed" ? EXIT.ok : EXIT.taskFailed;
        });
      }),
    );
}

export function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const p of pairs) {
    const at = p.indexOf("=");
    if (at <= 0) throw usageError(`--label: expected key=value, got "${p}"`);
    labels[p.slice(0, at)] = p.slice(at + 1);
  }
  return labels;
}

/**
 * Wait for the end of a task, drawing a progress bar on stderr from its `task.progress` events
 * (relayed from the worker's process) and, as a fallback, from the row's progress column.
 */
async function follow(
  ctx: CliContext,
  engine: Engine,
  id: string,
  timeoutMs: number | undefined,
): Promise<Task> {
  const o = ctx.o;
  const showBar = !o.json && process.stderr.isTTY;
  let last = "";
  const draw = (status: string, pct: number | null, note?: string | null) => {
    const line = `${progressBar(pct ?? 0)} ${paintStatus(o, status)}${note ? ` ${brief(note, 50)}` : ""}`;
    if (line === last) return;
    last = line;
    if (showBar) process.stderr.write(`\r\u001b[2K${line}`);
    else if (!o.json) o.err(line);
  };
  const unsubscribe = engine.events.subscribe(
    (e) => {
      if (e.type === "task.progress") draw(e.status, e.progress ?? null, e.note);
      else if (!isTerminal(e.status as Task["status"])) draw(e.status, null);
    },
    { taskId: id },
  );
  const poll = setInterval(() => {
    engine.get(id).then(
      (t) => {
        if (!isTerminal(t.status)) draw(t.status, t.progress, t.progressNote);
      },
      () => {},
    );
  }, 500);
  try {
    const task = await engine.wait(id, timeoutMs === undefined ? {} : { timeoutMs });
    if (task.status === "completed") draw(task.status, 100);
    return task;
  } finally {
    clearInterval(poll);
    unsubscribe();
    if (showBar && last) process.stderr.write("\n");
  }
}
