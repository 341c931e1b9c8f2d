import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEngine, postgres, sqlite, type Engine } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";
import { tempDir, until } from "../support/sqlite.js";

// Three real worker processes share one lane of concurrency 4 on one store (a SQLite file, then a
// PostgreSQL schema). The ledger the workers append to shows when every attempt ran.

const tmp = tempDir("loom-lanes-mp-");
const pgOk = await pgAvailable();
const schema = testSchema("lanes_multiprocess");
const children: ChildProcess[] = [];
let main: Engine | null = null;

afterEach(async () => {
  for (const c of children.splice(0))
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await main?.close({ timeoutMs: 1_000 });
  main = null;
});
afterAll(async () => {
  tmp.cleanup();
  if (pgOk) await dropSchema(schema);
});

interface Entry {
  at: number;
  kind: "start" | "end";
  id: string;
  caller: string;
  worker: string;
}

function readLedger(path: string): Entry[] {
  const entries = readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [at, kind, id, caller, worker] = line.split(" ");
      return { at: Number(at), kind, id, caller, worker } as Entry;
    });
  // At the same millisecond an end sorts first: a slot is freed only after its end is written.
  return entries.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === "end" ? -1 : 1));
}

/** Most attempts running at once, by the ledger (an attempt with no end yet counts as running). */
function maxRunning(entries: Entry[]): number {
  let now = 0;
  let max = 0;
  for (const e of entries) {
    now += e.kind === "start" ? 1 : -1;
    max = Math.max(max, now);
  }
  return max;
}

function spawnWorker(spec: string, name: string, ledger: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/fixtures/lane-worker.ts", spec, schema, name, ledger],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "ready") resolve(child);
    });
    child.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal})`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

const CALLERS = ["c1", "c2", "c3", "c4", "c5"];
const PER_CALLER = 40;

function suite(
  kind: string,
  makeStore: () => ReturnType<typeof sqlite> | ReturnType<typeof postgres>,
  spec: () => string,
) {
  it(`${kind}: 3 processes, lane concurrency 4: never more than 4 running, fair shares across 5 callers; setConcurrency and a SIGKILL seen by all`, async () => {
    const ledger = tmp.file(`${kind}-ledger.txt`);
    writeFileSync(ledger, "");
    main = createEngine({ name: "main", store: makeStore(), retention: false });
    const lane = await main.lane("L", { concurrency: 4 });
    // This process submits (writing the lane and caller on each row) but never dispatches.
    main.register("laned", () => null, { lane: "L", leaseMs: 600 });
    // Callers submit one after another: first come, first served would run c1's 40 first.
    for (const caller of CALLERS) {
      await main.submitMany(
        Array.from({ length: PER_CALLER }, () => ({ type: "laned", input: { ms: 15 }, caller })),
      );
    }
    const workers = await Promise.all(
      ["w1", "w2", "w3"].map((n) => spawnWorker(spec(), n, ledger)),
    );
    const total = CALLERS.length * PER_CALLER;
    const completed = () => main!.count({ status: ["completed"] });
    await until(async () => (await completed()) === total, 60_000, 50);

    const entries = readLedger(ledger);
    expect(entries.filter((e) => e.kind === "start")).toHaveLength(total);
    expect(maxRunning(entries)).toBeLessThanOrEqual(4);
    // More than one process ran the lane's tasks (each runs at most 2 at once).
    expect(new Set(entries.map((e) => e.worker)).size).toBeGreaterThan(1);
    // Fair share while every caller was backlogged: up to the start of the first caller's last task.
    const starts = entries.filter((e) => e.kind === "start");
    const started = new Map<string, number>();
    let backlogged = 0;
    for (const s of starts) {
      started.set(s.caller, (started.get(s.caller) ?? 0) + 1);
      backlogged++;
      if (started.get(s.caller) === PER_CALLER) break;
    }
    const shares = CALLERS.map((c) => started.get(c) ?? 0);
    expect(backlogged).toBeGreaterThan(total * 0.8);
    // Within a tolerance: the ledger orders starts by when each process wrote them, and a loaded
    // machine may delay a process between its claim and its ledger line. First come, first
    // served would give c1 all of its 40 before anyone else got one.
    const jain =
      shares.reduce((a, b) => a + b) ** 2 / (shares.length * shares.reduce((a, b) => a + b * b, 0));
    expect(jain).toBeGreaterThanOrEqual(0.99);
    expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(6);

    // setConcurrency from this process: the workers see the new limit.
    await lane.setConcurrency(2);
    writeFileSync(ledger, "");
    await main.submitMany(
      Array.from({ length: 30 }, (_, i) => ({
        type: "laned",
        input: { ms: 15 },
        caller: CALLERS[i % 5],
      })),
    );
    await until(async () => (await completed()) === total + 30, 60_000, 50);
    expect(maxRunning(readLedger(ledger))).toBeLessThanOrEqual(2);

    // Four attempts hang in the lane; their processes are SIGKILLed. Once their leases expire a
    // live worker rescues them (crash policy "fail") and the lane's slots are free again.
    await lane.setConcurrency(4);
    writeFileSync(ledger, "");
    await main.submitMany(
      Array.from({ length: 4 }, (_, i) => ({
        type: "laned",
        input: { hang: true },
        caller: CALLERS[i],
      })),
    );
    await until(async () => (await lane.stats()).running === 4, 30_000, 20);
    const holders = new Set(readLedger(ledger).map((e) => e.worker));
    for (const [i, w] of workers.entries()) {
      if (holders.has(`w${i + 1}`)) {
        w.kill("SIGKILL");
        await exited(w);
      }
    }
    expect((await lane.stats()).running).toBe(4);
    await spawnWorker(spec(), "w4", ledger);
    await until(async () => (await main!.count({ status: ["failed_crash"] })) === 4, 30_000, 50);
    expect((await lane.stats()).running).toBe(0);
    await main.submitMany(
      Array.from({ length: 8 }, (_, i) => ({
        type: "laned",
        input: { ms: 5 },
        caller: CALLERS[i % 5],
      })),
    );
    await until(async () => (await completed()) === total + 38, 30_000, 50);
    const stats = await lane.stats();
    expect(stats).toMatchObject({ running: 0, queued: 0, concurrency: 4 });
  }, 120_000);
}

describe("engine lanes across processes", () => {
  suite(
    "sqlite",
    () => sqlite(tmp.file("shared.sqlite")),
    () => `sqlite:${tmp.file("shared.sqlite")}`,
  );
  if (pgOk) {
    suite(
      "postgres",
      () => postgres(PG_URL, { schema, poolSize: 2 }),
      () => PG_URL,
    );
  }
});
