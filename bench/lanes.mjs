// Lane benchmarks: scheduling overhead against p-queue, and fair share under a flood.
//
// Run from the repository root (imports the TypeScript sources through tsx, so no build needed):
//
//   node --expose-gc --import tsx bench/lanes.mjs            # full run, prints Markdown tables
//   node --expose-gc --import tsx bench/lanes.mjs --quick    # smaller, for a smoke test
//
// (--expose-gc lets it collect garbage between rounds; optional.) Run it on an otherwise idle
// machine; the numbers are wall-clock.
//
// (1) Overhead. N no-op async jobs (`async () => {}` plus a shared completion counter) go into a
//     lane and into p-queue, both at concurrency 10, submitted in one synchronous loop; we time
//     from the first submit to the last job's completion and divide by N. Two shapes:
//       - fire-and-forget: `lane.submit(job)` vs `queue.add(fn)` with its promise ignored;
//       - awaited: `lane.submitAndWait(job)` vs `queue.add(fn)`, all promises awaited.
//     Rounds alternate between the two libraries (after one warm-up round each); we report the
//     median µs/job of each and the ratio lane / p-queue (target ≤ 1.5).
//
// (2) Flood. Lane concurrency 8, every job sleeps ~1 ms (setTimeout). "With flood": one heavy
//     caller submits 10,000 jobs, then 20 light callers submit 20 jobs each, all at t = 0.
//     "Without": only the 20 light callers. Wait = start - submit, for the light callers' jobs;
//     we report their p50/p99 (nearest-rank). Target: p99 with flood ≤ 2 × p99 without.
//     Jain's fairness index J = (Σ x_i)² / (n · Σ x_i²) over the n = 21 callers, where x_i is the
//     number of jobs caller i started during the interval in which all 21 callers were
//     backlogged: from the last submit until the first moment any caller had no queued job left
//     (start events are recorded in order; a caller's queue is empty once it has started all
//     the jobs it submitted). Target ≥ 0.99. The same flood through p-queue (FIFO, no fairness)
//     is shown for reference. The run stops once the light callers are done (the lane is closed,
//     dropping the rest of the flood).
//
// (3) Engine lanes on SQLite (`--engine-only` runs just this). Store level, one process, a temp
//     file: E tasks are inserted, then `exchange` is called in a loop, each call completing the
//     previous batch and claiming the next 10 (the dispatcher's one write per tick), until all
//     ran. Plain tasks (the SKIP-LOCKED-free SQLite claim by type) against the same tasks in a
//     lane of concurrency 10 (fair share over 5 callers, and fairness "none"). We report µs per
//     task (claim + complete) and the ratio to plain.

import PQueue from "p-queue";
import { Lane } from "../src/lanes/index.ts";

const quick = process.argv.includes("--quick");
const engineOnly = process.argv.includes("--engine-only");
const N = quick ? 50_000 : 200_000;
const ROUNDS = quick ? 3 : 7;
const CONCURRENCY = 10;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
};
const gc = () => globalThis.gc?.();

// ---- (1) overhead --------------------------------------------------------------------------

async function laneFire() {
  const lane = new Lane({ name: "bench", concurrency: CONCURRENCY });
  let left = N;
  let done;
  const finished = new Promise((r) => (done = r));
  const job = {
    run: async () => {
      if (--left === 0) done();
    },
  };
  const t0 = performance.now();
  for (let i = 0; i < N; i++) lane.submit(job);
  await finished;
  return performance.now() - t0;
}

async function pqFire() {
  const queue = new PQueue({ concurrency: CONCURRENCY });
  let left = N;
  let done;
  const finished = new Promise((r) => (done = r));
  const fn = async () => {
    if (--left === 0) done();
  };
  const t0 = performance.now();
  for (let i = 0; i < N; i++) void queue.add(fn);
  await finished;
  return performance.now() - t0;
}

async function laneAwait() {
  const lane = new Lane({ name: "bench", concurrency: CONCURRENCY });
  const job = { run: async () => {} };
  const t0 = performance.now();
  const all = new Array(N);
  for (let i = 0; i < N; i++) all[i] = lane.submitAndWait(job);
  await Promise.all(all);
  return performance.now() - t0;
}

async function pqAwait() {
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const fn = async () => {};
  const t0 = performance.now();
  const all = new Array(N);
  for (let i = 0; i < N; i++) all[i] = queue.add(fn);
  await Promise.all(all);
  return performance.now() - t0;
}

