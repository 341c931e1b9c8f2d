import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ScheduleNotFoundError, ValidationError } from "../../src/index.js";
import { createTestEngine, type TestEngine } from "../../src/testing/index.js";
import { plan } from "../../src/workflow/schedules.js";
import { compileCron } from "../../src/workflow/cron.js";

let engine: TestEngine;
afterEach(async () => {
  await engine?.close();
});

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const MIN = 60_000;

function setup(): { e: TestEngine; runs: { tick: string; input: unknown }[] } {
  engine = createTestEngine({ startAt: T0 });
  const runs: { tick: string; input: unknown }[] = [];
  engine.register("report", (task: { input: unknown; metadata?: Record<string, unknown> }) => {
    runs.push({ tick: String(task.metadata?.tick), input: task.input });
    return { ok: true };
  });
  return { e: engine, runs };
}

describe("engine.schedule", () => {
  it("declares a schedule and fires each tick once", async () => {
    const { e, runs } = setup();
    const s = await e.schedule("every-minute", {
      cron: "* * * * *",
      type: "report",
      input: { n: 1 },
    });
    expect(s).toMatchObject({
      name: "every-minute",
      cron: "* * * * *",
      timezone: "UTC",
      type: "report",
      workflow: null,
      input: { n: 1 },
      catchUp: "last",
      lastRunAt: null,
      lastTaskId: null,
    });
    expect(s.nextRunAt).toEqual(new Date(T0 + MIN));
    await e.drain();
    expect(runs).toEqual([]);
    await e.advance(MIN);
    await e.advance(MIN);
    await e.advance(30_000);
    expect(runs.map((r) => r.tick)).toEqual([
      new Date(T0 + MIN).toISOString(),
      new Date(T0 + 2 * MIN).toISOString(),
    ]);
    expect(runs[0]!.input).toEqual({ n: 1 });
    const after = await e.schedules.get("every-minute");
    expect(after.lastRunAt).toEqual(new Date(T0 + 2 * MIN));
    expect(after.nextRunAt).toEqual(new Date(T0 + 3 * MIN));
    const task = await e.get(after.lastTaskId!);
    expect(task.idempotencyKey).toBe(
      `loom.schedule:every-minute:${new Date(T0 + 2 * MIN).toISOString()}`,
    );
    expect(task.labels).toEqual({ "loom.schedule": "every-minute" });
    // A second pass at the same time fires nothing more.
    expect(await e.schedules.fireDue()).toBe(0);
  });

  it("re-declaring keeps the next tick; changing the cron recomputes it (last writer wins)", async () => {
    const { e } = setup();
    await e.schedule("s", { cron: "0 * * * *", type: "report" });
    e.clock.advance(10 * MIN);
    const again = await e.schedule("s", { cron: "0 * * * *", type: "report", input: 2 });
    expect(again.nextRunAt).toEqual(new Date(T0 + 60 * MIN));
    expect(again.input).toBe(2);
    const changed = await e.schedule("s", { cron: "*/15 * * * *", type: "report", catchUp: "all" });
    expect(changed.nextRunAt).toEqual(new Date(T0 + 15 * MIN));
    expect(changed.catchUp).toBe("all");
    expect((await e.schedules.list()).map((x) => x.name)).toEqual(["s"]);
    expect(await e.schedules.remove("s")).toBe(true);
    expect(await e.schedules.remove("s")).toBe(false);
    await expect(e.schedules.get("s")).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it("catchUp decides what happens to ticks missed while nothing ran", async () => {
    const { e, runs } = setup();
    await e.schedule("last", { cron: "* * * * *", type: "report", input: "last" });
    await e.schedule("all", { cron: "* * * * *", type: "report", input: "all", catchUp: "all" });
    await e.schedule("skip", { cron: "* * * * *", type: "report", input: "skip", catchUp: "skip" });
    // Ten minutes pass with no maintenance (the engine was down).
    e.clock.set(T0 + 10 * MIN + 90_000);
    await e.schedules.fireDue();
    await e.drain();
    const by = (input: string) => runs.filter((r) => r.input === input).map((r) => r.tick);
    expect(by("last")).toEqual([new Date(T0 + 11 * MIN).toISOString()]);
    expect(by("all")).toHaveLength(11);
    expect(by("all")[0]).toBe(new Date(T0 + MIN).toISOString());
    // The latest tick is only 30 s late: not missed, so even "skip" fires it; ticks 1–10 are gone.
    expect(by("skip")).toEqual([new Date(T0 + 11 * MIN).toISOString()]);
    for (const name of ["last", "all", "skip"]) {
      expect((await e.schedules.get(name)).nextRunAt).toEqual(new Date(T0 + 12 * MIN));
    }
  });

  it("bounds catchUp all to the most recent ticks", () => {
    const cron = compileCron("* * * * * *", "UTC");
    const out = plan(cron, "all", T0 + 1000, T0 + 500_000);
    expect(out.fire).toHaveLength(100);
    expect(out.fire.at(-1)).toBe(T0 + 500_000);
    expect(out.next).toBe(T0 + 501_000);
    expect(plan(cron, "skip", T0 + 1000, T0 + 30_500).fire).toEqual([T0 + 30_000]);
    // A week down on a per-second schedule: found by search, not by walking 600 000 ticks.
    const week = 7 * 24 * 3600_000;
    const long = plan(cron, "all", T0 + 1000, T0 + week + 400);
    expect(long.fire).toHaveLength(100);
    expect(long.fire[0]).toBe(T0 + week - 99_000);
    expect(long.fire.at(-1)).toBe(T0 + week);
    expect(plan(cron, "last", T0 + 1000, T0 + week + 400)).toEqual({
      fire: [T0 + week],
      next: T0 + week + 1000,
    });
    const hourly = compileCron("0 * * * *", "UTC");
    // Two hours down: "skip" fires nothing, "last" the latest tick; both resume at the next one.
    expect(plan(hourly, "skip", T0 + 60 * MIN, T0 + 150 * MIN)).toEqual({
      fire: [],
      next: T0 + 180 * MIN,
    });
    expect(plan(hourly, "last", T0 + 60 * MIN, T0 + 150 * MIN)).toEqual({
      fire: [T0 + 120 * MIN],
      next: T0 + 180 * MIN,
    });
  });

  it("reads the pattern in its time zone, across DST", () => {
    // 09:00 in New York: 14:00 UTC in winter, 13:00 UTC after the spring change (2030-03-10).
    const cron = compileCron("0 9 * * *", "America/New_York");
    const first = cron.next(Date.UTC(2030, 2, 9, 0, 0));
    expect(new Date(first!).toISOString()).toBe("2030-03-09T14:00:00.000Z");
    expect(new Date(cron.next(first!)!).toISOString()).toBe("2030-03-10T13:00:00.000Z");
  });

  it("rejects a bad cron, time zone, target or input at declare time", async () => {
    const { e } = setup();
    e.register("typed", () => 1, { input: z.object({ n: z.number() }) });
    const bad = async (opts: object, field: string) => {
      const err = await e.schedule("x", opts as never).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
    };
    await bad({ cron: "not a cron", type: "report" }, "cron");
    await bad({ cron: "61 * * * *", type: "report" }, "cron");
    await bad({ cron: "* * * * *", timezone: "Mars/Base", type: "report" }, "timezone");
    await bad({ cron: "* * * * *" }, "type");
    await bad({ cron: "* * * * *", type: "report", workflow: "w" }, "type");
    await bad({ cron: "* * * * *", type: "loom.x" }, "type");
    await bad({ cron: "* * * * *", type: "report", catchUp: "never" }, "catchUp");
    await bad({ cron: "* * * * *", type: "typed", input: { n: "x" } }, "input");
    expect(await e.schedules.list()).toEqual([]);
  });

  it("a workflow schedule starts one run per tick, with the tick in its id", async () => {
    const { e } = setup();
    e.workflow("nightly", {
      run: async (ctx, input: { a: number }) => {
        const doubled = await ctx.step("double", () => input.a * 2);
        return { doubled };
      },
    });
    await e.schedule("wf", {
      cron: "* * * * *",
      workflow: "nightly",
      input: { a: 1 },
      tenant: "t",
    });
    await e.advance(MIN);
    await e.advance(MIN);
    await e.drain();
    const s = await e.schedules.get("wf");
    const task = await e.get(s.lastTaskId!);
    const tick = new Date(T0 + 2 * MIN).toISOString();
    expect(task).toMatchObject({
      type: "loom.schedule.workflow",
      tenant: "t",
      status: "completed",
      input: { workflow: "nightly", input: { a: 1 }, id: `wf:${tick}` },
    });
    const runs = await e.workflows.list({ name: "nightly" });
    expect(runs.items.map((r) => r.id).sort()).toEqual([
      `wf:${new Date(T0 + MIN).toISOString()}`,
      `wf:${tick}`,
    ]);
    expect(runs.items.every((r) => r.tenant === "t" && r.status === "completed")).toBe(true);
    expect(await (await e.workflows.get(`wf:${tick}`)).result()).toEqual({ doubled: 2 });
  });
});
