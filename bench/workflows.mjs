// Loom workflows: 3-step no-op workflows per second at concurrency 10 (SQLite, PostgreSQL),
// one workflow's latency, and the replay of a 10,000-event history.
//
//   node --import tsx bench/workflows.mjs                      # SQLite figures
//   LOOM_PG_URL=postgres://… node --import tsx bench/workflows.mjs --pg   # PostgreSQL too
//   node --import tsx bench/workflows.mjs --quick              # smaller counts
//
// Every figure goes through the public API: a step returns only after its checkpoint is
// committed, and runs are started, executed and completed by a real engine.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { createEngine, postgres, sqlite } from "../src/index.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const withPg = args.includes("--pg");
const N = quick ? 500 : 3000;
const dir = mkdtempSync(join(tmpdir(), "loom-wf-bench-"));
let dbCount = 0;
const freshDb = () => join(dir, `bench-${++dbCount}.db`);
const rows = [];
const record = (system, what, value, unit) => {
  rows.push({ system, what, value, unit });
  console.error(`  ${system.padEnd(10)} ${what.padEnd(50)} ${value} ${unit}`);
};
const fmt = (n, d = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function define(engine) {
  return engine.workflow("three", {
    run: async (ctx, n) => {
      const a = await ctx.step("a", () => n);
      const b = await ctx.step("b", () => a + 1);
      return ctx.step("c", () => b + 1);
    },
  });
}

/** Start `n` runs, then run them all at concurrency 10; workflows per second. */
async function throughput(engine, n) {
  const wf = define(engine);
  for (let i = 0; i < n; i++) await wf.start(i);
  let done = 0;
  let resolve;
  const all = new Promise((r) => (resolve = r));
  engine.events.subscribe(
    () => {
      if (++done === n) resolve();
    },
    { types: ["workflow.completed"] },
  );
  const t0 = performance.now();
  await engine.start();
  await all;
  return (n / (performance.now() - t0)) * 1000;
}

/** One workflow at a time: start → result, p50 / p99 in ms. */
async function latency(engine, n) {
  const wf = define(engine);
  await engine.start();
  for (let i = 0; i < 20; i++) await (await wf.start(i)).result(); // warm up
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await (await wf.start(i)).result();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

/** A run with `steps` recorded steps sleeps, then replays its whole history when it wakes. */
async function replay(steps) {
  const engine = createEngine({ name: "bench", store: sqlite(freshDb()), retention: false });
  const wf = engine.workflow("long", {
    run: async (ctx) => {
      let sum = 0;
      for (let i = 0; i < steps; i++) sum += await ctx.step(`s${i}`, () => i);
      await ctx.sleep("rest", 300);
      return sum;
    },
  });
  let wakeStarted = 0;
  let running = 0;
  engine.events.subscribe(
    (e) => {
      if (e.taskType === "loom.workflow") running++;
      if (running === 2 && !wakeStarted) wakeStarted = performance.now();
    },
    { types: ["task.running"] },
  );
  await engine.start();
  const h = await wf.start(null);
  await h.result();
  const replayMs = performance.now() - wakeStarted;
  const events = (await h.history()).length;
  await engine.close();
  return { replayMs, events };
}

console.error(`workflows bench: ${cpus().length} cpus, N=${N}`);
{
  const engine = createEngine({
    name: "bench",
    store: sqlite(freshDb()),
    retention: false,
    concurrency: 10,
  });
  record(
    "sqlite",
    `3-step workflows/s, concurrency 10 (${fmt(N)} runs)`,
    fmt(await throughput(engine, N)),
    "/s",
  );
  await engine.close();
}
{
  const engine = createEngine({
    name: "bench",
    store: sqlite(freshDb()),
    retention: false,
    concurrency: 10,
  });
  const l = await latency(engine, quick ? 50 : 200);
  record("sqlite", "one 3-step workflow, start → result p50", fmt(l.p50, 2), "ms");
  record("sqlite", "one 3-step workflow, start → result p99", fmt(l.p99, 2), "ms");
  await engine.close();
}
{
  const r = await replay(10_000);
  record(
    "sqlite",
    `replay of a ${fmt(r.events)}-event history (wake → completed)`,
    fmt(r.replayMs, 1),
    "ms",
  );
}

if (withPg) {
  const url = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/loom_workflows";
  const schemas = [];
  const store = () => {
    const schema = `loom_wfbench_${process.pid}_${schemas.length}`;
    schemas.push(schema);
    return postgres(url, { schema, poolSize: 10 });
  };
  {
    const engine = createEngine({
      name: "bench",
      store: store(),
      retention: false,
      concurrency: 10,
    });
    const n = quick ? 300 : 2000;
    record(
      "postgres",
      `3-step workflows/s, concurrency 10 (${fmt(n)} runs)`,
      fmt(await throughput(engine, n)),
      "/s",
    );
    await engine.close();
  }
  {
    const engine = createEngine({
      name: "bench",
      store: store(),
      retention: false,
      concurrency: 10,
    });
    const l = await latency(engine, quick ? 50 : 200);
    record("postgres", "one 3-step workflow, start → result p50", fmt(l.p50, 2), "ms");
    record("postgres", "one 3-step workflow, start → result p99", fmt(l.p99, 2), "ms");
    await engine.close();
  }
  const client = new pg.Client(url);
  await client.connect();
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await client.end();
}

rmSync(dir, { recursive: true, force: true });
console.log("| system | what | value |\n| --- | --- | ---: |");
for (const r of rows) console.log(`| ${r.system} | ${r.what} | ${r.value} ${r.unit} |`);
process.exit(0);