async function overhead(name, lane, pq) {
  await lane();
  await pq();
  const a = [];
  const b = [];
  for (let r = 0; r < ROUNDS; r++) {
    gc();
    a.push(((await lane()) * 1000) / N);
    gc();
    b.push(((await pq()) * 1000) / N);
  }
  return { name, lane: median(a), pq: median(b) };
}

// ---- (2) flood -----------------------------------------------------------------------------

const HEAVY = quick ? 2_000 : 10_000;
const LIGHT_CALLERS = 20;
const LIGHT_JOBS = 20;
const FLOOD_CONCURRENCY = 8;
const sleep1 = () => new Promise((r) => setTimeout(r, 1));

async function floodLane(withFlood) {
  const lane = new Lane({ name: "flood", concurrency: FLOOD_CONCURRENCY });
  const submitted = new Map(); // caller -> jobs submitted
  const started = []; // caller of each start, in order
  const startedBy = new Map();
  const waits = [];
  let lastSubmitIndex = 0; // starts recorded before the last submit
  const job = (caller, light) => {
    const at = performance.now();
    submitted.set(caller, (submitted.get(caller) ?? 0) + 1);
    return {
      caller,
      run: async () => {
        started.push(caller);
        startedBy.set(caller, (startedBy.get(caller) ?? 0) + 1);
        if (light) waits.push(performance.now() - at);
        await sleep1();
      },
    };
  };
  const lights = [];
  if (withFlood) for (let i = 0; i < HEAVY; i++) lane.submit(job("heavy", false));
  for (let c = 0; c < LIGHT_CALLERS; c++) {
    for (let i = 0; i < LIGHT_JOBS; i++) lights.push(lane.submitAndWait(job(`light-${c}`, true)));
  }
  lastSubmitIndex = started.length;
  await Promise.all(lights);
  await lane.close();

  // Jain's index over the interval in which every caller was backlogged.
  const counts = new Map();
  const seen = new Map();
  for (const caller of submitted.keys()) counts.set(caller, 0);
  for (let i = 0; i < started.length; i++) {
    const caller = started[i];
    seen.set(caller, (seen.get(caller) ?? 0) + 1);
    if (i >= lastSubmitIndex) counts.set(caller, counts.get(caller) + 1);
    if (seen.get(caller) === submitted.get(caller)) break; // that caller's queue just emptied
  }
  const xs = [...counts.values()];
  const sum = xs.reduce((s, x) => s + x, 0);
  const jain = (sum * sum) / (xs.length * xs.reduce((s, x) => s + x * x, 0));
  return { p50: percentile(waits, 50), p99: percentile(waits, 99), jain, n: xs.length };
}

async function floodPQueue() {
  const queue = new PQueue({ concurrency: FLOOD_CONCURRENCY });
  const waits = [];
  const job = (light) => {
    const at = performance.now();
    return async () => {
      if (light) waits.push(performance.now() - at);
      await sleep1();
    };
  };
  for (let i = 0; i < HEAVY; i++) void queue.add(job(false));
  const lights = [];
  for (let i = 0; i < LIGHT_CALLERS * LIGHT_JOBS; i++) lights.push(queue.add(job(true)));
  await Promise.all(lights);
  queue.clear();
  await queue.onIdle();
  return { p50: percentile(waits, 50), p99: percentile(waits, 99) };
}

// ---- main ----------------------------------------------------------------------------------

