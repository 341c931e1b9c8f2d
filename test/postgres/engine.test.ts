import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEngine, postgres, type Engine, type Logger } from "../../src/index.js";
import type { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { dropSchema, PG_URL, pgAvailable, pgQuery, testSchema, waitFor } from "../support/pg.js";

const available = await pgAvailable();
const schema = testSchema("engine");
const engines: Engine[] = [];
const stores: PostgresStore[] = [];

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close({ timeoutMs: 5_000 });
  for (const s of stores.splice(0)) await s.close();
});
afterAll(async () => {
  if (available) await dropSchema(schema);
});

function store(opts: Parameters<typeof postgres>[1] = {}): PostgresStore {
  const s = postgres(PG_URL, { schema, poolSize: 4, ...opts });
  stores.push(s);
  return s;
}

function engine(
  name: string,
  s: PostgresStore,
  opts: { pollMs?: number; logger?: Logger; concurrency?: number; prefetch?: number } = {},
): Engine {
  const e = createEngine({ name, store: s, retention: false, ...opts });
  engines.push(e);
  return e;
}

interface LogLine {
  level: string;
  msg: string;
  obj: object;
}

function capturingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (a: object | string, b?: string): void => {
      if (typeof a === "string") lines.push({ level, msg: a, obj: {} });
      else lines.push({ level, msg: b ?? "", obj: a });
    };
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(available)("engine on PostgreSQL", () => {
  it("runs 1,000 submitted tasks to completion", async () => {
    const e = engine("e2e", store());
    const seen = new Map<number, number>();
    const square = e.register("square", (task) => {
      const n = (task.input as { n: number }).n;
      seen.set(n, (seen.get(n) ?? 0) + 1);
      return { sq: n * n };
    });
    await e.start();
    const ids = await square.submitMany(Array.from({ length: 1_000 }, (_, n) => ({ n })));
    expect(new Set(ids).size).toBe(1_000);
    const done = await Promise.all(ids.map((id) => e.wait(id, { timeoutMs: 60_000 })));
    expect(done.every((t) => t.status === "completed")).toBe(true);
    expect(done[7]!.result).toEqual({ sq: 49 });
    expect(seen.size).toBe(1_000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(await e.count({ type: "square", status: "completed" })).toBe(1_000);
  });

  it("runs tasks submitted one by one, with retries and dependencies", async () => {
    const e = engine("e2e-mixed", store());
    let flaky = 0;
    e.register(
      "flaky",
      () => {
        if (++flaky < 3) throw new Error("not yet");
        return "ok";
      },
      { maxRetries: 5, backoff: { baseMs: 5, maxMs: 20, jitter: 0 } },
    );
    e.register("step", (task) => task.input);
    await e.start();
    const f = await e.submit({ type: "flaky" });
    const a = await e.submit({ type: "step", input: "a" });
    const b = await e.submit({ type: "step", input: "b", dependsOn: [a, f] });
    expect(await e.wait(b, { timeoutMs: 10_000 })).toMatchObject({
      status: "completed",
      result: "b",
    });
    expect(await e.get(f)).toMatchObject({ status: "completed", attempt: 3 });
  });

  it("wakes an idle engine within milliseconds when another store instance submits (LISTEN)", async () => {
    // No polling to fall back on: only a notification can explain a fast pick-up.
    const worker = engine("listener", store(), { pollMs: 60_000 });
    const started = new Map<string, number>();
    worker.register("ping", (task) => void started.set(task.id, performance.now()));
    await worker.start();
    const workerStore = stores[0]!;
    await waitFor(() => workerStore.listenStatus === "listening", 5_000, "LISTEN", 1);
    const submitter = engine("submitter", store());
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 20)); // let the worker go idle
      const t0 = performance.now();
      const id = await submitter.submit({ type: "ping" });
      await waitFor(() => started.has(id), 2_000, "the idle worker to pick up the task", 1);
      latencies.push(started.get(id)! - t0);
    }
    latencies.sort((x, y) => x - y);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    // Typically 1–3 ms on a quiet machine; generous bounds for a loaded CI box.
    expect(p50).toBeLessThan(50);
    expect(latencies[latencies.length - 1]!).toBeLessThan(500);
    console.info(
      `[postgres] LISTEN pick-up after submit: p50 ${p50.toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`,
    );
  });

  it("keeps work flowing when the LISTEN connection is killed: logs, polls, reconnects", async () => {
    const lines: LogLine[] = [];
    const s = store({ logger: capturingLogger(lines), fallbackPollMs: 50, reconnectMaxMs: 400 });
    const worker = engine("resilient", s, { pollMs: 60_000 });
    const done = new Set<string>();
    worker.register("job", (task) => void done.add(task.id));
    await worker.start();
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN", 1);
    const submitter = engine("resilient-submitter", store());

    // Kill the listening backend, as a failover or an administrator would.
    const killed = await pgQuery<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
      [s.listenApplicationName],
    );
    expect(killed).toEqual([{ ok: true }]);
    await waitFor(
      () => lines.some((l) => l.level === "warn" && /LISTEN connection lost/.test(l.msg)),
      5_000,
      "the drop to be logged",
      1,
    );
    // Work submitted during the gap is still found (by polling, or after the reconnect).
    const during = await submitter.submit({ type: "job" });
    await waitFor(() => done.has(during), 5_000, "a task submitted while LISTEN was down", 1);

    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN to come back", 1);
    expect(lines.some((l) => l.level === "info" && /restored; polling stopped/.test(l.msg))).toBe(
      true,
    );
    const after = await submitter.submit({ type: "job" });
    await waitFor(() => done.has(after), 2_000, "a task submitted after the reconnect", 1);
  });

  it("keeps polling while PostgreSQL refuses the LISTEN connection, and recovers", async () => {
    const lines: LogLine[] = [];
    const s = store({ logger: capturingLogger(lines), fallbackPollMs: 30, reconnectMaxMs: 200 });
    const worker = engine("stubborn", s, { pollMs: 60_000 });
    const done = new Set<string>();
    worker.register("job2", (task) => void done.add(task.id));
    await worker.start();
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN", 1);
    const submitter = engine("stubborn-submitter", store());
    // Kill it repeatedly for a while: every reconnect is cut again.
    const until = Date.now() + 600;
    let kills = 0;
    const ids: string[] = [];
    while (Date.now() < until) {
      const rows = await pgQuery<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
        [s.listenApplicationName],
      );
      kills += rows.length;
      ids.push(await submitter.submit({ type: "job2" }));
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(kills).toBeGreaterThan(1);
    await waitFor(
      () => ids.every((id) => done.has(id)),
      5_000,
      "every task of the flapping period",
      1,
    );
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN to come back", 1);
  });
  it("prefetches retry-policy tasks into claimed and runs them all once", async () => {
    const e = engine("prefetcher", store(), { concurrency: 2, prefetch: 3 });
    const release: (() => void)[] = [];
    const runs = new Map<string, number>();
    e.register(
      "idem",
      (task) =>
        new Promise<void>((r) => {
          runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
          release.push(r);
        }),
      { crashPolicy: "retry" },
    );
    const ids = await e.submitMany(
      Array.from({ length: 8 }, (_, i) => ({ type: "idem", input: i })),
    );
    await e.start();
    const count = async (status: "claimed" | "running" | "pending") =>
      e.count({ type: "idem", status });
    const deadline = Date.now() + 5_000;
    while ((await count("claimed")) !== 3 && Date.now() < deadline) await sleepMs(5);
    expect(await count("claimed")).toBe(3);
    expect(await count("running")).toBe(2);
    expect(await count("pending")).toBe(3);
    while (runs.size < 8 || release.length > 0) {
      release.shift()?.();
      await sleepMs(5);
    }
    const done = await Promise.all(ids.map((id) => e.wait(id, { timeoutMs: 5_000 })));
    expect(done.every((t) => t.status === "completed" && t.attempt === 1)).toBe(true);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it("logs connection trouble through the engine's logger when the store has none", async () => {
    const lines: LogLine[] = [];
    const s = store({ fallbackPollMs: 50, reconnectMaxMs: 400 });
    const worker = engine("engine-logger", s, { pollMs: 60_000, logger: capturingLogger(lines) });
    worker.register("job3", () => {});
    await worker.start();
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN", 1);
    await pgQuery(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [s.listenApplicationName],
    );
    await waitFor(
      () => lines.some((l) => l.level === "warn" && /LISTEN connection lost/.test(l.msg)),
      5_000,
      "the drop to be logged through the engine's logger",
      1,
    );
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN to come back", 1);
  });

  it("keeps a store's own logger over the engine's", async () => {
    const own: LogLine[] = [];
    const engines: LogLine[] = [];
    const s = store({ logger: capturingLogger(own), fallbackPollMs: 50, reconnectMaxMs: 400 });
    const worker = engine("own-logger", s, { pollMs: 60_000, logger: capturingLogger(engines) });
    worker.register("job4", () => {});
    await worker.start();
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN", 1);
    await pgQuery(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [s.listenApplicationName],
    );
    await waitFor(
      () => own.some((l) => l.level === "warn" && /LISTEN connection lost/.test(l.msg)),
      5_000,
      "the drop to be logged through the store's logger",
      1,
    );
    expect(engines.some((l) => /LISTEN/.test(l.msg))).toBe(false);
    await waitFor(() => s.listenStatus === "listening", 5_000, "LISTEN to come back", 1);
  });
});
