import { afterEach, describe, expect, it } from "vitest";
import {
  fanOut,
  FlowNotFoundError,
  InvalidTransitionError,
  pipeline,
  ValidationError,
} from "../../src/index.js";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";

let engine: TestEngine;
afterEach(async () => {
  await engine?.close();
});

function setup(): TestEngine {
  engine = createTestEngine();
  const order: string[] = [];
  engine.register("step", (task: { input: { name: string } }) => {
    order.push(task.input.name);
    return { ran: task.input.name };
  });
  engine.register(
    "boom",
    () => {
      throw new Error("boom");
    },
    { maxRetries: 0 },
  );
  (engine as unknown as { order: string[] }).order = order;
  return engine;
}
const orderOf = (e: TestEngine) => (e as unknown as { order: string[] }).order;

describe("engine.flow", () => {
  it("inserts a DAG, runs it in dependency order, and completes", async () => {
    const e = setup();
    const flow = await e.flow({
      name: "etl",
      tasks: [
        { key: "load", type: "step", input: { name: "load" }, dependsOn: ["a", "b"] },
        { key: "a", type: "step", input: { name: "a" } },
        { key: "b", type: "step", input: { name: "b" }, dependsOn: ["a"], priority: 2 },
      ],
    });
    expect(flow).toMatchObject({
      name: "etl",
      status: "running",
      tenant: "default",
      completedAt: null,
    });
    expect(flow.tasks.map((t) => [t.key, t.status, t.dependsOn])).toEqual([
      ["load", "pending", ["a", "b"]],
      ["a", "pending", []],
      ["b", "pending", ["a"]],
    ]);
    const load = await e.get(flow.tasks[0]!.taskId);
    const ids = Object.fromEntries(flow.tasks.map((t) => [t.key, t.taskId]));
    expect(load.dependsOn.sort()).toEqual([ids.a, ids.b].sort());
    expect(load.labels).toMatchObject({ "loom.flow": flow.id, "loom.flowKey": "load" });
    expect((await e.get(ids.b!)).priority).toBe(2);
    expect((await e.flows.ofTask(ids.b!))?.id).toBe(flow.id);
    expect(await e.flows.ofTask("nope")).toBeNull();

    await e.drain();
    expect(orderOf(e)).toEqual(["a", "b", "load"]);
    const done = await e.flows.get(flow.id);
    expect(done.status).toBe("completed");
    expect(done.completedAt).toBeInstanceOf(Date);
    expect(done.tasks.every((t) => t.status === "completed")).toBe(true);
  });

  it("a failed task fails the flow and cancels what depended on it, not the rest", async () => {
    const e = setup();
    const flow = await e.flow({
      name: "f",
      tasks: [
        { key: "bad", type: "boom" },
        { key: "after", type: "step", input: { name: "after" }, dependsOn: ["bad"] },
        { key: "later", type: "step", input: { name: "later" }, dependsOn: ["after"] },
        { key: "side", type: "step", input: { name: "side" } },
      ],
    });
    await e.drain();
    const f = await e.flows.get(flow.id);
    expect(f.status).toBe("failed");
    expect(Object.fromEntries(f.tasks.map((t) => [t.key, t.status]))).toEqual({
      bad: "failed",
      after: "cancelled",
      later: "cancelled",
      side: "completed",
    });
    expect(orderOf(e)).toEqual(["side"]);
    await expect(e.flows.cancel(flow.id)).rejects.toBeInstanceOf(InvalidTransitionError);
  });

  it("cancel cancels the open tasks and the flow reads cancelled", async () => {
    const e = setup();
    const flow = await e.flow(
      pipeline("p", [
        { type: "step", input: { name: "x" }, runAt: Date.UTC(2031, 0, 1) },
        { type: "boom" },
      ]),
    );
    const cancelled = await e.flows.cancel(flow.id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.completedAt).toBeInstanceOf(Date);
    expect(cancelled.tasks.map((t) => t.status)).toEqual(["cancelled", "cancelled"]);
    expect((await e.get(flow.tasks[0]!.taskId)).error).toContain(flow.id);
  });

  it("rejects bad definitions with a ValidationError naming the key, persisting nothing", async () => {
    const e = setup();
    const bad = async (tasks: unknown[], field: RegExp) => {
      const err = await e.flow({ name: "x", tasks } as never).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).message).toMatch(field);
    };
    await bad(
      [
        { key: "a", type: "step" },
        { key: "a", type: "step" },
      ],
      /tasks\[1\]\.key: duplicate key "a"/,
    );
    await bad([{ key: "a", type: "step", dependsOn: ["zz"] }], /unknown key "zz"/);
    await bad(
      [
        { key: "a", type: "step", dependsOn: ["c"] },
        { key: "b", type: "step", dependsOn: ["a"] },
        { key: "c", type: "step", dependsOn: ["b"] },
      ],
      /cycle: a → c → b → a/,
    );
    await bad([{ key: "a", type: "step", dependsOn: ["a"] }], /cycle: a → a/);
    await bad(
      [
        { key: "a", type: "step" },
        { key: "b", type: "loom.x" },
      ],
      /tasks\[1\]\.type/,
    );
    await bad(
      [
        { key: "a", type: "step" },
        { key: "b", type: "step", priority: 9 },
      ],
      /tasks\[1\]\.priority/,
    );
    await bad([{ key: "a", type: "step", tenant: "t" }], /tasks\[0\]\.tenant/);
    await bad([], /tasks/);
    expect(await e.count()).toBe(0);
    expect((await e.flows.list()).items).toEqual([]);
  });

  it("pipeline and fanOut build the expected edges", async () => {
    expect(pipeline("p", [{ type: "a" }, { type: "b", key: "bee" }, { type: "c" }]).tasks).toEqual([
      { type: "a", key: "a" },
      { type: "b", key: "bee", dependsOn: ["a"] },
      { type: "c", key: "c", dependsOn: ["bee"] },
    ]);
    const f = fanOut(
      "f",
      {
        tasks: [
          { type: "x", key: "x1" },
          { type: "x", key: "x2" },
        ],
        then: { type: "join" },
      },
      { project: "p" },
    );
    expect(f).toEqual({
      name: "f",
      project: "p",
      tasks: [
        { type: "x", key: "x1" },
        { type: "x", key: "x2" },
        { type: "join", key: "join", dependsOn: ["x1", "x2"] },
      ],
    });
    const e = setup();
    const flow = await e.flow(
      fanOut("f", {
        tasks: [
          { type: "step", key: "s1", input: { name: "s1" } },
          { type: "step", key: "s2", input: { name: "s2" } },
        ],
        then: { type: "step", key: "join", input: { name: "join" } },
      }),
    );
    await e.drain();
    expect(orderOf(e).at(-1)).toBe("join");
    expect((await e.flows.get(flow.id)).status).toBe("completed");
  });

  it("lists newest first, filters by status and tenant, and pages", async () => {
    const e = setup();
    const a = await e.flow({
      name: "a",
      tasks: [{ key: "k", type: "step", input: { name: "a" } }],
    });
    await e.drain();
    const b = await e.flow({ name: "b", tasks: [{ key: "k", type: "boom" }] });
    await e.drain();
    const c = await e.flow({
      name: "c",
      tenant: "t2",
      tasks: [{ key: "k", type: "step", runAt: Date.UTC(2031, 0, 1) }],
    });
    expect((await e.flows.list()).items.map((f) => f.name)).toEqual(["c", "b", "a"]);
    expect((await e.flows.list({ status: "completed" })).items.map((f) => f.id)).toEqual([a.id]);
    expect((await e.flows.list({ status: "failed" })).items.map((f) => f.id)).toEqual([b.id]);
    expect((await e.flows.list({ status: "running" })).items.map((f) => f.id)).toEqual([c.id]);
    expect((await e.flows.list({ tenant: "t2" })).items.map((f) => f.id)).toEqual([c.id]);
    const p1 = await e.flows.list({ limit: 2 });
    expect(p1.items.map((f) => f.name)).toEqual(["c", "b"]);
    const p2 = await e.flows.list({ limit: 2, cursor: p1.nextCursor! });
    expect(p2.items.map((f) => f.name)).toEqual(["a"]);
    expect(p2.nextCursor).toBeNull();
    await expect(e.flows.get("missing")).rejects.toBeInstanceOf(FlowNotFoundError);
    await expect(e.flows.list({ status: "bogus" as never })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});
