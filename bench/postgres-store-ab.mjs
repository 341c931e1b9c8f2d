// Schema variants of the PostgreSQL store, compared at store level, interleaved cycle by cycle.
//
//   node --import tsx bench/postgres-store-ab.mjs --variant "" --variant "ALTER TABLE $S.tasks ..."
//   node --import tsx bench/postgres-store-ab.mjs --variant "" --variant "" --rounds=3   # A/A check
//
// Each `--variant` is SQL run on a fresh store schema after its migrations and before any task is
// written; `$S` stands for the quoted schema name, and "" is the schema as migrated. Every
// variant gets its own schema with the same N retry-policy tasks queued. Then, in one loop, each
// variant in turn claims 510 tasks (10 into `running`, 500 prefetched, as an engine with
// concurrency 10 and prefetch 500 does) and completes the 510 it claimed before, one variant
// after another, each call awaited. Printed: microseconds per task of claim and of completion,
// and each variant's total against the first.
//
// Why interleaved: on a shared VM the speed drifts by 10-30 % from one second to the next, so
// whole runs compared one after another mostly measure the drift. Alternating every ~15 ms
// exposes all variants to the same drift. Two identical variants (pass "" twice) still differed
// by up to 5 % in one round on the machine of BENCHMARKS.md: trust a difference only when it
// holds, in the same direction, over several rounds.
//
// LOOM_PG_URL picks the database (default postgres://root@127.0.0.1:5432/test); the schemas
// (loom_ab_*) are dropped afterwards.
import { performance } from "node:perf_hooks";
import pg from "pg";
import { createEngine, postgres } from "../src/index.ts";

const URL = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
const args = process.argv.slice(2);
const variants = [];
for (let i = 0; i < args.length; i++) if (args[i] === "--variant") variants.push(args[++i] ?? "");
if (variants.length < 2) throw new Error('give at least two --variant "<sql>" (use "" for none)');
const numberArg = (name, fallback) => {
  const v = args.find((a) => a.startsWith(`--${name}=`));
  const n = v ? Number(v.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
  return n;
};
const N = numberArg("tasks", 40_000);
const ROUNDS = numberArg("rounds", 2);
const tag = `${process.pid}_${Date.now() % 100000}`;
let made = 0;

async function sql(text) {
  const c = new pg.Client(URL);
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

async function prepare(variant) {
  const schema = `loom_ab_${tag}_${made++}`;
  const store = postgres(URL, { schema });
  const engine = createEngine({ name: "ab", store, retention: false });
  engine.register("noop", () => {}, { crashPolicy: "retry" });
  await engine.count(); // migrations
  if (variant) await sql(variant.replaceAll("$S", `"${schema}"`));
  const reqs = Array.from({ length: 1_000 }, (_, i) => ({ type: "noop", input: { i } }));
  for (let i = 0; i < N; i += 1_000) await engine.submitMany(reqs);
  return { schema, store, engine, previous: [], claimMs: 0, settleMs: 0, settled: 0 };
}

const claim = async (v) => {
  const r = await v.store.exchange({
    now: Date.now(),
    settle: [],
    claim: { engineName: "ab", types: ["noop"], limit: 10, prefetch: 500 },
  });
  return [...r.claimed, ...(r.prefetched ?? [])];
};

const complete = (v, tasks) =>
  v.store.exchange({
    now: Date.now(),
    settle: tasks.map((t) => ({
      kind: "complete",
      id: t.id,
      attemptId: t.attemptId,
      result: null,
    })),
    claim: null,
  });

const perTask = (ms, n) => ((ms / n) * 1000).toFixed(2);

for (let round = 0; round < ROUNDS; round++) {
  const vs = [];
  try {
    for (const variant of variants) vs.push(await prepare(variant));
    for (const v of vs) v.previous = await claim(v);
    for (let cycle = 0; vs.some((v) => v.previous.length > 0); cycle++) {
      for (const v of cycle % 2 ? [...vs].reverse() : vs) {
        if (v.previous.length === 0) continue;
        const t0 = performance.now();
        const next = await claim(v);
        const t1 = performance.now();
        await complete(v, v.previous);
        v.claimMs += t1 - t0;
        v.settleMs += performance.now() - t1;
        v.settled += v.previous.length;
        v.previous = next;
      }
    }
    const perTaskMs = (v) => (v.claimMs + v.settleMs) / v.settled;
    const base = perTaskMs(vs[0]);
    console.log(`round ${round + 1}, ${N.toLocaleString("en-US")} tasks per variant`);
    vs.forEach((v, i) => {
      console.log(
        `  variant ${i}: claim ${perTask(v.claimMs, v.settled)} + complete ` +
          `${perTask(v.settleMs, v.settled)} = ${(perTaskMs(v) * 1000).toFixed(2)} µs/task ` +
          `(${(perTaskMs(v) / base).toFixed(3)}×)  ${variants[i] ? variants[i].slice(0, 60) : "as migrated"}`,
      );
    });
  } finally {
    for (const v of vs) {
      await v.engine.close();
      await sql(`DROP SCHEMA IF EXISTS "${v.schema}" CASCADE`);
    }
  }
}
