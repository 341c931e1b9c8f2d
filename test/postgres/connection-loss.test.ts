import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, postgres, type Logger } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, pgQuery, testSchema, waitFor } from "../support/pg.js";

// Every query connection of a running engine is killed, twice, in the middle of a run, as a
// PostgreSQL restart or a failover would. The engine must log, retry with backoff and finish every
// task without a process restart. Only this file's own connections are killed (by a unique
// application_name), so suites running in parallel are not disturbed.

const available = await pgAvailable();
const schema = testSchema("connection_loss");
afterAll(async () => {
  if (available) await dropSchema(schema);
});

describe.runIf(available)("losing every PostgreSQL connection mid-run", () => {
  it("logs, retries with backoff and completes every task (none lost, none stuck)", async () => {
    const appName = `loom_loss_${randomBytes(4).toString("hex")}`;
    const errors: string[] = [];
    const logger: Logger = {
      trace() {},
      debug() {},
      info() {},
      warn: (a: object | string, b?: string) =>
        void errors.push(typeof a === "string" ? a : (b ?? "")),
      error: (a: object | string, b?: string) =>
        void errors.push(typeof a === "string" ? a : (b ?? "")),
    };
    const store = postgres(PG_URL, {
      schema,
      poolSize: 4,
      connection: { application_name: appName },
      fallbackPollMs: 50,
      reconnectMaxMs: 400,
    });
    const engine = createEngine({ name: "loss", store, logger, retention: false, concurrency: 10 });
    const runs = new Map<string, number>();
    // "retry": an exchange whose commit landed but whose reply was lost leaves claimed rows that
    // only the lease can give back; under "retry" they run again instead of failing.
    engine.register("job", (task) => void runs.set(task.id, (runs.get(task.id) ?? 0) + 1), {
      crashPolicy: "retry",
      leaseMs: 2_000,
    });
    try {
      const total = 3_000;
      const ids = await engine.submitMany(
        Array.from({ length: total }, (_, i) => ({ type: "job", input: i })),
      );
      await engine.start();

      for (const after of [500, 1_500]) {
        await waitFor(() => runs.size >= after, 30_000, `${after} tasks to run`);
        const killed = await pgQuery<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
          [appName],
        );
        expect(killed.length).toBeGreaterThan(0);
      }

      const done = await Promise.all(ids.map((id) => engine.wait(id, { timeoutMs: 60_000 })));
      expect(done.every((t) => t.status === "completed")).toBe(true);
      expect(runs.size).toBe(total);
      expect(errors.length).toBeGreaterThan(0);
      const left = await pgQuery<{ n: string }>(
        `SELECT count(*) AS n FROM ${schema}.tasks WHERE status <> 'completed'`,
      );
      expect(left[0]?.n).toBe("0");
    } finally {
      await engine.close({ timeoutMs: 5_000 });
    }
  }, 90_000);

  it("a read right after its pooled connections were killed while idle still answers", async () => {
    const appName = `loom_idle_${randomBytes(4).toString("hex")}`;
    const store = postgres(PG_URL, {
      schema,
      poolSize: 4,
      connection: { application_name: appName },
    });
    const engine = createEngine({ name: "idle-kill", store, retention: false });
    try {
      const ids = await Promise.all(
        [1, 2, 3, 4].map((i) => engine.submit({ type: "idle", input: i })),
      );
      for (let round = 0; round < 5; round++) {
        // Warm every pooled connection, then kill them all while idle; the next statement on one
        // of them is answered "terminating connection due to administrator command".
        await Promise.all(ids.map((id) => engine.get(id)));
        await pgQuery(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
          [appName],
        );
        const read = await Promise.all(ids.map((id) => engine.get(id)));
        expect(read.map((t) => t.id)).toEqual(ids);
      }
    } finally {
      await engine.close({ timeoutMs: 5_000 });
    }
  });
});
