import { afterEach, describe, expect, it } from "vitest";
import type { TestEngineOptions } from "../../src/testing/index.js";
import {
  ActivityFailedError,
  InvalidTransitionError,
  ValidationError,
  WaitTimeoutError,
  WorkflowExecutionError,
  WorkflowNotFoundError,
} from "../../src/core/errors.js";
import type { LoomEvent } from "../../src/core/types.js";
import type { TestEngine } from "../../src/testing/index.js";
import type { WorkflowContext } from "../../src/workflow/types.js";

/** The workflow behaviours, run against any store (test/workflow/sqlite.test.ts, test/postgres/workflows.test.ts). */
export function workflowSuite(createTestEngine: (opts?: TestEngineOptions) => TestEngine): void {
  let t: TestEngine;
  afterEach(async () => {
    await t?.close();
  });

  const schema = {
    "~standard": {
      version: 1 as const,
      vendor: "test",
      validate: (v: unknown) =>
        typeof (v as { n?: unknown })?.n === "number"
          ? { value: v as { n: number } }
          : { issues: [{ message: "n must be a number", path: ["n"] }] },
    },
  };

  describe("ctx.step", () => {
    it("records a failure once and throws the same error on replay; retries within maxRetries", async () => {
      t = createTestEngine();
      let calls = 0;
      const attempts: number[] = [];
      const wf = t.workflow("steps", {
        run: async (ctx) => {
          let caught = "";
          try {
            await ctx.step("boom", () => {
              calls++;
              const e = new Error("kaput");
              e.name = "MyError";
              throw e;
            });
          } catch (err) {
            caught = `${(err as Error).name}:${(err as Error).message}`;
          }
          const flaky = await ctx.step(
            "flaky",
            ({ attempt }) => {
              attempts.push(attempt);
              if (attempt < 3) throw new Error("not yet");
              return attempt;
            },
            { maxRetries: 2 },
          );
          await ctx.sleep("pause", 1000); // forces a replay of both steps
          return { caught, flaky };
        },
      });
      const h = await wf.start(null);
      await t.drain();
      expect((await h.status()).status).toBe("waiting");
      await t.advance(1000);
      expect(await h.result()).toEqual({ caught: "MyError:kaput", flaky: 3 });
      expect(calls).toBe(1);
      expect(attempts).toEqual([1, 2, 3]);
      expect(await t.historyKinds(h.id)).toEqual([
        "WORKFLOW_STARTED",
        "STEP_FAILED",
        "STEP_COMPLETED",
        "TIMER_STARTED",
        "TIMER_FIRED",
        "WORKFLOW_COMPLETED",
      ]);
    });

    it("an uncaught step failure fails the run; result() throws WorkflowExecutionError", async () => {
      t = createTestEngine();
      const wf = t.workflow("fails", {
        run: async (ctx) => ctx.step("x", () => Promise.reject(new Error("no"))),
      });
      const h = await wf.start(1);
      await t.drain();
      await expect(h.result()).rejects.toBeInstanceOf(WorkflowExecutionError);
      const run = await h.status();
      expect(run.status).toBe("failed");
      expect(run.error).toContain("no");
    });

    it("a step over its timeoutMs fails with its signal aborted", async () => {
      t = createTestEngine();
      let aborted = false;
      const wf = t.workflow("slow", {
        run: async (ctx) => {
          try {
            await ctx.step(
              "hang",
              ({ signal }) =>
                new Promise((_, reject) =>
                  signal.addEventListener("abort", () => {
                    aborted = true;
                    reject(new Error("aborted"));
                  }),
                ),
              { timeoutMs: 500 },
            );
            return "no";
          } catch (err) {
            return (err as Error).message;
          }
        },
      });
      const h = await wf.start(null);
      await t.drain();
      await t.advance(500);
      await t.drain();
      expect(await h.result()).toContain("timed out");
      expect(aborted).toBe(true);
    });
  });

  describe("ctx.activity", () => {
    it("runs as a task carrying workflowId and returns its result; failure is ActivityFailedError", async () => {
      t = createTestEngine();
      t.register("double", (task) => (task.input as number) * 2);
      t.register(
        "bad",
        () => {
          throw new Error("bad input");
        },
        { maxRetries: 0 },
      );
      const wf = t.workflow("acts", {
        run: async (ctx) => {
          const d = await ctx.activity<number>("double", 21);
          try {
            await ctx.activity("bad", null);
            return { d, err: null };
          } catch (err) {
            return { d, err: err instanceof ActivityFailedError ? err.code : String(err) };
          }
        },
      });
      const h = await wf.start(null);
      await t.drain();
      expect(await h.result()).toEqual({ d: 42, err: "ACTIVITY_FAILED" });
      const tasks = await t.list({ workflowId: h.id, type: "double" });
      expect(tasks.items).toHaveLength(1);
      expect(tasks.items[0]!.crashPolicy).toBe("retry");
      expect(await t.historyKinds(h.id)).toEqual([
        "WORKFLOW_STARTED",
        "ACTIVITY_SCHEDULED",
        "ACTIVITY_COMPLETED",
        "ACTIVITY_SCHEDULED",
        "ACTIVITY_FAILED",
        "WORKFLOW_COMPLETED",
      ]);
    });

    it("shows waitingFor while the activity runs", async () => {
      t = createTestEngine();
      let release!: (v: string) => void;
      t.register("slow", () => new Promise<string>((r) => (release = r)));
      const wf = t.workflow("waits", { run: (ctx) => ctx.activity("slow", null) });
      const h = await wf.start(null);
      await t.drain();
      const run = await h.status();
      expect(run.status).toBe("waiting");
      expect(run.waitingFor).toEqual({ kind: "activity", name: "slow" });
      release("done");
      await t.drain();
      expect(await h.result()).toBe("done");
    });
  });

  describe("ctx.sleep", () => {
    it("is durable: waits for the clock, holds no worker slot, and ctx.now() follows history", async () => {
      t = createTestEngine();
      const seen: number[] = [];
      const wf = t.workflow("sleeper", {
        run: async (ctx) => {
          const before = ctx.now().getTime();
          await ctx.sleep("nap", 60_000);
          const after = ctx.now().getTime();
          seen.push(after - before);
          return after - before;
        },
      });
      const h = await wf.start(null);
      await t.drain();
      const run = await h.status();
      expect(run.status).toBe("waiting");
      expect(run.waitingFor?.kind).toBe("timer");
      expect(run.waitingFor?.until?.getTime()).toBe(t.clock.now() + 60_000);
      expect(await t.count({ status: "running" })).toBe(0);
      await t.advance(30_000);
      expect((await h.status()).status).toBe("waiting");
      await t.advance(30_000);
      expect(await h.result()).toBe(60_000);
    });

    it("accepts a Date", async () => {
      t = createTestEngine();
      const wf = t.workflow("until", {
        run: async (ctx) => {
          await ctx.sleep("to", new Date(ctx.now().getTime() + 5000));
          return "woke";
        },
      });
      const h = await wf.start(null);
      await t.drain();
      await t.advance(5000);
      expect(await h.result()).toBe("woke");
    });
  });

  describe("ctx.waitForSignal", () => {
    it("keeps signals until consumed: the k-th wait takes the k-th signal", async () => {
      t = createTestEngine();
      const wf = t.workflow("sig", {
        run: async (ctx) => {
          const a = await ctx.waitForSignal<number>("add");
          const b = await ctx.waitForSignal<number>("add");
          const c = await ctx.waitForSignal<number>("add");
          return [a, b, c];
        },
      });
      const h = await wf.start(null);
      await h.signal("add", 1);
      await h.signal("add", 2);
      await t.drain();
      const run = await h.status();
      expect(run.status).toBe("waiting");
      expect(run.waitingFor).toEqual({ kind: "signal", name: "add" });
      await h.signal("add", 3);
      await t.drain();
      expect(await h.result()).toEqual([1, 2, 3]);
      await expect(h.signal("add", 4)).rejects.toBeInstanceOf(InvalidTransitionError);
    });

    it("times out with WaitTimeoutError, which wins over a late signal", async () => {
      t = createTestEngine();
      const wf = t.workflow("sigto", {
        run: async (ctx) => {
          try {
            await ctx.waitForSignal("go", { timeoutMs: 1000 });
            return "signal";
          } catch (err) {
            if (!(err instanceof WaitTimeoutError)) throw err;
          }
          await ctx.sleep("after", 1000);
          return "timeout";
        },
      });
      const h = await wf.start(null);
      await t.drain();
      await t.advance(1000);
      expect((await h.status()).waitingFor?.name).toBe("after");
      await h.signal("go", "late"); // the recorded timeout wins
      await t.drain();
      await t.advance(1000);
      expect(await h.result()).toBe("timeout");
    });
  });

  describe("ctx.child", () => {
    it("starts and awaits a child with id parent:seq that inherits tenant and project", async () => {
      t = createTestEngine();
      const child = t.workflow("child", {
        run: async (ctx, n: number) => ctx.step("sq", () => n * n),
      });
      const parent = t.workflow("parent", {
        run: async (ctx, n: number) => {
          await ctx.step("first", () => 0);
          return ctx.child(child, n);
        },
      });
      const h = await parent.start(7, { tenant: "acme", project: "p1" });
      await t.drain();
      expect(await h.result()).toBe(49);
      const c = await (await t.workflows.get(`${h.id}:2`)).status();
      expect(c).toMatchObject({
        tenant: "acme",
        project: "p1",
        parentId: h.id,
        status: "completed",
      });
      expect(await t.historyKinds(h.id)).toContain("CHILD_COMPLETED");
    });

    it("a failed child throws WorkflowExecutionError in the parent", async () => {
      t = createTestEngine();
      const child = t.workflow("badchild", {
        run: () => {
          throw new Error("child broke");
        },
      });
      const parent = t.workflow("parent2", {
        run: async (ctx) => {
          try {
            await ctx.child(child, null);
            return "ok";
          } catch (err) {
            return (err as Error).constructor.name;
          }
        },
      });
      const h = await parent.start(null);
      await t.drain();
      expect(await h.result()).toBe("WorkflowExecutionError");
    });
  });

  describe("ctx.state, now, random, log", () => {
    it("records state, replays it, and shows it on the run record; random is seeded by the run id", async () => {
      t = createTestEngine();
      const randoms: number[][] = [];
      const body = async (ctx: WorkflowContext) => {
        ctx.state.set("count", 1);
        ctx.state.update<number>("count", (c) => (c ?? 0) + 1);
        ctx.state.batch(() => {
          ctx.state.set("a", "x");
          ctx.state.set("b", "y");
        });
        const r = [ctx.random(), ctx.random()];
        randoms.push(r);
        await ctx.sleep("s", 10);
        return { count: ctx.state.get("count"), r };
      };
      const wf = t.workflow("state", { run: body });
      const h = await wf.start(null, { id: "fixed-id" });
      await t.drain();
      expect((await h.status()).state).toEqual({ count: 2, a: "x", b: "y" });
      await t.advance(10);
      const res = (await h.result()) as { count: number; r: number[] };
      expect(res.count).toBe(2);
      expect(randoms).toHaveLength(2);
      expect(randoms[0]).toEqual(randoms[1]);
      const kinds = await t.historyKinds(h.id);
      expect(kinds.filter((k) => k.startsWith("STATE_"))).toEqual([
        "STATE_SET",
        "STATE_UPDATE",
        "STATE_SET",
        "STATE_SET",
      ]);
    });

    it("ctx.log is silent during replay", async () => {
      const lines: string[] = [];
      const log = (o: unknown, m?: string) =>
        void lines.push(typeof o === "string" ? o : (m ?? ""));
      const logger = { trace: log, debug: log, info: log, warn: log, error: log };
      t = createTestEngine({ logger });
      const wf = t.workflow("logs", {
        run: async (ctx) => {
          ctx.log.info("one");
          await ctx.sleep("s", 10);
          ctx.log.info("two");
          await ctx.sleep("s2", 10);
          return null;
        },
      });
      const h = await wf.start(null);
      await t.drain();
      await t.advance(10);
      await t.advance(10);
      await h.result();
      expect(lines.filter((l) => l === "one" || l === "two")).toEqual(["one", "two"]);
    });
  });

  describe("determinism", () => {
    it("reordered steps hold the run (waiting, error names the call); fixed code resumes it; cancel works", async () => {
      t = createTestEngine({ workflows: { heldRetryMs: 1000 } });
      let order = ["a", "b"];
      const ledger: string[] = [];
      const wf = t.workflow("order", {
        run: async (ctx) => {
          for (const name of order) await ctx.step(name, () => void ledger.push(name));
          await ctx.sleep("z", 100);
          return ledger.length;
        },
      });
      const h = await wf.start(null);
      await t.drain();
      order = ["b", "a"];
      await t.advance(100);
      let run = await h.status();
      expect(run.status).toBe("waiting");
      expect(run.error).toMatch(/not deterministic at seq 1.*step\("a"\).*step\("b"\)/);
      expect(run.waitingFor?.kind).toBe("code");
      order = ["a", "b"];
      await t.advance(1000);
      run = await h.status();
      expect(run.status).toBe("completed");
      expect(ledger).toEqual(["a", "b"]);
    });

    it("a renamed step is caught; a held run can be cancelled", async () => {
      t = createTestEngine();
      let second = "charge";
      const wf = t.workflow("rename", {
        run: async (ctx) => {
          await ctx.step("reserve", () => 1);
          await ctx.step(second, () => 2);
          await ctx.sleep("s", 10);
          return null;
        },
      });
      const h = await wf.start(null);
      await t.drain();
      second = "bill";
      await t.advance(10);
      const run = await h.status();
      expect(run.status).toBe("waiting");
      expect(run.error).toContain('step("charge")');
      expect(run.error).toContain('step("bill")');
      expect((await h.cancel("give up")).status).toBe("cancelled");
    });
  });

  describe("versioning", () => {
    it("a run replays with the version it started on while a newer one is registered", async () => {
      t = createTestEngine();
      const v1 = t.workflow("ver", {
        version: 1,
        run: async (ctx) => {
          await ctx.sleep("s", 10);
          return "v1";
        },
      });
      const h1 = await v1.start(null);
      await t.drain();
      t.workflow("ver", { version: 2, run: async () => "v2" });
      const h2 = await t.workflows.start("ver", null);
      await t.advance(10);
      expect(await h1.result()).toBe("v1");
      expect(await h2.result()).toBe("v2");
      expect((await h2.status()).version).toBe(2);
    });

    it("a run whose version is not registered waits with a clear error, then resumes when it is", async () => {
      t = createTestEngine({ workflows: { heldRetryMs: 1000 } });
      t.workflow("old", { version: "2024", run: () => "new" });
      // A run started by a process that had version 2023 (written through the store directly).
      await t.workflows.list();
      await t.store.createWorkflowRun({
        id: "legacy",
        name: "old",
        version: JSON.stringify("2023"),
        input: null,
        tenant: "default",
        project: "default",
        parentId: null,
        leaseMs: 30_000,
        now: t.clock.now(),
      });
      await t.drain();
      const run = await (await t.workflows.get("legacy")).status();
      expect(run.status).toBe("waiting");
      expect(run.error).toContain('version "2023" of workflow old is not registered');
      expect(run.waitingFor?.kind).toBe("version");
      t.workflow("old", { version: "2023", run: () => "old" });
      await t.advance(1000);
      expect(await (await t.workflows.get("legacy")).result()).toBe("old");
    });
  });

  describe("cancellation", () => {
    it("cancels the run, aborts its running activity and cancels its children", async () => {
      t = createTestEngine();
      let aborted = false;
      t.register("forever", (_task, ctx) => {
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            reject(new Error("aborted"));
          }),
        );
      });
      const child = t.workflow("kid", { run: (ctx) => ctx.waitForSignal("never") });
      const parent = t.workflow("mom", {
        run: async (ctx) => {
          const kid = ctx.child(child, null);
          return kid;
        },
      });
      const act = t.workflow("act", { run: (ctx) => ctx.activity("forever", null) });
      const p = await parent.start(null);
      const a = await act.start(null);
      await t.drain();
      expect((await (await t.workflows.get(`${p.id}:1`)).status()).status).toBe("waiting");
      const cancelled = await p.cancel("stop");
      expect(cancelled.status).toBe("cancelled");
      expect(cancelled.error).toBe("stop");
      expect((await (await t.workflows.get(`${p.id}:1`)).status()).status).toBe("cancelled");
      expect(await t.historyKinds(p.id)).toContain("WORKFLOW_CANCELLED");
      await a.cancel("stop act");
      await t.drain();
      expect(aborted).toBe(true);
      const tasks = await t.list({ workflowId: a.id, type: "forever" });
      expect(tasks.items[0]!.status).toBe("cancelled");
      await expect(a.result()).rejects.toBeInstanceOf(WorkflowExecutionError);
      await expect(a.cancel()).rejects.toBeInstanceOf(InvalidTransitionError);
    });
  });

  describe("start, get, list, events, limits", () => {
    it("start with an existing id returns that run; another name or tenant is a ValidationError", async () => {
      t = createTestEngine();
      const wf = t.workflow("idem", { run: (_ctx, n: number) => n });
      const other = t.workflow("other", { run: () => 0 });
      const a = await wf.start(1, { id: "order-1" });
      const b = await wf.start(2, { id: "order-1" });
      expect(b.id).toBe(a.id);
      await t.drain();
      expect(await b.result()).toBe(1);
      await expect(other.start(0, { id: "order-1" })).rejects.toBeInstanceOf(ValidationError);
      await expect(wf.start(1, { id: "order-1", tenant: "t2" })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it("validates input with the Standard Schema", async () => {
      t = createTestEngine();
      const wf = t.workflow("typed", { input: schema, run: (_ctx, i: { n: number }) => i.n + 1 });
      await expect(wf.start({ n: "x" } as never)).rejects.toBeInstanceOf(ValidationError);
      const h = await wf.start({ n: 1 });
      await t.drain();
      expect(await h.result()).toBe(2);
    });

    it("get of an unknown id is WorkflowNotFoundError; list pages with a cursor and filters", async () => {
      t = createTestEngine();
      await expect(t.workflows.get("nope")).rejects.toBeInstanceOf(WorkflowNotFoundError);
      const wf = t.workflow("many", { run: () => 1 });
      const w2 = t.workflow("few", { run: (ctx) => ctx.waitForSignal("x") });
      for (let i = 0; i < 5; i++) await wf.start(null);
      await w2.start(null);
      await t.drain();
      const first = await t.workflows.list({ name: "many", limit: 3 });
      expect(first.items).toHaveLength(3);
      expect(first.nextCursor).not.toBeNull();
      const second = await t.workflows.list({ name: "many", limit: 3, cursor: first.nextCursor! });
      expect(second.items).toHaveLength(2);
      expect(second.nextCursor).toBeNull();
      expect((await t.workflows.list({ status: "waiting" })).items.map((r) => r.name)).toEqual([
        "few",
      ]);
      await expect(t.workflows.list({ status: "nope" as never })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it("emits workflow events with workflowId", async () => {
      t = createTestEngine();
      const seen: LoomEvent[] = [];
      t.events.subscribe((e) => void seen.push(e), {
        types: [
          "workflow.started",
          "workflow.step",
          "workflow.signal",
          "workflow.completed",
          "workflow.failed",
          "workflow.cancelled",
        ],
      });
      const wf = t.workflow("ev", {
        run: async (ctx) => {
          await ctx.step("s", () => 1);
          await ctx.waitForSignal("go");
          return 1;
        },
      });
      const h = await wf.start(null);
      await t.drain();
      await h.signal("go");
      await t.drain();
      await h.result();
      expect(seen.map((e) => e.type)).toEqual([
        "workflow.started",
        "workflow.step",
        "workflow.signal",
        "workflow.completed",
      ]);
      expect(seen.every((e) => e.workflowId === h.id)).toBe(true);
    });

    it("a history past maxHistoryEvents fails the run with a clear error", async () => {
      t = createTestEngine({ workflows: { maxHistoryEvents: 10 } });
      const wf = t.workflow("long", {
        run: async (ctx) => {
          for (let i = 0; i < 20; i++) await ctx.step(`s${i}`, () => i);
          return "never";
        },
      });
      const h = await wf.start(null);
      await t.drain();
      const run = await h.status();
      expect(run.status).toBe("failed");
      expect(run.error).toContain("history limit exceeded");
      expect(run.error).toContain("maxHistoryEvents 10");
    });
  });
}
