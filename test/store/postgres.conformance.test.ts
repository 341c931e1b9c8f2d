import pg from "pg";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runStoreConformance } from "../../src/store/conformance/index.js";
import type { Store } from "../../src/store/store.js";
import { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { dropSchema, PG_URL, pgAvailable, pgQuery, testSchema } from "../support/pg.js";

const available = await pgAvailable();
// One schema for this file; every test starts from empty tables in it.
const schema = testSchema("conformance");

function asPostgres(store: Store): PostgresStore {
  if (!(store instanceof PostgresStore)) throw new Error("expected a PostgresStore");
  return store;
}

async function open(): Promise<PostgresStore> {
  const store = new PostgresStore(PG_URL, { schema, poolSize: 4 });
  await store.migrate();
  return store;
}

if (!available) {
  describe.skip("Store conformance: postgres (PostgreSQL unreachable)", () => {
    it("needs PostgreSQL", () => {});
  });
} else {
  beforeAll(async () => {
    const store = await open();
    await store.close();
  });
  afterAll(() => dropSchema(schema));

  runStoreConformance("postgres", {
    async create() {
      await pgQuery(`TRUNCATE "${schema}".tasks, "${schema}".task_deps, "${schema}".task_types`);
      await pgQuery(`TRUNCATE "${schema}".flows, "${schema}".flow_tasks, "${schema}".schedules`);
      await pgQuery(`TRUNCATE "${schema}".lanes, "${schema}".lane_callers`);
      await pgQuery(
        `TRUNCATE "${schema}".tasks, "${schema}".task_deps, "${schema}".task_types, "${schema}".workflows, "${schema}".workflow_history, "${schema}".workflow_signals`,
      );
      return open();
    },
    async peer() {
      return open();
    },
    async destroy(store) {
      await store.close();
    },
    async transaction(store, outcome, body) {
      // The caller's own connection and BEGIN; the store only adds a savepoint inside it.
      const client = new pg.Client(PG_URL);
      await client.connect();
      try {
        await client.query("BEGIN");
        await body(client);
        await client.query(outcome === "commit" ? "COMMIT" : "ROLLBACK");
      } finally {
        await client.end();
      }
      void asPostgres(store);
    },
  });
}
