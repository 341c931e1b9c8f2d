// Loom on embedded SQLite, side by side with BullMQ on Redis, in one run.
//
//   npm install --no-save bullmq@5                           # once, for the BullMQ side
//   npm run build && node bench/sqlite-tasks.mjs            # full run (about 2 minutes)
//   node bench/sqlite-tasks.mjs --quick                     # smaller counts, for a smoke check
//   node bench/sqlite-tasks.mjs --only=e2e,pickup           # a subset: enqueue,e2e,pickup,xproc,memory,bullmq
//
// Prints a Markdown table; BENCHMARKS.md records the figures with the command and the machine.
// Every figure is measured end to end through the public API: a task is committed to the file
// before submit resolves, and every claim and completion is a committed, fenced write.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { createEngine, sqlite } from "../dist/index.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = (
  args.find((a) => a.startsWith("--only="))?.slice(7) ?? "enqueue,e2e,pickup,xproc,memory,bullmq"
).split(",");
const N = quick ? 5_000 : 20_000;
const dir = mkdtempSync(join(tmpdir(), "loom-bench-"));
let dbCount = 0;
const freshDb = () => join(dir, `bench-${++dbCount}.db`);
const rows = [];
const record = (system, what, value, unit) => {
  rows.push({ system, what, value, unit });
  console.error(`  ${system.padEnd(8)} ${what.padEnd(46)} ${value} ${unit}`);
};
const fmt = (n) => Math.round(n).toLocaleString("en-US");
const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function makeEngine(path, opts = {}) {
  return createEngine({ name: "bench", store: sqlite(path), retention: false, ...opts });
}

async function enqueue() {
  const engine = makeEngine(freshDb());
  const total = quick ? 50_000 : 200_000;
  const batch = 1_000;
  const reqs = Array.from({ length: batch }, (_, i) => ({ type: "noop", input: { i } }));
  await engine.count(); // migrations
  const t0 = performance.now();
  for (let done = 0; done < total; done += batch) await engine.submitMany(reqs);
  const s = (performance.now() - t0) / 1000;
  record("loom", `batch enqueue (submitMany × ${batch})`, fmt(total / s), "tasks/s");
  const single = quick ? 2_000 : 10_000;
  const t1 = performance.now();
  for (let i = 0; i < single; i++) await engine.submit({ type: "noop", input: { i } });
  record(
    "loom",
    "single submit (await each)",
    fmt(single / ((performance.now() - t1) / 1000)),
    "tasks/s",
  );
  await engine.close();
}

async function endToEnd(concurrency, prefetch) {
  // Without `prefetch`: default "fail" crash policy, so nothing is claimed ahead of a free slot.
  // With it: "retry" policy, and up to `prefetch` tasks wait claimed in the local buffer.
  const engine = makeEngine(freshDb(), { concurrency, prefetch: prefetch ?? 0 });
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  engine.register(
    "noop",
    () => {
      if (++done === N) finish();
    },
    { crashPolicy: prefetch ? "retry" : "fail" },
  );
  const reqs = Array.from({ length: 1_000 }, (_, i) => ({ type: "noop", input: { i } }));
  for (let i = 0; i < N; i += 1_000) await engine.submitMany(reqs);
  const t0 = performance.now();
  await engine.start();
  await finished;
  // The last completions are still being written: count them in.
  await engine.close();
  const s = (performance.now() - t0) / 1000;
  const completed = await (async () => {
    const check = makeEngine(engine.store.path);
    const n = await check.count({ status: "completed" });
    await check.close();
    return n;
  })();
  if (completed !== N) throw new Error(`expected ${N} completed, found ${completed}`);
  const label = prefetch ? `, retry policy, prefetch ${prefetch}` : "";
  record("loom", `end-to-end no-op, concurrency ${concurrency}${label}`, fmt(N / s), "tasks/s");
}

async function pickup() {
  const engine = makeEngine(freshDb(), { concurrency: 10 });
  const samples = [];
  let resolveStart;
  engine.register("ping", () => resolveStart(performance.now()));
  await engine.start();
  const rounds = quick ? 300 : 2_000;
  for (let i = 0; i < rounds; i++) {
    const started = new Promise((r) => (resolveStart = r));
    const t0 = performance.now();
    await engine.submit({ type: "ping" });
    samples.push((await started) - t0);
    await new Promise((r) => setTimeout(r, 1));
  }
  await engine.close();
  samples.sort((a, b) => a - b);
  record("loom", "pickup latency in process, p50", pct(samples, 50).toFixed(3), "ms");
  record("loom", "pickup latency in process, p99", pct(samples, 99).toFixed(3), "ms");
}

