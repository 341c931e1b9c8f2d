// Flows: what reading a flow costs when its status is derived from its tasks at read time.
//
//   node --import tsx bench/flows.mjs            # SQLite in memory
//   node --import tsx bench/flows.mjs --quick
//
// Measures, on SQLite (in memory, one process): `engine.flow` of a 100-task fan-out (one
// transaction), `flows.get` of that flow, `flows.list({ limit: 100 })` (no status filter: the page
// is cut first, then derived), and `flows.list({ status: "completed", limit: 100 })` (the status
// must be derived for every flow of the tenant before the page is cut) over F flows of 10 tasks.
// Also the cost a materialised status would have saved nothing on: the dispatch path is not
// touched at all by flows (no trigger, no extra write per task end).
import { createTestEngine } from "../src/testing/index.js";
import { fanOut } from "../src/index.js";

const quick = process.argv.includes("--quick");
const FLOWS = quick ? 200 : 2_000;
const ROUNDS = quick ? 20 : 200;

const e = createTestEngine();
e.register("x", () => 1);

async function time(label, n, fn) {
  for (let i = 0; i < Math.min(5, n); i++) await fn(i); // warm-up
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const us = ((performance.now() - t) * 1000) / n;
  console.log(`| ${label} | ${us.toFixed(0)} µs |`);
}

console.log(`| operation (SQLite :memory:, ${FLOWS} flows of 10 tasks) | per call |`);
console.log("|---|---|");
const big = await e.flow(
  fanOut("big", {
    tasks: Array.from({ length: 99 }, (_, i) => ({ type: "x", key: `k${i}` })),
    then: { type: "x", key: "join" },
  }),
);
await time("engine.flow, 100-task fan-out (one transaction)", ROUNDS / 4, () =>
  e.flow(
    fanOut("f", {
      tasks: Array.from({ length: 99 }, (_, i) => ({ type: "x", key: `k${i}` })),
      then: { type: "x", key: "join" },
    }),
  ),
);
await time("flows.get, 100-task flow", ROUNDS, () => e.flows.get(big.id));
for (let i = 0; i < FLOWS; i++) {
  await e.flow(
    fanOut(`f${i}`, {
      tasks: Array.from({ length: 9 }, (_, j) => ({ type: "x", key: `k${j}` })),
      then: { type: "x", key: "j" },
    }),
  );
}
await e.drain();
await time("flows.list limit 100 (page first, then derive)", ROUNDS, () =>
  e.flows.list({ limit: 100 }),
);
await time(
  `flows.list status=completed limit 100 (derive all ${FLOWS + ROUNDS / 4 + 1})`,
  ROUNDS / 4,
  () => e.flows.list({ status: "completed", limit: 100 }),
);
await e.close();
