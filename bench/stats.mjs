// What `engine.stats()` (GET /api/v1/stats) costs without an index of its own: both stores scan
// the task table for counts by status and per-minute throughput.
//
//   npm run build && node bench/stats.mjs                       # SQLite, 100,000 tasks
//   LOOM_PG_URL=postgres://… node bench/stats.mjs --postgres    # PostgreSQL too
//   node bench/stats.mjs --rows=20000                           # another table size
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createEngine, postgres, sqlite } from "../dist/index.js";

const args = process.argv.slice(2);
const ROWS = Number(args.find((a) => a.startsWith("--rows="))?.slice(7) ?? 100_000);
const DONE = 5_000;

async function measure(label, store, cleanup) {
  const engine = createEngine({ name: "stats-bench", store, retention: false, concurrency: 50 });
  const batch = Array.from({ length: 1_000 }, (_, i) => ({
    type: "idle",
    tenant: i % 10 === 0 ? "t1" : "t0",
    input: { i },
  }));
  for (let n = 0; n < ROWS - DONE; n += 1_000) await engine.submitMany(batch);
  engine.register("noop", async () => 1);
  const ids = [];
  for (let n = 0; n < DONE; n += 1_000) {
    ids.push(...(await engine.submitMany(batch.map((r) => ({ ...r, type: "noop" })))));
  }
  await engine.start();
  await engine.wait(ids[ids.length - 1], { timeoutMs: 300_000 });
  for (const id of ids) await engine.wait(id, { timeoutMs: 300_000 });
  const time = async (fn) => {
    const t = [];
    for (let i = 0; i < 15; i++) {
      const s = performance.now();
      await fn();
      t.push(performance.now() - s);
    }
    t.sort((a, b) => a - b);
    return `${t[7].toFixed(1)} ms`;
  };
  const all = await time(() => engine.stats());
  const tenant = await time(() => engine.stats({ tenant: "t1" }));
  const count = await time(() => engine.count({ status: "pending" }));
  const s = await engine.stats();
  console.log(
    `| ${label} | ${ROWS.toLocaleString("en-US")} | ${all} | ${tenant} | ${count} | ${s.counts.completed} |`,
  );
  await engine.close();
  await cleanup();
}

console.log("| store | tasks | stats() median | stats({ tenant }) | count(pending) | completed |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
const dir = mkdtempSync(join(tmpdir(), "loom-stats-bench-"));
await measure("sqlite", sqlite(join(dir, "s.db")), async () =>
  rmSync(dir, { recursive: true, force: true }),
);
if (args.includes("--postgres")) {
  const url = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/loom";
  const schema = `loom_stats_bench_${process.pid}`;
  const store = postgres(url, { schema });
  await measure("postgres", store, async () => {
    const pg = (await import("pg")).default;
    const c = new pg.Client(url);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });
}
