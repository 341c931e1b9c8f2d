import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine, sqlite, type Engine, type LoomEvent } from "../index.js";
import { defaultProgress, parseLines, streaming } from "./index.js";

const node = process.execPath;
let dir: string;
let engine: Engine;
let progress: LoomEvent[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "loom-streaming-"));
  engine = createEngine({ name: "t", store: sqlite(join(dir, "x.db")) });
  progress = [];
  engine.events.subscribe(
    (e) => {
      progress.push(e);
    },
    { types: ["task.progress"] },
  );
});

afterEach(async () => {
  await engine.close({ timeoutMs: 5_000 });
  rmSync(dir, { recursive: true, force: true });
});

/** A node script printing `lines` one by one, `gapMs` apart. */
function printer(lines: string[], gapMs = 25): string[] {
  return [
    "-e",
    `const lines = ${JSON.stringify(lines)}; let i = 0;
     const t = setInterval(() => { console.log(lines[i++]); if (i === lines.length) clearInterval(t); }, ${gapMs});`,
  ];
}

async function run(type: string, input?: unknown) {
  await engine.start();
  return engine.wait(await engine.submit({ type, input }), { timeoutMs: 10_000 });
}

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

describe("streaming", () => {
  it("reports progress lines and returns the final JSON line", async () => {
    engine.register(
      "job",
      streaming({
        command: node,
        args: printer([
          `{"progress": 10, "note": "starting"}`,
          "some output",
          "50%",
          "resizing: 75%",
          `{"done": true, "n": 3}`,
        ]),
      }),
    );
    const task = await run("job");
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ done: true, n: 3 });
    expect(progress.map((e) => [e.progress, e.note])).toEqual([
      [10, "starting"],
      [50, undefined],
      [75, "resizing"],
    ]);
    expect(progress.every((e) => e.taskId === task.id && e.status === "running")).toBe(true);
    expect(task.progress).toBe(75);
  });

  it("returns the other lines joined when the last line is not JSON", async () => {
    engine.register("job", streaming({ command: node, args: printer(["a", "42% half way", "b"]) }));
    const task = await run("job");
    expect(task.result).toBe("a\nb");
    expect(progress.map((e) => e.progress)).toEqual([42]);
  });

  it("takes a custom progress recogniser and parse", async () => {
    engine.register(
      "job",
      streaming({
        command: node,
        args: printer(["P:20", "x", "P:80", "y"]),
        progress: (line) => (line.startsWith("P:") ? { pct: Number(line.slice(2)) } : null),
        parse: (lines) => lines.length,
      }),
    );
    const task = await run("job");
    expect(task.result).toBe(2);
    expect(progress.map((e) => e.progress)).toEqual([20, 80]);
  });

  it("writes the last of a burst of progress lines before completing", async () => {
    engine.register(
      "burst",
      streaming({
        command: node,
        args: [
          "-e",
          `for (let i = 1; i <= 1000; i++) console.log(i / 10 + "%"); console.log("[1]")`,
        ],
      }),
    );
    const task = await run("burst");
    expect(task.status).toBe("completed");
    expect(task.result).toEqual([1]);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.length).toBeLessThanOrEqual(1000);
    expect(progress.at(-1)!.progress).toBe(100);
    expect(task.progress).toBe(100);
  });

  it("kills the process group on cancel", async () => {
    const file = join(dir, "pids");
    engine.register(
      "job",
      streaming({
        command: node,
        args: [
          "-e",
          `const { spawn } = require("node:child_process");
           const gc = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
           require("node:fs").writeFileSync(process.argv[1], process.pid + " " + gc.pid);
           console.log("5% started");
           setInterval(() => {}, 1000);`,
          file,
        ],
      }),
    );
    await engine.start();
    const id = await engine.submit({ type: "job" });
    await until(() => progress.length === 1);
    const pids = readFileSync(file, "utf8").split(" ").map(Number);
    await engine.cancel(id);
    expect((await engine.wait(id, { timeoutMs: 5_000 })).status).toBe("cancelled");
    await until(() => pids.every((pid) => !isAlive(pid)));
  });

  it("fails like subprocess on a non-zero exit", async () => {
    engine.register(
      "job",
      streaming({
        command: node,
        args: ["-e", `console.log("30%"); console.error("bad input"); process.exit(2)`],
      }),
      { maxRetries: 0 },
    );
    const task = await run("job");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("exited with code 2");
    expect(task.error).toContain("bad input");
  });
});

describe("defaultProgress", () => {
  it("recognises JSON progress and percentages at either end of a line", () => {
    expect(defaultProgress(`{"progress": 40, "note": "resizing"}`)).toEqual({
      pct: 40,
      note: "resizing",
    });
    expect(defaultProgress(`{"progress": 12.5}`)).toEqual({ pct: 12.5 });
    expect(defaultProgress("42%")).toEqual({ pct: 42 });
    expect(defaultProgress("  42 % copying files")).toEqual({ pct: 42, note: "copying files" });
    expect(defaultProgress("Downloading: 99.5%")).toEqual({ pct: 99.5, note: "Downloading" });
  });

  it("leaves other lines alone", () => {
    expect(defaultProgress(`{"progress": 140}`)).toBeNull();
    expect(defaultProgress(`{"progress": "40"}`)).toBeNull();
    expect(defaultProgress(`{"result": 1}`)).toBeNull();
    expect(defaultProgress("150%")).toBeNull();
    expect(defaultProgress("cpu at 42% of capacity")).toBeNull();
    expect(defaultProgress("x42%")).toBeNull();
    expect(defaultProgress("")).toBeNull();
  });
});

describe("parseLines", () => {
  it("prefers a final JSON object or array, else joins the text", () => {
    expect(parseLines(["log", `{"a": 1}`, ""])).toEqual({ a: 1 });
    expect(parseLines(["log", "[1, 2]"])).toEqual([1, 2]);
    expect(parseLines(["log", "42"])).toBe("log\n42");
    expect(parseLines(["{broken", ""])).toBe("{broken");
    expect(parseLines([])).toBeUndefined();
    expect(parseLines(["", "  "])).toBeUndefined();
  });
});
