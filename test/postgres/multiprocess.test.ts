import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, postgres } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, pgQuery, testSchema } from "../support/pg.js";

const available = await pgAvailable();
const schema = testSchema("multiprocess");
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (available) await dropSchema(schema);
});

const TOTAL = 20_000;
const LEASE_MS = 1_500;

function spawnWorker(name: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/fixtures/pg-worker.ts", PG_URL, schema, name, String(LEASE_MS)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (line === "ready") resolve(child);
    });
    child.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal})`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function count(sql: string): Promise<number> {
  return (await pgQuery<{ n: number }>(sql))[0]!.n;
}

describe.runIf(available)("several worker processes on one PostgreSQL schema", () => {
  it(`run ${TOTAL.toLocaleString("en-US")} tasks: none lost, none completed twice, a SIGKILLed worker's tasks rescued`, async () => {
    // The submitter writes the per-type crash policy and lease onto every row.
    const submitter = createEngine({
      name: "submitter",
      store: postgres(PG_URL, { schema, poolSize: 2 }),
      retention: false,
    });
    const work = submitter.register("work", () => null, {
      crashPolicy: "retry",
      leaseMs: LEASE_MS,
    });
    await submitter.count(); // migrated
    await pgQuery(`CREATE TABLE "${schema}".ledger (
        task_id text NOT NULL, attempt_id text NOT NULL, worker text NOT NULL)`);

    const workers = await Promise.all(["w0", "w1", "w2", "w3"].map((n) => spawnWorker(n)));
    const started = Date.now();
    for (let i = 0; i < TOTAL; i += 1_000) {
      await work.submitMany(Array.from({ length: 1_000 }, (_, j) => ({ n: i + j })));
    }

    // Kill one worker mid-run, without any chance to clean up.
    const done = () =>
      count(`SELECT count(*)::int AS n FROM "${schema}".tasks WHERE status = 'completed'`);
    while ((await done()) < TOTAL / 4) await new Promise((r) => setTimeout(r, 20));
    const victim = workers[0]!;
    victim.kill("SIGKILL");
    await exited(victim);
    const inFlightAtKill = await count(
      `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE engine_name = 'w0' AND status IN ('claimed', 'running')`,
    );

    const deadline = Date.now() + 150_000;
    while ((await done()) < TOTAL) {
      if (Date.now() > deadline) throw new Error(`only ${await done()} of ${TOTAL} completed`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (Date.now() - started) / 1000;
    for (const w of workers.slice(1)) w.kill("SIGTERM");
    expect(await Promise.all(workers.slice(1).map(exited))).toEqual([0, 0, 0]);
    await submitter.close();

    // Nothing lost: every task completed, and every task ran at least once.
    expect(await done()).toBe(TOTAL);
    expect(
      await count(`SELECT count(*)::int AS n FROM "${schema}".tasks t
          WHERE NOT EXISTS (SELECT 1 FROM "${schema}".ledger l WHERE l.task_id = t.id)`),
    ).toBe(0);
    // Completed once: the recorded result is the one of the attempt that owned the task,
    // and exactly one execution of that attempt is in the ledger.
    expect(
      await count(`SELECT count(*)::int AS n FROM "${schema}".tasks t
          WHERE t.result::json ->> 'attemptId' IS DISTINCT FROM t.attempt_id
             OR (SELECT count(*) FROM "${schema}".ledger l
                  WHERE l.task_id = t.id AND l.attempt_id = t.attempt_id) <> 1`),
    ).toBe(0);
    // Executed more than once only where the killed worker had been running it.
    const reruns = await pgQuery<{ task_id: string; workers: string[] }>(
      `SELECT task_id, array_agg(worker ORDER BY worker) AS workers FROM "${schema}".ledger
          GROUP BY task_id HAVING count(*) > 1`,
    );
    for (const r of reruns) expect(r.workers).toContain("w0");
    // The killed worker's in-flight attempts were rescued after their lease (crash policy
    // "retry") and completed by the others.
    const rescued = await count(
      `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE crash_count > 0`,
    );
    expect(rescued).toBe(inFlightAtKill);
    expect(
      await count(`SELECT count(*)::int AS n FROM "${schema}".tasks
          WHERE crash_count > 0 AND result::json ->> 'by' = 'w0'`),
    ).toBe(0);
    const byWorker = await pgQuery<{ by: string; n: number }>(
      `SELECT result::json ->> 'by' AS by, count(*)::int AS n FROM "${schema}".tasks GROUP BY 1 ORDER BY 1`,
    );
    console.info(
      `[postgres] 4 processes, ${TOTAL} tasks in ${seconds.toFixed(1)} s ` +
        `(${Math.round(TOTAL / seconds)} tasks/s incl. the kill and a ${LEASE_MS} ms lease); ` +
        `in flight at SIGKILL: ${inFlightAtKill}, re-executed: ${reruns.length}; ` +
        `completed by ${byWorker.map((b) => `${b.by} ${b.n}`).join(", ")}`,
    );
  }, 200_000);
});
