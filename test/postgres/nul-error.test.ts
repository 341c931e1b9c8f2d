import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, postgres, type Engine } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";

const up = await pgAvailable();

describe.runIf(up)("PostgreSQL: a failure message with a NUL character", () => {
  const schema = testSchema("nul-error");
  let engine: Engine;
  beforeAll(async () => {
    engine = createEngine({
      name: "nul",
      retention: false,
      pollMs: 10,
      store: postgres(PG_URL, { schema, poolSize: 2 }),
    });
    engine.register(
      "nul",
      async () => {
        throw new Error("bad \u0000 byte");
      },
      { maxRetries: 0 },
    );
    engine.register("ok", async () => 1);
    await engine.start();
  });
  afterAll(async () => {
    await engine.close({ timeoutMs: 1_000 });
    await dropSchema(schema);
  });

  it("is stored (NUL replaced) instead of failing the batch's write forever", async () => {
    const [bad, good] = await engine.submitMany([{ type: "nul" }, { type: "ok" }]);
    const failed = await engine.wait(bad!, { timeoutMs: 5_000 });
    expect(failed.status).toBe("failed");
    expect(failed.error).toBe("bad \uFFFD byte");
    expect((await engine.wait(good!, { timeoutMs: 5_000 })).status).toBe("completed");
  });
});
