import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.js";
import type { TaskFilter } from "../../core/types.js";
import type { NewTask } from "../store.js";
import { T0, claimOne, complete, insert, newTask, settle, type StoreContext } from "./fixtures.js";

export function readSuite(ctx: StoreContext): void {
  /** A small, varied population; returned in insertion (= id) order. */
  const populate = async (): Promise<Record<string, NewTask>> => {
    const tasks = {
      a: newTask({
        tenant: "t1",
        project: "p1",
        type: "x",
        lane: "l1",
        caller: "alice",
        labels: { env: "prod", team: "core" },
      }),
      b: newTask({
        tenant: "t1",
        project: "p1",
        type: "y",
        lane: "l2",
        caller: "bob",
        labels: { env: "dev" },
      }),
      c: newTask({
        tenant: "t1",
        project: "p2",
        type: "x",
        caller: "alice",
        workflowId: "wf-1",
        labels: { "app.io/name": "m" },
      }),
      d: newTask({ tenant: "t2", project: "p1", type: "x", lane: "l1", labels: { env: "prod" } }),
      e: newTask({ tenant: "t2", project: "p2", type: "z", workflowId: "wf-1" }),
    };
    await insert(ctx.store, ...Object.values(tasks));
    // a runs, b completes; the rest stay pending.
    await claimOne(ctx.store, T0, { types: ["x"] });
    await settle(ctx.store, T0 + 1, complete(await claimOne(ctx.store, T0, { types: ["y"] })));
    return tasks;
  };

  const ids = async (filter: TaskFilter): Promise<string[]> =>
    (await ctx.store.listTasks({ limit: 1000, ...filter })).items.map((t) => t.id);

  describe("listTasks and countTasks", () => {
    it("lists every task newest first (by id) without a filter", async () => {
      const t = await populate();
      expect(await ids({})).toEqual([t.e!.id, t.d!.id, t.c!.id, t.b!.id, t.a!.id]);
      expect(await ctx.store.countTasks({})).toBe(5);
    });

    it("returns full tasks", async () => {
      const t = await populate();
      const page = await ctx.store.listTasks({ tenant: "t1", status: "completed" });
      expect(page.items).toHaveLength(1);
      expect(page.items[0]).toMatchObject({
        id: t.b!.id,
        type: "y",
        status: "completed",
        tenant: "t1",
        project: "p1",
        caller: "bob",
        lane: "l2",
        labels: { env: "dev" },
        attempt: 1,
      });
      expect(page.nextCursor).toBeNull();
    });

    const cases: [string, TaskFilter, string[]][] = [
      ["tenant", { tenant: "t1" }, ["c", "b", "a"]],
      ["tenant + project", { tenant: "t1", project: "p1" }, ["b", "a"]],
      ["project across tenants", { project: "p2" }, ["e", "c"]],
      ["one status", { status: "pending" }, ["e", "d", "c"]],
      ["a status list", { status: ["running", "completed"] }, ["b", "a"]],
      ["an empty status list", { status: [] }, []],
      ["one type", { type: "x" }, ["d", "c", "a"]],
      ["a type list", { type: ["y", "z"] }, ["e", "b"]],
      ["an empty type list", { type: [] }, []],
      ["lane", { lane: "l1" }, ["d", "a"]],
      ["caller", { caller: "alice" }, ["c", "a"]],
      ["workflowId", { workflowId: "wf-1" }, ["e", "c"]],
      ["one label", { labels: { env: "prod" } }, ["d", "a"]],
      ["every label given", { labels: { env: "prod", team: "core" } }, ["a"]],
      ["a label with dots and slashes in its key", { labels: { "app.io/name": "m" } }, ["c"]],
      ["a label value that matches nothing", { labels: { env: "staging" } }, []],
      [
        "combined fields",
        { tenant: "t1", type: "x", status: ["pending", "running"], caller: "alice" },
        ["c", "a"],
      ],
      ["an unknown tenant", { tenant: "nobody" }, []],
    ];
    for (const [what, filter, expected] of cases) {
      it(`filters by ${what}`, async () => {
        const t = await populate();
        const want = expected.map((k) => t[k]!.id);
        expect(await ids(filter)).toEqual(want);
        expect(await ctx.store.countTasks(filter)).toBe(want.length);
      });
    }

    it("rejects an unknown status with ValidationError", async () => {
      const bad = { status: "finished" as unknown as "pending" };
      await expect(ctx.store.listTasks(bad)).rejects.toBeInstanceOf(ValidationError);
      await expect(ctx.store.countTasks(bad)).rejects.toBeInstanceOf(ValidationError);
    });

    it("pages newest first with nextCursor until null, without repeats or gaps", async () => {
      const all: string[] = [];
      for (let i = 0; i < 10; i++) {
        const t = newTask();
        all.push(t.id);
        await insert(ctx.store, t);
      }
      const seen: string[] = [];
      const sizes: number[] = [];
      let cursor: string | undefined;
      for (let guard = 0; guard < 20; guard++) {
        const page = await ctx.store.listTasks({ limit: 3, cursor });
        sizes.push(page.items.length);
        seen.push(...page.items.map((t) => t.id));
        if (page.nextCursor === null) break;
        expect(typeof page.nextCursor).toBe("string");
        cursor = page.nextCursor;
      }
      expect(sizes).toEqual([3, 3, 3, 1]);
      expect(seen).toEqual([...all].reverse());
    });

    it("ends with nextCursor null on a full last page (no empty trailing page)", async () => {
      for (let i = 0; i < 4; i++) await insert(ctx.store, newTask());
      const first = await ctx.store.listTasks({ limit: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.nextCursor).not.toBeNull();
      const second = await ctx.store.listTasks({ limit: 2, cursor: first.nextCursor! });
      expect(second.items).toHaveLength(2);
      expect(second.nextCursor).toBeNull();
    });

    it("pages within a filter", async () => {
      const xs: string[] = [];
      for (let i = 0; i < 7; i++) {
        const x = newTask({ type: "x" });
        xs.push(x.id);
        await insert(ctx.store, x, newTask({ type: "y" }));
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await ctx.store.listTasks({ type: "x", limit: 2, cursor });
        seen.push(...page.items.map((t) => t.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor !== undefined && pages < 20);
      expect(pages).toBe(4);
      expect(seen).toEqual([...xs].reverse());
    });

    it("keeps a cursor valid while newer tasks arrive", async () => {
      const old = [newTask(), newTask(), newTask()];
      await insert(ctx.store, ...old);
      const first = await ctx.store.listTasks({ limit: 2 });
      await insert(ctx.store, newTask(), newTask());
      const second = await ctx.store.listTasks({ limit: 2, cursor: first.nextCursor! });
      expect(second.items.map((t) => t.id)).toEqual([old[0]!.id]);
      expect(second.nextCursor).toBeNull();
    });

    it("rejects a cursor that did not come from a page with ValidationError", async () => {
      await insert(ctx.store, newTask());
      for (const cursor of ["%%%", "not a cursor!", "@@"]) {
        await expect(ctx.store.listTasks({ cursor })).rejects.toBeInstanceOf(ValidationError);
      }
    });

    it("rejects a limit outside 1–1000 with ValidationError", async () => {
      for (const limit of [0, -1, 1001, 2.5, Number.NaN]) {
        await expect(ctx.store.listTasks({ limit })).rejects.toBeInstanceOf(ValidationError);
      }
      await insert(ctx.store, newTask(), newTask());
      expect((await ctx.store.listTasks({ limit: 1 })).items).toHaveLength(1);
      expect((await ctx.store.listTasks({ limit: 1000 })).items).toHaveLength(2);
    });

    it("pages 100 tasks by default", async () => {
      const batch: NewTask[] = [];
      for (let i = 0; i < 105; i++) batch.push(newTask());
      await insert(ctx.store, ...batch);
      const page = await ctx.store.listTasks({});
      expect(page.items).toHaveLength(100);
      expect(page.nextCursor).not.toBeNull();
      const rest = await ctx.store.listTasks({ cursor: page.nextCursor! });
      expect(rest.items).toHaveLength(5);
      expect(rest.nextCursor).toBeNull();
    });

    it("counts every match regardless of limit", async () => {
      for (let i = 0; i < 5; i++) await insert(ctx.store, newTask());
      expect(await ctx.store.countTasks({ limit: 2 })).toBe(5);
    });
  });
}
