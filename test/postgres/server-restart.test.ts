import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, postgres, type Engine, type Logger } from "../../src/index.js";
import { pgClusterUnavailable, startPgCluster, type PgCluster } from "../support/pg-cluster.js";
import { waitFor } from "../support/pg.js";

// The PostgreSQL server itself restarts in the middle of a run: once cleanly ("fast": every
// backend is told to go), once as a crash ("immediate": WAL recovery on start). The server is a
// private one started for this file (initdb in a temporary folder, its own port) so the shared
// server the other suites use is never touched.

const unavailable = pgClusterUnavailable();
if (unavailable) {
  if (process.env.CI === "true") {
    throw new Error(`cannot start a private PostgreSQL server (${unavailable}) and CI=true`);
  }
  console.warn(`[loom tests] skipping the PostgreSQL restart suite: ${unavailable}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recordingLogger(lines: string[]): Logger {
  const keep = (a: object | string, b?: string) =>
    void lines.push(typeof a === "string" ? a : (b ?? ""));
  return { trace() {}, debug() {}, info() {}, warn: keep, error: keep };
}

describe.runIf(!unavailable)("a PostgreSQL server restart mid-run", () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPgCluster();
  }, 120_000);
  afterAll(() => cluster?.stop());

  it("logs, reconnects with backoff and finishes every task; the LISTEN connection heals", async () => {
    const errors: string[] = [];
    const store = () =>
      postgres(cluster.url, {
        schema: "loom_restart",
        poolSize: 4,
        fallbackPollMs: 50,
        reconnectMaxMs: 400,
      });
    const engine = createEngine({
      name: "restart",
      store: store(),
      logger: recordingLogger(errors),
      retention: false,
      concurrency: 10,
      // Only a wake-up (NOTIFY, or the fallback poll while LISTEN is down) finds new work fast.
      pollMs: 60_000,
    });
    const runs = new Map<string, number>();
    const started = new Map<string, number>();
    // "retry": an exchange whose commit landed but whose reply died with the server leaves
    // claimed rows only the lease gives back; under "retry" they run again.
    engine.register(
      "job",
      async (task) => {
        started.set(task.id, Date.now());
        runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
        await sleep(1);
      },
      { crashPolicy: "retry", leaseMs: 2_000 },
    );
    let submitter: Engine | null = null;
    try {
      const total = 2_000;
      const ids = await engine.submitMany(
        Array.from({ length: total }, (_, i) => ({ type: "job", input: i })),
      );
      await engine.start();
      await waitFor(() => runs.size >= 400, 30_000, "400 tasks to run");
      cluster.restart("fast");
      await waitFor(() => runs.size >= 1_200, 60_000, "1,200 tasks to run after a restart");
      cluster.restart("immediate");
      await waitFor(() => runs.size === total, 60_000, "every task to run");

      // Reads during the outage fail with a StoreError; by now the server is back.
      const done = await Promise.all(ids.map((id) => engine.wait(id, { timeoutMs: 60_000 })));
      expect(done.every((t) => t.status === "completed")).toBe(true);
      expect(runs.size).toBe(total);
      expect(errors.some((l) => /retrying|reconnect|lost/i.test(l))).toBe(true);
      expect(await engine.count({ status: ["pending", "claimed", "running", "retrying"] })).toBe(0);

      // New work from another process still wakes this idle engine at once (its poll is a
      // minute away): the listening connection came back after the crash.
      submitter = createEngine({ name: "submitter", store: store(), retention: false });
      const t0 = Date.now();
      const id = await submitter.submit({ type: "job", input: "after" });
      await waitFor(() => started.has(id), 5_000, "the new task to start");
      expect(started.get(id)! - t0).toBeLessThan(2_000);
    } finally {
      await submitter?.close();
      await engine.close({ timeoutMs: 5_000 });
    }
  }, 180_000);
});
