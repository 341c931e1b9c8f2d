import { afterEach, describe, expect, it } from "vitest";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";

let t: TestEngine;
afterEach(async () => {
  await t?.close();
});

describe("workflows basics", () => {
  it("runs steps and completes", async () => {
    t = createTestEngine();
    const ledger: string[] = [];
    const wf = t.workflow("greet", {
      run: async (ctx, input: { name: string }) => {
        const a = await ctx.step("a", () => {
          ledger.push("a");
          return `hello ${input.name}`;
        });
        const b = await ctx.step("b", () => {
          ledger.push("b");
          return a.toUpperCase();
        });
        return { a, b };
      },
    });
    const h = await wf.start({ name: "ann" });
    await t.drain();
    expect(await h.result()).toEqual({ a: "hello ann", b: "HELLO ANN" });
    expect(ledger).toEqual(["a", "b"]);
    const hist = await h.history();
    expect(hist.map((e) => e.kind)).toEqual([
      "WORKFLOW_STARTED",
      "STEP_COMPLETED",
      "STEP_COMPLETED",
      "WORKFLOW_COMPLETED",
    ]);
  });
});
