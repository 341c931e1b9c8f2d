// Loom on PostgreSQL, side by side with graphile-worker 0.17, in one run, same database.
//
//   node --import tsx bench/postgres-tasks.mjs               # full run (a few minutes)
//   node --import tsx bench/postgres-tasks.mjs --quick       # smaller counts, a smoke check
//   node --import tsx bench/postgres-tasks.mjs --only=e2e,pickup,graphile
//        sections: enqueue, e2e, paired, processes, pickup, graphile
//   node --import tsx bench/postgres-tasks.mjs --tasks=100000   # end-to-end size (default 20,000)
//   node --import tsx bench/postgres-tasks.mjs --only=paired --rounds=9
//        the throughput comparison alone, in alternating rounds (default 5)
//
// LOOM_PG_URL picks the database (default postgres://root@127.0.0.1:5432/test). Every run
// works in fresh schemas (loom_bench_*, graphile_bench_*) and drops them afterwards. Prints a
// Markdown table; figures are wall-clock, so run it on an otherwise idle machine.
//
// What is measured, for both systems:
//   - enqueue: batches of 1,000 (submitMany / addJobs), then single awaited submits (submit /
//     addJob); every call returns after its commit.
//   - end-to-end: N no-op tasks enqueued first, then the workers start; time from start until
//     every task is recorded complete in the database (the runner is stopped, which flushes
//     its batched completions, inside the timed span). Concurrency 10 for both; graphile-worker
//     with a local queue of 500 and completeJobBatchDelay 0, as its docs recommend for
//     throughput.
//     The prefetch run is repeated on a table ANALYZEd just before the start (as autovacuum
//     will, sooner or later): statistics that say no task is running must not change plans.
//   - paired: the end-to-end comparison the targets are about (Loom with prefetch 500 against
//     graphile-worker's local queue of 500), run in rounds that alternate which system goes
//     first, so a machine whose speed drifts drifts for both; prints each system's median and
//     the median and range of the per-round ratios.
//   - pick-up: an idle worker; one task at a time is enqueued from another connection; the
//     figure is enqueue-call start → handler start (so it includes the enqueue's commit).
import { performance } from "node:perf_hooks";
import pg from "pg";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { createEngine, postgres } from "../src/index.ts";

const URL = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = (
  args.find((a) => a.startsWith("--only="))?.slice(7) ??
  "enqueue,e2e,paired,processes,pickup,graphile"
).split(",");
const tasksArg = args.find((a) => a.startsWith("--tasks="))?.slice(8);
const N = tasksArg ? Number(tasksArg) : quick ? 5_000 : 20_000;
if (!Number.isInteger(N) || N < 1_000 || N % 1_000 !== 0) {
  throw new Error("--tasks must be a whole number of thousands, at least 1000");
}
const roundsArg = args.find((a) => a.startsWith("--rounds="))?.slice(9);
const ROUNDS = roundsArg ? Number(roundsArg) : quick ? 1 : 5;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error("--rounds must be a whole number");
const PICKUPS = quick ? 50 : 300;
const tag = `${process.pid}_${Date.now() % 100000}`;
const schemas = [];
const rows = [];
const fmt = (n) => Math.round(n).toLocaleString("en-US");
const ms = (n) => n.toFixed(2);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const record = (system, what, value, unit) => {
  rows.push({ system, what, value, unit });
  console.error(`  ${system.padEnd(9)} ${what.padEnd(52)} ${value} ${unit}`);
};
const sleep = (n) => new Promise((r) => setTimeout(r, n));

