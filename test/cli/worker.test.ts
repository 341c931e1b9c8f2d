import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, postgres, sqlite, type Engine, type Store } from "../../src/index.js";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";
import { until } from "../support/sqlite.js";
import { ensureBuilt, loomJson, startLoom } from "./support.js";

const pg = await pgAvailable();
const schema = testSchema("cli_worker");

// Slow on purpose, and deaf to ctx.signal: only a real drain lets it finish.
const SLOW = `export default function (engine) {
  engine.register("cli.slow", async (task) => {
    await new Promise((r) => setTimeout(r, 600));
    return { n: task.input.n };
  });
}
`;

const stores: {
  name: string;
  skip: boolean;
  args: (dir: string) => string[];
  open: (dir: string) => Store;
}[] = [
  {
    name: "sqlite",
    skip: false,
    args: (dir) => ["--db", join(dir, "loom.db")],
    open: (dir) => sqlite(join(dir, "loom.db")),
  },
  {
    name: "postgres",
    skip: !pg,
    args: () => ["--db", PG_URL, "--schema", schema],
    open: () => postgres(PG_URL, { schema }),
  },
];

beforeAll(() => ensureBuilt(), 300_000);
afterAll(async () => {
  if (pg) await dropSchema(schema);
});

for (const store of stores) {
  describe.skipIf(store.skip)(`loom worker on ${store.name}`, () => {
    let dir: string;
    let engine: Engine;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "loom-cli-worker-"));
      writeFileSync(join(dir, "slow.mjs"), SLOW);
      engine = createEngine({ name: "observer", retention: false, store: store.open(dir) });
    });
    afterAll(async () => {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("SIGTERM mid-run: stops claiming, drains in-flight tasks, exits 0, loses nothing", async () => {
      const N = 12;
      const ids = await engine.submitMany(
        Array.from({ length: N }, (_, n) => ({ type: "cli.slow", input: { n } })),
      );
      const worker = startLoom(
        [
          ...store.args(dir),
          "worker",
          "slow.mjs",
          "--concurrency",
          "3",
          "--poll-interval",
          "50ms",
          "--name",
          "w1",
        ],
        { cwd: dir },
      );
      await worker.waitFor(/running slow\.mjs/);
      await until(async () => (await engine.count({ status: "running" })) > 0, 20_000);
      worker.child.kill("SIGTERM");
      expect(await worker.exited).toBe(0);
      expect(worker.stderr()).toMatch(/SIGTERM: stopped claiming; draining/);

      const tasks = await Promise.all(ids.map((id) => engine.get(id)));
      const by = (s: string) => tasks.filter((t) => t.status === s).length;
      // Every task is either done, or still pending for another worker; none stuck or crashed.
      expect(by("completed") + by("pending")).toBe(N);
      expect(by("completed")).toBeGreaterThan(0);
      expect(by("pending")).toBeGreaterThan(0);
      for (const t of tasks.filter((t) => t.status === "completed")) {
        expect(t.result).toEqual({ n: (t.input as { n: number }).n });
        expect(t.engineName).toBe("w1");
      }

      // Another worker picks up the rest.
      const second = startLoom([...store.args(dir), "worker", "slow.mjs", "--concurrency", "6"], {
        cwd: dir,
      });
      try {
        await until(
          async () => (await engine.count({ status: "completed", type: "cli.slow" })) === N,
          30_000,
          50,
        );
      } finally {
        second.child.kill("SIGINT");
        expect(await second.exited).toBe(0);
      }
    });

    it("recover --engine: a killed worker's running attempt gets its crash policy", async () => {
      const id = await engine.submit({ type: "cli.slow", input: { n: -1 } });
      // A handler that never ends, in a worker killed with SIGKILL (no drain).
      writeFileSync(
        join(dir, "stuck.mjs"),
        `export default (e) => e.register("cli.slow", () => new Promise(() => {}));\n`,
      );
      const name = `ghost-${store.name}`;
      const worker = startLoom(
        [...store.args(dir), "worker", "stuck.mjs", "--name", name, "--poll-interval", "50ms"],
        { cwd: dir },
      );
      await until(async () => (await engine.get(id)).status === "running", 20_000);
      worker.child.kill("SIGKILL");
      await worker.exited;
      const out = await loomJson<{ recovered: number }>(
        [...store.args(dir), "recover", "--engine", name],
        { cwd: dir },
      );
      expect(out.recovered).toBe(1);
      expect((await engine.get(id)).status).toBe("failed_crash");
    });

    it("--lanes: only types registered with one of those lanes run here", async () => {
      writeFileSync(
        join(dir, "laned.mjs"),
        `export default async (e, info) => {
          await e.lane("fast", { concurrency: 2 });
          e.register("cli.fast", () => ({ lanes: info.lanes }), { lane: "fast" });
          e.register("cli.other", () => "ran");
        };\n`,
      );
      const fast = await engine.submit({ type: "cli.fast", input: null });
      const other = await engine.submit({ type: "cli.other", input: null });
      const worker = startLoom(
        [...store.args(dir), "worker", "laned.mjs", "--lanes", "fast", "--poll-interval", "50ms"],
        { cwd: dir },
      );
      try {
        const done = await engine.wait(fast, { timeoutMs: 20_000 });
        expect(done.result).toEqual({ lanes: ["fast"] });
        expect((await engine.get(other)).status).toBe("pending");
      } finally {
        worker.child.kill("SIGTERM");
      }
      expect(await worker.exited).toBe(0);
      expect((await engine.get(other)).status).toBe("pending");
    });

    it("refuses a missing or malformed worker module with exit 2", async () => {
      const missing = startLoom([...store.args(dir), "worker", "nope.mjs"], { cwd: dir });
      expect(await missing.exited).toBe(2);
      expect(missing.stderr()).toMatch(/worker module not found: .*nope\.mjs/);
      writeFileSync(join(dir, "bad.mjs"), "export const x = 1;\n");
      const bad = startLoom([...store.args(dir), "worker", "bad.mjs"], { cwd: dir });
      expect(await bad.exited).toBe(2);
      expect(bad.stderr()).toMatch(/must export a function as default/);
    });
  });
}
