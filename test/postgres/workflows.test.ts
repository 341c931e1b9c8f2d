import { afterAll, describe } from "vitest";
import { postgres } from "../../src/index.js";
import { createTestEngine } from "../../src/testing/index.js";
import { workflowSuite } from "../workflow/suite.js";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";

const available = await pgAvailable();
const schema = testSchema("workflows");
let n = 0;

afterAll(async () => {
  if (!available) return;
  for (let i = 0; i < n; i++) await dropSchema(`${schema}_${i}`);
});

describe.skipIf(!available)("workflows on PostgreSQL", () => {
  // One schema per engine: each test starts from empty tables, like in-memory SQLite.
  workflowSuite((opts) => {
    const t = createTestEngine({
      ...opts,
      store: postgres(PG_URL, { schema: `${schema}_${n++}`, poolSize: 4 }),
    });
    // drain() stops after a quiet spell; a replay's round trips to PostgreSQL on a loaded
    // machine can be quieter than the in-memory default of 20 ms.
    const drain = t.drain;
    t.drain = (quietMs = 300) => drain(quietMs);
    return t;
  });
});