const f = (x, d = 2) => x.toFixed(d);
if (!engineOnly) {
  console.log(
    `# Lane benchmarks (Node ${process.version}, ${N.toLocaleString("en")} jobs/round)\n`,
  );

  const rows = [
    await overhead("fire-and-forget (`submit` / `add`)", laneFire, pqFire),
    await overhead("awaited (`submitAndWait` / `add`)", laneAwait, pqAwait),
  ];
  console.log(
    `## Scheduling overhead, ${N.toLocaleString("en")} no-op jobs, concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds\n`,
  );
  console.log("| shape | Lane µs/job | p-queue µs/job | ratio Lane / p-queue |");
  console.log("|---|---:|---:|---:|");
  for (const r of rows)
    console.log(`| ${r.name} | ${f(r.lane)} | ${f(r.pq)} | ${f(r.lane / r.pq)} |`);

  const without = await floodLane(false);
  const withF = await floodLane(true);
  const pq = await floodPQueue();
  console.log(
    `\n## Flood: 1 caller × ${HEAVY.toLocaleString("en")} jobs + ${LIGHT_CALLERS} callers × ${LIGHT_JOBS} jobs, ~1 ms each, concurrency ${FLOOD_CONCURRENCY}\n`,
  );
  console.log(
    "| run | light p50 wait ms | light p99 wait ms | p99 vs no flood | Jain (backlogged) |",
  );
  console.log("|---|---:|---:|---:|---:|");
  console.log(
    `| Lane, no flood | ${f(without.p50, 1)} | ${f(without.p99, 1)} | 1.00 | ${f(without.jain, 4)} (n=${without.n}) |`,
  );
  console.log(
    `| Lane, flood | ${f(withF.p50, 1)} | ${f(withF.p99, 1)} | ${f(withF.p99 / without.p99)} | ${f(withF.jain, 4)} (n=${withF.n}) |`,
  );
  console.log(
    `| p-queue (FIFO), flood | ${f(pq.p50, 1)} | ${f(pq.p99, 1)} | ${f(pq.p99 / without.p99)} | – |`,
  );
}

// ---- (3) engine lanes on SQLite ------------------------------------------------------------

const { mkdtempSync, rmSync } = await import("node:fs");
const { tmpdir } = await import("node:os");
const { join } = await import("node:path");
const { SqliteStore } = await import("../src/stores/sqlite/sqlite-store.ts");

const E = quick ? 5_000 : 20_000;
const BATCH = 10;
const CALLERS = 5;

async function storeRun(mode) {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-lanes-"));
  const store = new SqliteStore(join(dir, "bench.sqlite"));
  await store.migrate();
  const t0 = 1_700_000_000_000;
  if (mode !== "plain") {
    await store.saveLane(
      {
        name: "L",
        concurrency: BATCH,
        fairness: mode === "none" ? "none" : "caller",
        preemption: null,
        maxQueue: null,
      },
      t0,
    );
  }
  const tasks = [];
  for (let i = 0; i < E; i++) {
    tasks.push({
      id: `t${String(i).padStart(8, "0")}`,
      type: "p",
      input: null,
      tenant: "default",
      project: "default",
      caller: mode === "plain" ? null : `c${i % CALLERS}`,
      priority: 1,
      lane: mode === "plain" ? null : "L",
      labels: null,
      metadata: null,
      maxRetries: 0,
      backoff: null,
      crashPolicy: "fail",
      maxCrashes: 3,
      leaseMs: 30_000,
      timeoutMs: null,
      runAt: t0,
      dependsOn: [],
      idempotencyKey: null,
      requestId: null,
      workflowId: null,
      traceContext: null,
      createdAt: t0,
    });
  }
  for (let i = 0; i < E; i += 1000) await store.insertTasks(tasks.slice(i, i + 1000));
  const claim =
    mode === "plain"
      ? { engineName: "b", types: ["p"], limit: BATCH }
      : { engineName: "b", types: [], limit: BATCH, lanes: [{ lane: "L", types: ["p"] }] };
  let done = 0;
  let settle = [];
  const start = performance.now();
  for (;;) {
    const out = await store.exchange({ now: t0 + 1, settle, claim });
    done += out.claimed.length;
    settle = out.claimed.map((c) => ({
      kind: "complete",
      id: c.id,
      attemptId: c.attemptId,
      result: null,
    }));
    if (out.claimed.length === 0) break;
  }
  const ms = performance.now() - start;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (done !== E) throw new Error(`${mode}: ran ${done} of ${E}`);
  return (ms * 1000) / E;
}

const engineRows = [];
for (const mode of ["plain", "caller", "none"]) {
  const runs = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    gc();
    runs.push(await storeRun(mode));
  }
  engineRows.push({ mode, us: median(runs) });
}
console.log(
  `\n## Engine lanes on SQLite (store level, ${E.toLocaleString("en")} tasks, batches of ${BATCH}, median of ${quick ? 1 : 3})\n`,
);
console.log("| tasks | µs per task (claim + complete) | × plain |");
console.log("|---|---:|---:|");
const plainUs = engineRows[0].us;
for (const r of engineRows) {
  const label =
    r.mode === "plain"
      ? "plain (no lane)"
      : r.mode === "caller"
        ? `lane, fair share over ${CALLERS} callers`
        : 'lane, fairness "none"';
  console.log(`| ${label} | ${f(r.us)} | ${f(r.us / plainUs)} |`);
}
