// Loom workflows side by side with DBOS Transact on the same PostgreSQL, in one run.
//
//   npm install --no-save @dbos-inc/dbos-sdk      # once, for the DBOS side (never a dependency)
//   LOOM_PG_URL=postgres://root@127.0.0.1:5432/loom_workflows \
//     node --import tsx bench/workflows-vs-dbos.mjs [--quick]
//
// Both run the same 3-step no-op workflow. Throughput: 10 concurrent callers, each starting a
// workflow and awaiting its result in a loop (closed loop, concurrency 10). Latency: one caller.
import { performance } from "node:perf_hooks";
import pg from "pg";
import { createEngine, postgres } from "../src/index.ts";

const quick = process.argv.includes("--quick");
const N = quick ? 200 : 1000;
const LAT = quick ? 50 : 200;
const url = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/loom_workflows";
const pct = (s, p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
const rows = [];
const record = (system, what, value) => {
  rows.push({ system, what, value });
  console.error(`  ${system.padEnd(6)} ${what.padEnd(44)} ${value}`);
};

async function measure(system, runOne) {
  for (let i = 0; i < 20; i++) await runOne(i); // warm up
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < N) await runOne(next++);
    }),
  );
  record(
    system,
    `3-step workflows/s, 10 callers (${N} runs)`,
    `${Math.round((N / (performance.now() - t0)) * 1000)} /s`,
  );
  const times = [];
  for (let i = 0; i < LAT; i++) {
    const t = performance.now();
    await runOne(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  record(
    system,
    "one workflow, start → result p50 / p99",
    `${pct(times, 50).toFixed(2)} / ${pct(times, 99).toFixed(2)} ms`,
  );
}

// Loom
const schema = `loom_vs_dbos_${process.pid}`;
{
  const engine = createEngine({
    name: "bench",
    store: postgres(url, { schema, poolSize: 10 }),
    retention: false,
    concurrency: 10,
  });
  const wf = engine.workflow("three", {
    run: async (ctx, n) => {
      const a = await ctx.step("a", () => n);
      const b = await ctx.step("b", () => a + 1);
      return ctx.step("c", () => b + 1);
    },
  });
  await engine.start();
  await measure("loom", async (i) => (await wf.start(i)).result());
  await engine.close();
  const c = new pg.Client(url);
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}

// DBOS Transact
{
  const { DBOS } = await import("@dbos-inc/dbos-sdk");
  const dbosUrl = url.replace(/\/[^/]*$/, "/loom_bench_dbos");
  DBOS.setConfig({ name: "loom-bench", systemDatabaseUrl: dbosUrl, applicationVersion: "0.1.0" });
  const three = DBOS.registerWorkflow(
    async (n) => {
      const a = await DBOS.runStep(async () => n, { name: "a" });
      const b = await DBOS.runStep(async () => a + 1, { name: "b" });
      return DBOS.runStep(async () => b + 1, { name: "c" });
    },
    { name: "three" },
  );
  await DBOS.launch();
  await measure("dbos", async (i) => (await DBOS.startWorkflow(three)(i)).getResult());
  await DBOS.shutdown();
}

console.log("| system | what | value |\n| --- | --- | ---: |");
for (const r of rows) console.log(`| ${r.system} | ${r.what} | ${r.value} |`);
process.exit(0);
