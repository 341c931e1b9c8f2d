import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runStoreConformance } from "../../src/store/conformance/index.js";
import type { Store } from "../../src/store/store.js";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";

async function open(path: string): Promise<SqliteStore> {
  const store = new SqliteStore(path);
  await store.migrate();
  return store;
}

function asSqlite(store: Store): SqliteStore {
  if (!(store instanceof SqliteStore)) throw new Error("expected a SqliteStore");
  return store;
}

const ROLLBACK = new Error("roll back the test transaction");

runStoreConformance("sqlite", {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), "loom-conformance-"));
    return open(join(dir, "loom.db"));
  },
  async peer(store) {
    return open(asSqlite(store).path);
  },
  async destroy(store) {
    const path = asSqlite(store).path;
    await store.close();
    rmSync(dirname(path), { recursive: true, force: true });
  },
  async transaction(store, outcome, body) {
    // better-sqlite3 transactions are synchronous: the body's store calls run before it returns.
    const db = asSqlite(store).db;
    let pending: Promise<unknown> = Promise.resolve();
    try {
      db.transaction(() => {
        pending = body(db);
        if (outcome === "rollback") throw ROLLBACK;
      })();
    } catch (err) {
      if (err !== ROLLBACK) throw err;
    }
    await pending;
  },
});
