import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, postgres, sqlite, type Engine } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "loom-schedules-mp-"));
const pgUp = await pgAvailable();
const schema = testSchema("schedules_mp");

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  if (pgUp) await dropSchema(schema);
});

interface Worker {
  child: ChildProcess;
  fired: { tick: string; taskId: string }[];
}

function spawnWorker(args: string[]): Promise<Worker> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/fixtures/schedule-worker.ts", ...args],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  children.push(child);
  const worker: Worker = { child, fired: [] };
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "ready") resolve(worker);
      const m = /^fired (\S+) (\S+)$/.exec(line);
      if (m) worker.fired.push({ tick: m[1]!, taskId: m[2]! });
    });
    child.once("exit", (code, signal) => reject(new Error(`worker exited (${code ?? signal})`)));
  });
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => c.once("exit", () => r()));

const TICKS = 5;

async function runThree(observer: Engine, argsFor: (name: string) => string[]): Promise<void> {
  const workers = await Promise.all(["p1", "p2", "p3"].map((n) => spawnWorker(argsFor(n))));
  const fired = () => workers.reduce((n, w) => n + w.fired.length, 0);
  const deadline = Date.now() + 60_000;
  while (fired() < TICKS) {
    if (Date.now() > deadline) throw new Error(`only ${fired()} ticks fired`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const w of workers) w.child.kill("SIGTERM");
  await Promise.all(workers.map((w) => exited(w.child)));

  const all = workers.flatMap((w) => w.fired);
  const ticks = all.map((f) => Date.parse(f.tick)).sort((a, b) => a - b);
  // Each tick was won by exactly one process…
  expect(new Set(ticks).size).toBe(all.length);
  // …none was skipped between the first and the last…
  expect(ticks.at(-1)! - ticks[0]!).toBe((ticks.length - 1) * 1000);
  // …and the database holds exactly one task per tick, the one the winner reported.
  const page = await observer.list({ type: "beat", limit: 1000 });
  expect(page.items.map((t) => t.id).sort()).toEqual(all.map((f) => f.taskId).sort());
  const keys = page.items.map((t) => t.idempotencyKey);
  expect(new Set(keys).size).toBe(keys.length);
  const schedule = await observer.schedules.get("beat");
  expect(schedule.lastRunAt?.getTime()).toBe(ticks.at(-1));
}

describe("a schedule shared by three processes fires each tick exactly once", () => {
  it("on one SQLite file", async () => {
    const path = join(dir, "loom.db");
    const observer = createEngine({ name: "observer", store: sqlite(path), retention: false });
    await observer.count(); // migrated before the workers race to
    try {
      await runThree(observer, (n) => ["sqlite", path, n]);
    } finally {
      await observer.close();
    }
  });

  it.runIf(pgUp)("on PostgreSQL", async () => {
    const observer = createEngine({
      name: "observer",
      store: postgres(PG_URL, { schema, poolSize: 2 }),
      retention: false,
    });
    await observer.count();
    try {
      await runThree(observer, (n) => ["postgres", PG_URL, schema, n]);
    } finally {
      await observer.close();
    }
  });
});