async function sql(text, values = []) {
  const c = new pg.Client(URL);
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

function schema(prefix) {
  const s = `${prefix}_${tag}_${schemas.length}`;
  schemas.push(s);
  return s;
}

function engine(s, opts = {}) {
  return createEngine({
    name: `bench-${s}`,
    store: postgres(URL, { schema: s }),
    retention: false,
    ...opts,
  });
}

// ---------------------------------------------------------------- Loom

async function loomEnqueue() {
  const e = engine(schema("loom_bench"));
  const total = quick ? 20_000 : 100_000;
  const reqs = Array.from({ length: 1_000 }, (_, i) => ({ type: "noop", input: { i } }));
  await e.count();
  let t0 = performance.now();
  for (let n = 0; n < total; n += 1_000) await e.submitMany(reqs);
  record(
    "loom",
    "batch enqueue (submitMany × 1,000)",
    fmt(total / ((performance.now() - t0) / 1000)),
    "tasks/s",
  );
  const single = quick ? 1_000 : 5_000;
  t0 = performance.now();
  for (let i = 0; i < single; i++) await e.submit({ type: "noop", input: { i } });
  record(
    "loom",
    "single submit (await each)",
    fmt(single / ((performance.now() - t0) / 1000)),
    "tasks/s",
  );
  await e.close();
}

/**
 * N no-op tasks end to end; returns tasks/s and records it unless `quiet`. `analyze`: take the
 * table's statistics just before the start.
 */
async function loomEndToEnd(concurrency, { prefetch = 0, analyze = false, quiet = false } = {}) {
  // Without prefetch: the default "fail" crash policy, nothing claimed ahead of a free slot.
  // With it: "retry" policy, up to `prefetch` tasks claimed ahead into the local buffer — the
  // same trade graphile-worker's local queue makes.
  const s = schema("loom_bench");
  const e = engine(s, { concurrency, prefetch });
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  e.register(
    "noop",
    () => {
      if (++done === N) finish();
    },
    { crashPolicy: prefetch ? "retry" : "fail" },
  );
  const reqs = Array.from({ length: 1_000 }, (_, i) => ({ type: "noop", input: { i } }));
  for (let i = 0; i < N; i += 1_000) await e.submitMany(reqs);
  // As autovacuum would at some point: statistics taken with every task waiting, none running.
  if (analyze) await sql(`ANALYZE "${s}".tasks`);
  const t0 = performance.now();
  await e.start();
  await finished;
  await e.close(); // writes the last completions
  const secs = (performance.now() - t0) / 1000;
  const [{ n }] = await sql(
    `SELECT count(*)::int AS n FROM "${s}".tasks WHERE status = 'completed'`,
  );
  if (n !== N) throw new Error(`loom: expected ${N} completed, found ${n}`);
  if (!quiet) {
    record(
      "loom",
      `end-to-end no-op, ${fmt(N)} tasks, concurrency ${concurrency}` +
        (prefetch ? `, retry policy, prefetch ${prefetch}` : "") +
        (analyze ? ", table analyzed first" : ""),
      fmt(N / secs),
      "tasks/s",
    );
  }
  return N / secs;
}

/** N tasks due at one instant, run by `k` worker processes (concurrency 10, prefetch 500 each). */
async function loomProcesses(k) {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  const s = schema("loom_bench");
  const e = engine(s);
  e.register("noop", () => {}, { crashPolicy: "retry" });
  const workers = [];
  try {
    await e.count();
    const procs = Array.from({ length: k }, (_, i) =>
      spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          new globalThis.URL("./postgres-worker.mjs", import.meta.url).pathname,
          URL,
          s,
          `w${i}`,
          "10",
          "500",
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      ),
    );
    workers.push(...procs);
    await Promise.all(
      procs.map(
        (p) =>
          new Promise((r) =>
            createInterface({ input: p.stdout }).on("line", (l) => l === "ready" && r()),
          ),
      ),
    );
    const runAt = Date.now() + 1_500;
    const reqs = Array.from({ length: 1_000 }, (_, i) => ({ type: "noop", input: { i }, runAt }));
    for (let i = 0; i < N; i += 1_000) await e.submitMany(reqs);
    await sleep(Math.max(0, runAt - Date.now()));
    const t0 = performance.now();
    for (;;) {
      const [{ n }] = await sql(
        `SELECT count(*)::int AS n FROM "${s}".tasks WHERE status = 'completed'`,
      );
      if (n >= N) break;
      await sleep(20);
    }
    const secs = (performance.now() - t0) / 1000;
    record(
      "loom",
      `end-to-end, ${k} worker process(es) × concurrency 10, prefetch 500`,
      fmt(N / secs),
      "tasks/s",
    );
  } finally {
    for (const w of workers) w.kill("SIGTERM");
    await e.close();
  }
}

async function loomPickup() {
  const s = schema("loom_bench");
  const worker = engine(s, { pollMs: 60_000 });
  const started = new Map();
  worker.register("ping", (task) => void started.set(task.id, performance.now()));
  await worker.start();
  const submitter = engine(s);
  await submitter.count();
  await sleep(200); // LISTEN connection up
  const lat = [];
  for (let i = 0; i < PICKUPS + 10; i++) {
    await sleep(5);
    const t0 = performance.now();
    const id = await submitter.submit({ type: "ping" });
    while (!started.has(id)) await new Promise((r) => setImmediate(r));
    if (i >= 10) lat.push(started.get(id) - t0);
  }
  record("loom", "pick-up by an idle worker, p50", ms(pct(lat, 50)), "ms");
  record("loom", "pick-up by an idle worker, p99", ms(pct(lat, 99)), "ms");
  await submitter.close();
  await worker.close();
}

// ---------------------------------------------------------------- graphile-worker

// graphile-worker wants its own Logger; keep its errors visible, drop the rest.
const gwLogger = new Logger(() => (level, message) => {
  if (level === "error") console.error(`graphile-worker: ${message}`);
});

async function graphileUtils(s) {
  const utils = await makeWorkerUtils({ connectionString: URL, schema: s, logger: gwLogger });
  await utils.migrate();
  return utils;
}

async function graphileEnqueue() {
  const s = schema("graphile_bench");
  const utils = await graphileUtils(s);
  const total = quick ? 20_000 : 100_000;
  const specs = Array.from({ length: 1_000 }, (_, i) => ({ identifier: "noop", payload: { i } }));
  let t0 = performance.now();
  for (let n = 0; n < total; n += 1_000) await utils.addJobs(specs);
  record(
    "graphile",
    "batch enqueue (addJobs × 1,000)",
    fmt(total / ((performance.now() - t0) / 1000)),
    "tasks/s",
  );
  const single = quick ? 1_000 : 5_000;
  t0 = performance.now();
  for (let i = 0; i < single; i++) await utils.addJob("noop", { i });
  record(
    "graphile",
    "single addJob (await each)",
    fmt(single / ((performance.now() - t0) / 1000)),
    "tasks/s",
  );
  await utils.release();
}

