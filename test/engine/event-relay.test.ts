import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { LoomEvent } from "../../src/index.js";
import { SqliteStore } from "../../src/index.js";
import { engineFactory, sleep, tempDir, until } from "../support/sqlite.js";

const tmp = tempDir("loom-relay-");
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

const relayedRows = (engine: { store: unknown }) =>
  (engine.store as SqliteStore).db.prepare("SELECT count(*) AS n FROM loom_events").get() as {
    n: number;
  };

describe("events across processes on one SQLite file", () => {
  it("a subscriber sees the lifecycle of a task run by another engine", async () => {
    const db = tmp.file();
    const watcher = engines.make({ path: db, name: "watcher" });
    const worker = engines.make({ path: db, name: "worker" });
    worker.register("job", async (_t, ctx) => {
      await ctx.progress(50);
      return "done";
    });
    const seen: LoomEvent[] = [];
    watcher.events.subscribe((e) => seen.push(e), { taskType: "job" });
    await watcher.count(); // migrated, listening
    await sleep(1_100); // the worker notices the listener within a second
    await worker.start();
    const id = await worker.submit({ type: "job", project: "p" });
    await until(() => seen.some((e) => e.type === "task.completed"), 5_000);
    expect(seen.map((e) => e.type)).toEqual([
      "task.created",
      "task.claimed",
      "task.running",
      "task.progress",
      "task.completed",
    ]);
    expect(seen[3]).toMatchObject({ taskId: id, progress: 50, project: "p" });
    expect(seen[0]!.at).toBeInstanceOf(Date);
  });

  it("writes nothing to the relay while no other process listens", async () => {
    const db = tmp.file();
    const lonely = engines.make({ path: db, name: "lonely" });
    lonely.register("job", () => "ok");
    const local: string[] = [];
    lonely.events.subscribe((e) => local.push(e.type));
    await lonely.start();
    await lonely.wait(await lonely.submit({ type: "job" }), { timeoutMs: 5_000 });
    expect(local).toContain("task.completed");
    expect(relayedRows(lonely).n).toBe(0);
  });
});
