import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEngine, postgres, type Engine, type LoomEvent } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, testSchema, waitFor } from "../support/pg.js";

const available = await pgAvailable();
const schema = testSchema("relay");
const engines: Engine[] = [];
const clients: pg.Client[] = [];

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close({ timeoutMs: 5_000 });
  for (const c of clients.splice(0)) await c.end();
});
afterAll(async () => {
  if (available) await dropSchema(schema);
});

function engine(name: string): Engine {
  const e = createEngine({
    name,
    store: postgres(PG_URL, { schema, poolSize: 3 }),
    retention: false,
  });
  engines.push(e);
  return e;
}

/** Every payload sent on the relay's channel, seen from a plain connection. */
async function tap(): Promise<string[]> {
  const client = new pg.Client(PG_URL);
  clients.push(client);
  await client.connect();
  const seen: string[] = [];
  client.on("notification", (m) => {
    if (m.channel === `loom:${schema}:events`) seen.push(m.payload ?? "");
  });
  await client.query(`LISTEN "loom:${schema}:events"`);
  return seen;
}

describe.runIf(available)("events across processes on PostgreSQL", () => {
  it("a subscriber sees the lifecycle of a task run by another engine", async () => {
    const watcher = engine("watcher");
    const worker = engine("worker");
    worker.register("job", async (_t, ctx) => {
      await ctx.progress(50, "half");
      return "done";
    });
    const seen: LoomEvent[] = [];
    watcher.events.subscribe((e) => void seen.push(e), { taskType: "job" });
    await watcher.count(); // migrated, listening
    await new Promise((r) => setTimeout(r, 1_100)); // the worker notices the listener within a second
    await worker.start();
    const id = await worker.submit({ type: "job", project: "p" });
    await waitFor(() => seen.some((e) => e.type === "task.completed"), 5_000, "task.completed");
    expect(seen.map((e) => e.type)).toEqual([
      "task.created",
      "task.claimed",
      "task.running",
      "task.progress",
      "task.completed",
    ]);
    expect(seen[3]).toMatchObject({ taskId: id, progress: 50, note: "half", project: "p" });
    expect(seen[0]!.at).toBeInstanceOf(Date);
  });

  it("delivers each task's events in the order they happened, under load", async () => {
    // Events are flushed in batches as they happen; two batches in flight at once on two pooled
    // connections could commit (and so arrive) out of order.
    const watcher = engine("watcher-order");
    const worker = createEngine({
      name: "worker-order",
      store: postgres(PG_URL, { schema, poolSize: 6 }),
      retention: false,
      concurrency: 20,
    });
    engines.push(worker);
    worker.register("step", async (_t, ctx) => {
      await ctx.progress(50);
      return 1;
    });
    const seen = new Map<string, string[]>();
    watcher.events.subscribe(
      (e) => void (e.taskId && seen.set(e.taskId, [...(seen.get(e.taskId) ?? []), e.type])),
      { taskType: "step" },
    );
    await watcher.count();
    await new Promise((r) => setTimeout(r, 1_100)); // the worker notices the listener
    await worker.start();
    const total = 300;
    const ids = await worker.submitMany(Array.from({ length: total }, () => ({ type: "step" })));
    const done = () => ids.every((id) => seen.get(id)?.includes("task.completed"));
    await waitFor(() => done() && [...seen.values()].every((t) => t.length >= 5), 20_000, "all");
    const lifecycle = ["task.created", "task.claimed", "task.running", "task.progress"];
    for (const id of ids) expect(seen.get(id)).toEqual([...lifecycle, "task.completed"]);
  });

  it("sends nothing while no other process listens", async () => {
    const payloads = await tap();
    const lonely = engine("lonely");
    lonely.register("job", () => "ok");
    const local: string[] = [];
    lonely.events.subscribe((e) => void local.push(e.type));
    await lonely.start();
    await new Promise((r) => setTimeout(r, 1_100));
    await lonely.wait(await lonely.submit({ type: "job" }), { timeoutMs: 5_000 });
    expect(local).toContain("task.completed");
    await new Promise((r) => setTimeout(r, 100));
    expect(payloads).toEqual([]);
  });

  it("batches many events into few notifications, each under the payload limit", async () => {
    const payloads = await tap();
    const watcher = engine("watcher-2");
    const worker = engine("worker-2");
    worker.register("bulk", () => "ok");
    let completed = 0;
    watcher.events.subscribe((e) => void (e.type === "task.completed" && completed++));
    await watcher.count();
    await new Promise((r) => setTimeout(r, 1_100));
    await worker.start();
    await worker.submitMany(Array.from({ length: 300 }, () => ({ type: "bulk" })));
    await waitFor(() => completed === 300, 10_000, "300 completions relayed");
    expect(payloads.length).toBeGreaterThan(0);
    expect(payloads.length).toBeLessThan(300 * 4);
    expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(8_000);
  });
});