const graphilePreset = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } };

/** N no-op jobs end to end; returns jobs/s and records it unless `quiet`. */
async function graphileEndToEnd({ quiet = false } = {}) {
  const s = schema("graphile_bench");
  const utils = await graphileUtils(s);
  const specs = Array.from({ length: 1_000 }, (_, i) => ({ identifier: "noop", payload: { i } }));
  for (let i = 0; i < N; i += 1_000) await utils.addJobs(specs);
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const t0 = performance.now();
  const runner = await run({
    connectionString: URL,
    schema: s,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: gwLogger,
    preset: graphilePreset,
    taskList: {
      noop: async () => {
        if (++done === N) finish();
      },
    },
  });
  await finished;
  await runner.stop(); // flushes batched completions
  const secs = (performance.now() - t0) / 1000;
  const [{ n }] = await sql(`SELECT count(*)::int AS n FROM "${s}"._private_jobs`);
  if (n !== 0) throw new Error(`graphile-worker: ${n} jobs left`);
  if (!quiet) {
    record(
      "graphile",
      `end-to-end no-op, ${fmt(N)} jobs, concurrency 10, local queue 500`,
      fmt(N / secs),
      "jobs/s",
    );
  }
  await utils.release();
  return N / secs;
}

async function graphilePickup() {
  const s = schema("graphile_bench");
  const utils = await graphileUtils(s);
  const started = new Map();
  const runner = await run({
    connectionString: URL,
    schema: s,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 60_000,
    logger: gwLogger,
    preset: graphilePreset,
    taskList: {
      ping: async (payload) => void started.set(payload.k, performance.now()),
    },
  });
  await sleep(300);
  const lat = [];
  for (let i = 0; i < PICKUPS + 10; i++) {
    await sleep(5);
    const t0 = performance.now();
    await utils.addJob("ping", { k: i });
    while (!started.has(i)) await new Promise((r) => setImmediate(r));
    if (i >= 10) lat.push(started.get(i) - t0);
  }
  record("graphile", "pick-up by an idle worker, p50", ms(pct(lat, 50)), "ms");
  record("graphile", "pick-up by an idle worker, p99", ms(pct(lat, 99)), "ms");
  await runner.stop();
  await utils.release();
}

// ---------------------------------------------------------------- paired

async function pairedEndToEnd() {
  const loom = [];
  const graphile = [];
  const ratios = [];
  for (let r = 0; r < ROUNDS; r++) {
    const runLoom = () => loomEndToEnd(10, { prefetch: 500, quiet: true });
    const runGraphile = () => graphileEndToEnd({ quiet: true });
    let l, g;
    if (r % 2 === 0) {
      l = await runLoom();
      g = await runGraphile();
    } else {
      g = await runGraphile();
      l = await runLoom();
    }
    loom.push(l);
    graphile.push(g);
    ratios.push(l / g);
    console.error(`  round ${r + 1}: loom ${fmt(l)}, graphile ${fmt(g)}, ${(l / g).toFixed(2)}×`);
  }
  const median = (xs) => pct(xs, 50);
  const what = `end-to-end no-op, ${fmt(N)} tasks, median of ${ROUNDS} alternated rounds`;
  record("loom", `${what}, prefetch 500`, fmt(median(loom)), "tasks/s");
  record("graphile", `${what}, local queue 500`, fmt(median(graphile)), "jobs/s");
  record(
    "ratio",
    "loom / graphile per round: median (range)",
    `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
    "×",
  );
}

// ---------------------------------------------------------------- main

try {
  console.error(`PostgreSQL bench, N = ${fmt(N)}${quick ? " (quick)" : ""}`);
  if (only.includes("enqueue")) await loomEnqueue();
  if (only.includes("e2e")) {
    await loomEndToEnd(10);
    await loomEndToEnd(100);
    await loomEndToEnd(10, { prefetch: 500 });
    await loomEndToEnd(10, { prefetch: 500, analyze: true });
  }
  if (only.includes("paired")) await pairedEndToEnd();
  if (only.includes("processes")) for (const k of [1, 2, 4]) await loomProcesses(k);
  if (only.includes("pickup")) await loomPickup();
  if (only.includes("graphile")) {
    if (only.includes("enqueue")) await graphileEnqueue();
    await graphileEndToEnd();
    await graphilePickup();
  }
} finally {
  for (const s of schemas) await sql(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => {});
}

const [{ server_version: version }] = await sql("SHOW server_version");
console.log(`\nPostgreSQL ${version}, node ${process.version}, ${quick ? "quick" : "full"} run\n`);
console.log("| system | what | figure |");
console.log("|---|---|---|");
for (const r of rows) console.log(`| ${r.system} | ${r.what} | ${r.value} ${r.unit} |`);
