import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine, sqlite, type Engine, type RunningTask, type TaskContext } from "../index.js";
import { SubprocessError, subprocess } from "./index.js";

const node = process.execPath;
let dir: string;
let engine: Engine;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "loom-subprocess-"));
  engine = createEngine({ name: "t", store: sqlite(join(dir, "x.db")) });
});

afterEach(async () => {
  await engine.close({ timeoutMs: 5_000 });
  rmSync(dir, { recursive: true, force: true });
});

/** Alive and not a zombie (a killed orphan may wait a moment for PID 1 to reap it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A script that starts a grandchild sharing its stdout, writes both pids to `argv[1]`, then
 * waits forever (ignoring SIGTERM when `argv[2]` is "stubborn").
 */
const FAMILY = `
const { spawn } = require("node:child_process");
const { writeFileSync } = require("node:fs");
if (process.argv[2] === "stubborn") process.on("SIGTERM", () => {});
const gc = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
writeFileSync(process.argv[1], process.pid + " " + gc.pid);
setInterval(() => {}, 1000);
`;

function readPids(file: string): number[] {
  return readFileSync(file, "utf8").split(" ").map(Number);
}

describe("subprocess", () => {
  it("writes the input to stdin as JSON and parses JSON stdout", async () => {
    engine.register(
      "sum",
      subprocess({
        command: node,
        args: [
          "-e",
          `let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
             const { a, b } = JSON.parse(s);
             console.log(JSON.stringify({ sum: a + b }));
           });`,
        ],
      }),
    );
    await engine.start();
    const id = await engine.submit({ type: "sum", input: { a: 2, b: 3 } });
    const task = await engine.wait(id, { timeoutMs: 10_000 });
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ sum: 5 });
  });

  it("takes args, env and stdin from the task and returns plain text", async () => {
    engine.register(
      "greet",
      subprocess<{ name: string }>({
        command: node,
        args: (t) => [
          "-e",
          `console.log(process.env.GREETING + " " + process.argv[1])`,
          t.input.name,
        ],
        env: { GREETING: "hello" },
        stdin: false,
      }),
    );
    await engine.start();
    const id = await engine.submit({ type: "greet", input: { name: "world" } });
    const task = await engine.wait(id, { timeoutMs: 10_000 });
    expect(task.result).toBe("hello world");
  });

  it("completes with no result when the command prints nothing", async () => {
    engine.register("quiet", subprocess({ command: node, args: ["-e", ""] }));
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "quiet" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("completed");
    expect(task.result).toBeNull();
    expect(task.attempt).toBe(1);
  });

  it("fails on a non-zero exit with the redacted end of stderr", async () => {
    const inner = subprocess({
      command: node,
      args: [
        "-e",
        `console.error("boom: password=hunter2 key sk-abcdefghijklmnopqrstuvwx"); process.exit(3)`,
      ],
    });
    engine.register("fail", inner, { maxRetries: 0 });
    // The same worker, wrapped to report the error's fields as its result.
    engine.register("fields", async (task: RunningTask, ctx: TaskContext) => {
      try {
        await inner(task, ctx);
        return { thrown: false };
      } catch (err) {
        const e = err as SubprocessError;
        return {
          name: e.name,
          code: e.code,
          reason: e.reason,
          exitCode: e.exitCode,
          tail: e.stderrTail,
        };
      }
    });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "fail" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("failed");
    expect(task.attempt).toBe(1);
    expect(task.error).toContain("exited with code 3");
    expect(task.error).toContain("boom");
    expect(task.error).not.toContain("hunter2");
    expect(task.error).not.toContain("sk-abcdefghij");

    const report = await engine.wait(await engine.submit({ type: "fields" }), {
      timeoutMs: 10_000,
    });
    expect(report.result).toMatchObject({
      name: "SubprocessError",
      code: "SUBPROCESS",
      reason: "exit",
      exitCode: 3,
    });
    const tail = (report.result as { tail: string }).tail;
    expect(tail).toContain("boom: password=[REDACTED]");
    expect(tail).not.toContain("hunter2");
  });

  it("fails when the command cannot be started", async () => {
    engine.register("missing", subprocess({ command: join(dir, "no-such-program") }), {
      maxRetries: 0,
    });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "missing" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toContain("could not be started");
  });

  it("kills the process group when its own timeoutMs elapses", async () => {
    const file = join(dir, "pids");
    engine.register(
      "slow",
      subprocess({ command: node, args: ["-e", FAMILY, file], timeoutMs: 400 }),
      { maxRetries: 0 },
    );
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "slow" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toContain("timed out after 400 ms");
    const pids = readPids(file);
    expect(pids).toHaveLength(2);
    await until(() => pids.every((pid) => !isAlive(pid)));
  });

  it("kills the process group when the engine's timeoutMs aborts ctx.signal", async () => {
    const file = join(dir, "pids");
    engine.register("slow", subprocess({ command: node, args: ["-e", FAMILY, file] }), {
      maxRetries: 0,
      timeoutMs: 400,
    });
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "slow" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toContain("timed out");
    const pids = readPids(file);
    await until(() => pids.every((pid) => !isAlive(pid)));
  });

  it("kills the process group when the task is cancelled", async () => {
    const file = join(dir, "pids");
    engine.register("slow", subprocess({ command: node, args: ["-e", FAMILY, file] }));
    await engine.start();
    const id = await engine.submit({ type: "slow" });
    await until(() => existsSync(file) && readFileSync(file, "utf8").includes(" "));
    const pids = readPids(file);
    expect(pids.every(isAlive)).toBe(true);
    await engine.cancel(id);
    const task = await engine.wait(id, { timeoutMs: 10_000 });
    expect(task.status).toBe("cancelled");
    await until(() => pids.every((pid) => !isAlive(pid)));
  });

  it("escalates to SIGKILL when the group ignores the kill signal", async () => {
    const file = join(dir, "pids");
    engine.register(
      "stubborn",
      subprocess({
        command: node,
        args: ["-e", FAMILY, file, "stubborn"],
        timeoutMs: 300,
        killGraceMs: 300,
      }),
      { maxRetries: 0 },
    );
    await engine.start();
    const started = Date.now();
    const task = await engine.wait(await engine.submit({ type: "stubborn" }), {
      timeoutMs: 10_000,
    });
    expect(task.status).toBe("failed");
    // The attempt ends only once the process is gone: after the grace period.
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    const pids = readPids(file);
    await until(() => pids.every((pid) => !isAlive(pid)));
  });

  it("fails and kills the command when stdout exceeds maxOutputBytes", async () => {
    engine.register(
      "chatty",
      subprocess({
        command: node,
        args: ["-e", `process.stdout.write("x".repeat(5000)); setInterval(() => {}, 1000)`],
        maxOutputBytes: 1000,
      }),
      { maxRetries: 0 },
    );
    await engine.start();
    const task = await engine.wait(await engine.submit({ type: "chatty" }), { timeoutMs: 10_000 });
    expect(task.status).toBe("failed");
    expect(task.error).toContain("exceeded the limit of 1000 bytes");
  });

  it("rejects bad options at construction", () => {
    expect(() => subprocess({ command: "" })).toThrow(/command/);
    expect(() => subprocess({ command: "x", timeoutMs: -1 })).toThrow(/timeoutMs/);
  });
});