async function crossProcess() {
  const path = freshDb();
  const submitter = makeEngine(path, { name: "submitter" });
  await submitter.count();
  const child = spawn(
    process.execPath,
    [new URL("./sqlite-pickup-worker.mjs", import.meta.url).pathname, path],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout });
  const waiting = new Map();
  let ready;
  const isReady = new Promise((r) => (ready = r));
  lines.on("line", (line) => {
    if (line === "ready") return ready();
    const [id, at] = line.split(" ");
    waiting.get(id)?.(Number(at));
  });
  await isReady;
  const samples = [];
  const rounds = quick ? 200 : 1_000;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.timeOrigin + performance.now();
    const id = await submitter.submit({ type: "ping" });
    const at = await new Promise((r) => waiting.set(id, r));
    waiting.delete(id);
    samples.push(at - t0);
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill("SIGTERM");
  await submitter.close();
  samples.sort((a, b) => a - b);
  record("loom", "pickup latency from another process, p50", pct(samples, 50).toFixed(2), "ms");
  record("loom", "pickup latency from another process, p99", pct(samples, 99).toFixed(2), "ms");
}

async function memory() {
  const path = freshDb();
  const engine = makeEngine(path, { concurrency: 10 });
  const total = quick ? 200_000 : 1_000_000;
  const reqs = Array.from({ length: 5_000 }, (_, i) => ({ type: "later", input: { i } }));
  for (let i = 0; i < total; i += 5_000) await engine.submitMany(reqs);
  // A worker registered for the type, running, with the whole backlog pending in the file.
  let ran = 0;
  engine.register("later", () => void ran++);
  await engine.start();
  await new Promise((r) => setTimeout(r, 500));
  await engine.close({ timeoutMs: 5_000 });
  global.gc?.();
  const rss = process.memoryUsage().rss / 2 ** 20;
  record("loom", `RSS with ${fmt(total)} pending tasks (after ${fmt(ran)} ran)`, fmt(rss), "MB");
}

async function bullmq(concurrency) {
  const { Queue, Worker } = await import("bullmq");
  const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
  const name = `loom-bench-${process.pid}-${concurrency}`;
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  const batch = 1_000;
  const t0 = performance.now();
  for (let i = 0; i < N; i += batch) {
    await queue.addBulk(
      Array.from({ length: batch }, (_, j) => ({ name: "noop", data: { i: i + j } })),
    );
  }
  const enqueueRate = N / ((performance.now() - t0) / 1000);
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const t1 = performance.now();
  const worker = new Worker(name, async () => {}, { connection, concurrency, autorun: false });
  worker.on("completed", () => {
    if (++done === N) finish();
  });
  void worker.run();
  await finished;
  const s = (performance.now() - t1) / 1000;
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  if (concurrency === 10)
    record("bullmq", `batch enqueue (addBulk × ${batch})`, fmt(enqueueRate), "tasks/s");
  record("bullmq", `end-to-end no-op, concurrency ${concurrency}`, fmt(N / s), "tasks/s");
}

async function bullmqPickup() {
  const { Queue, Worker, QueueEvents } = await import("bullmq");
  const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
  const name = `loom-bench-pickup-${process.pid}`;
  const queue = new Queue(name, { connection });
  let resolveStart;
  const worker = new Worker(name, async () => resolveStart(performance.now()), {
    connection,
    concurrency: 10,
  });
  await worker.waitUntilReady();
  await new Promise((r) => setTimeout(r, 200));
  const samples = [];
  const rounds = quick ? 200 : 1_000;
  for (let i = 0; i < rounds; i++) {
    const started = new Promise((r) => (resolveStart = r));
    const t0 = performance.now();
    await queue.add("ping", {});
    samples.push((await started) - t0);
    await new Promise((r) => setTimeout(r, 1));
  }
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  void QueueEvents;
  samples.sort((a, b) => a - b);
  record("bullmq", "pickup latency in process, p50", pct(samples, 50).toFixed(3), "ms");
  record("bullmq", "pickup latency in process, p99", pct(samples, 99).toFixed(3), "ms");
}

try {
  console.error(
    `# ${N.toLocaleString()} no-op tasks per run; ${cpus().length} cores; node ${process.version}`,
  );
  if (only.includes("enqueue")) await enqueue();
  if (only.includes("e2e")) {
    for (const c of [1, 10, 100]) await endToEnd(c);
    await endToEnd(10, 100);
  }
  if (only.includes("pickup")) await pickup();
  if (only.includes("xproc")) await crossProcess();
  if (only.includes("memory")) await memory();
  if (only.includes("bullmq")) {
    // BullMQ is not a dependency of Loom (its lock entries break `npm ci` here): install it for
    // the comparison with `npm install --no-save bullmq@5`.
    const installed = await import("bullmq").then(
      () => true,
      () => false,
    );
    if (installed) {
      await bullmq(10);
      await bullmq(100);
      await bullmqPickup();
    } else {
      console.error("  bullmq not installed: `npm install --no-save bullmq@5` to compare with it");
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\n| system | measure | value | unit |\n|---|---|---:|---|`);
for (const r of rows) console.log(`| ${r.system} | ${r.what} | ${r.value} | ${r.unit} |`);
console.log(
  `\n${new Date().toISOString().slice(0, 10)} · node ${process.version} · ${cpus()[0]?.model ?? "cpu"} × ${cpus().length} · ${Math.round(totalmem() / 2 ** 30)} GiB`,
);
process.exit(0);
