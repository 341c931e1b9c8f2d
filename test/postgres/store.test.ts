import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  createEngine,
  postgres,
  PostgresStore,
  StoreError,
  ValidationError,
} from "../../src/index.js";
import { newTask, T0 } from "../../src/store/conformance/index.js";
import { loadMigrations } from "../../src/store/migrations.js";
import { dropSchema, PG_URL, pgAvailable, pgQuery, testSchema, waitFor } from "../support/pg.js";

const available = await pgAvailable();
const schema = testSchema("store");
const stores: PostgresStore[] = [];

function open(opts: Parameters<typeof postgres>[1] = {}): PostgresStore {
  const store = postgres(PG_URL, { schema, poolSize: 3, ...opts });
  stores.push(store);
  return store;
}

afterAll(async () => {
  for (const s of stores) await s.close();
  if (available) await dropSchema(schema);
});

describe.runIf(available)("PostgreSQL store", () => {
  describe("options", () => {
    it("validates the schema name as a plain identifier", () => {
      expect(() => postgres(PG_URL, { schema: 'x"; DROP TABLE y; --' })).toThrow(ValidationError);
      expect(() => postgres(PG_URL, { schema: "1abc" })).toThrow(ValidationError);
      expect(() => postgres(PG_URL, { schema: "" })).toThrow(ValidationError);
      expect(postgres(PG_URL).schema).toBe("loom");
    });

    it("rejects what is neither a postgres URL nor a pool, and a bad pool size", () => {
      expect(() => postgres("mysql://x")).toThrow(ValidationError);
      expect(() => postgres({} as pg.Pool)).toThrow(ValidationError);
      expect(() => postgres(PG_URL, { poolSize: 0 })).toThrow(ValidationError);
    });

    it("reports an unreachable server as a StoreError naming where, without credentials", async () => {
      const store = postgres("postgres://someone:secret@127.0.0.1:1/nowhere", {
        connection: { connectionTimeoutMillis: 2000 },
      });
      const err = await store.migrate().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(/cannot reach PostgreSQL at 127\.0\.0\.1:1/);
      expect((err as Error).message).not.toContain("secret");
      await store.close();
    });

    it("needs migrate() before use, and refuses work once closed", async () => {
      const store = open();
      await expect(store.getTask("x")).rejects.toThrow(/not migrated/);
      await store.migrate();
      await store.close();
      await expect(store.getTask("x")).rejects.toThrow(/closed/);
    });
  });

  describe("migrations", () => {
    it("many stores migrating one fresh schema at once apply each migration once", async () => {
      const fresh = testSchema("store_race");
      const racers = Array.from({ length: 6 }, () =>
        postgres(PG_URL, { schema: fresh, poolSize: 1 }),
      );
      try {
        await Promise.all(racers.map((s) => s.migrate()));
        const rows = await pgQuery<{ version: number }>(
          `SELECT version FROM "${fresh}".migrations ORDER BY version`,
        );
        const shipped = loadMigrations(
          new URL("../../src/stores/postgres/migrations/", import.meta.url),
        ).map((m) => m.version);
        expect(rows.map((r) => r.version)).toEqual(shipped);
        await racers[0]!.insertTasks([newTask()]);
        expect(await racers[5]!.countTasks({})).toBe(1);
      } finally {
        for (const s of racers) await s.close();
        await dropSchema(fresh);
      }
    });

    it("keeps everything in its own schema", async () => {
      const store = open();
      await store.migrate();
      const tables = await pgQuery<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
        [schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual([
        "access_tokens",
        "event_listeners",
        "flow_tasks",
        "flows",
        "lane_callers",
        "lanes",
        "migrations",
        "schedules",
        "task_deps",
        "task_types",
        "tasks",
        "workflow_history",
        "workflow_signals",
        "workflows",
      ]);
    });
  });

  describe("a pool of the caller's", () => {
    it("is used for queries and left open by close()", async () => {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
      try {
        const store = postgres(pool, { schema });
        await store.migrate();
        const t = newTask();
        await store.insertTasks([t]);
        expect((await store.getTask(t.id))?.status).toBe("pending");
        await store.close();
        expect(pool.ended).toBe(false);
        expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
      } finally {
        await pool.end();
      }
    });

    it("also serves LISTEN, on a dedicated connection built from the pool's settings", async () => {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
      const store = postgres(pool, { schema });
      const other = open();
      try {
        await store.migrate();
        await other.migrate();
        let calls = 0;
        store.onExternalChange(() => calls++);
        await waitFor(() => store.listenStatus === "listening", 2000, "listening", 2);
        expect(pool.totalCount).toBeLessThanOrEqual(2);
        await other.insertTasks([newTask()]);
        await waitFor(() => calls > 0, 2000, "a wake-up", 2);
      } finally {
        await store.close();
        await pool.end();
      }
    });
  });

  describe("transactional enqueue", () => {
    it("commits with the caller's transaction, or rolls back with it", async () => {
      const store = open();
      await store.migrate();
      const client = new pg.Client(PG_URL);
      await client.connect();
      try {
        const kept = newTask({ type: "tx" });
        const dropped = newTask({ type: "tx" });

        await client.query("BEGIN");
        await client.query("CREATE TEMP TABLE orders (id int) ON COMMIT DROP");
        await client.query("INSERT INTO orders VALUES (1)");
        expect((await store.insertTasks([kept], client))[0]).toMatchObject({ created: true });
        // Not visible to anyone else before the caller commits.
        expect(await store.getTask(kept.id)).toBeNull();
        await client.query("COMMIT");
        expect((await store.getTask(kept.id))?.status).toBe("pending");

        await client.query("BEGIN");
        await store.insertTasks([dropped], client);
        await client.query("ROLLBACK");
        expect(await store.getTask(dropped.id)).toBeNull();
      } finally {
        await client.end();
      }
    });

    it("a rejected batch leaves the caller's transaction usable (savepoint)", async () => {
      const store = open();
      await store.migrate();
      const client = new pg.Client(PG_URL);
      await client.connect();
      try {
        const ok = newTask();
        await client.query("BEGIN");
        await expect(
          store.insertTasks([ok, newTask({ dependsOn: ["no-such-task"] })], client),
        ).rejects.toBeInstanceOf(ValidationError);
        // The transaction is still alive and the batch left nothing in it.
        expect((await client.query("SELECT 1 AS one")).rows[0]).toEqual({ one: 1 });
        await client.query("COMMIT");
        expect(await store.getTask(ok.id)).toBeNull();
      } finally {
        await client.end();
      }
    });

    it("rejects a handle that is not a client", async () => {
      const store = open();
      await store.migrate();
      await expect(store.insertTasks([newTask()], { nope: true })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(store.insertTasks([newTask()], store.pool)).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it("engine.submit({ tx }) enqueues inside the caller's transaction", async () => {
      const engine = createEngine({ name: "tx-engine", store: open(), retention: false });
      const client = new pg.Client(PG_URL);
      await client.connect();
      try {
        await client.query("BEGIN");
        const rolledBack = await engine.submit({ type: "mail", input: { n: 1 } }, { tx: client });
        await client.query("ROLLBACK");
        await client.query("BEGIN");
        const committed = await engine.submit({ type: "mail", input: { n: 2 } }, { tx: client });
        await client.query("COMMIT");
        await expect(engine.get(rolledBack)).rejects.toThrow(/not found/);
        expect(await engine.get(committed)).toMatchObject({ status: "pending", input: { n: 2 } });
      } finally {
        await client.end();
        await engine.close();
      }
    });

    it("a task committed in the caller's transaction wakes this process's own engine", async () => {
      const store = open();
      const engine = createEngine({ name: "tx-wake", store, pollMs: 60_000, retention: false });
      const done: string[] = [];
      engine.register("wake", (task) => void done.push(task.id));
      await engine.start();
      await waitFor(() => store.listenStatus === "listening", 2000, "listening", 2);
      const client = new pg.Client(PG_URL);
      await client.connect();
      try {
        await client.query("BEGIN");
        const id = await engine.submit({ type: "wake" }, { tx: client });
        await new Promise((r) => setTimeout(r, 50));
        expect(done).toEqual([]);
        await client.query("COMMIT");
        await waitFor(() => done.includes(id), 2000, "the task to run", 2);
      } finally {
        await client.end();
        await engine.close();
      }
    });
  });

  describe("times", () => {
    it("takes fractional epoch milliseconds (any clock) by rounding them", async () => {
      const store = open();
      await store.migrate();
      const t = newTask({ type: "frac", runAt: T0 + 0.4, createdAt: T0 - 0.6, leaseMs: 1_000.5 });
      await store.insertTasks([t]);
      const [c] = (
        await store.exchange({
          now: T0 + 0.7,
          settle: [],
          claim: { engineName: "frac", types: [t.type], limit: 1 },
        })
      ).claimed;
      expect(c?.id).toBe(t.id);
      const out = await store.exchange({
        now: T0 + 1.2,
        settle: [
          { kind: "fail", id: t.id, attemptId: c!.attemptId, error: "e", retryAt: T0 + 9.9 },
        ],
        claim: null,
      });
      expect(out.settled[0]).toMatchObject({ ok: true, status: "retrying" });
      expect((await store.getTask(t.id))?.runAt.getTime()).toBe(T0 + 10);
      expect(await store.nextRunAt([t.type], T0 + 2.5)).toBe(T0 + 10);
      expect(await store.promoteDue(T0 + 10.2)).toBe(1);
    });
  });

  describe("exchange", () => {
    it("claims across many connections without doubles while tasks are being inserted", async () => {
      const writer = open({ poolSize: 2 });
      const workers = Array.from({ length: 4 }, () => open({ poolSize: 1 }));
      await writer.migrate();
      for (const w of workers) await w.migrate();
      const type = `race-${Date.now()}`;
      const total = 400;
      const seen = new Map<string, number>();
      let inserted = 0;
      const insertAll = (async () => {
        while (inserted < total) {
          const batch = Array.from({ length: 20 }, () => newTask({ type }));
          await writer.insertTasks(batch);
          inserted += batch.length;
        }
      })();
      const work = workers.map(async (w, i) => {
        let held: { id: string; attemptId: string }[] = [];
        for (let idle = 0; idle < 50;) {
          const out = await w.exchange({
            now: T0,
            settle: held.map((h) => ({ kind: "complete", ...h, result: null })),
            claim: { engineName: `w${i}`, types: [type], limit: 7 },
          });
          expect(out.settled.every((s) => s.ok)).toBe(true);
          for (const c of out.claimed) seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
          held = out.claimed;
          if (held.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 2));
          } else idle = 0;
        }
      });
      await Promise.all([insertAll, ...work]);
      expect(seen.size).toBe(total);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      expect(await writer.countTasks({ type, status: "completed" })).toBe(total);
    });
  });
});
