import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { EngineClosedError, SqliteStore, ValidationError } from "../../src/index.js";
import { engineFactory, tempDir } from "../support/sqlite.js";

const run = promisify(execFile);
const tmp = tempDir("loom-process-");
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

describe("the process around an engine", () => {
  it("a started engine keeps Node alive until its delayed task is done", async () => {
    const script = join(tmp.dir, "alive.mts");
    const src = new URL("../../src/index.js", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { createEngine, sqlite } from ${JSON.stringify(src)};
const engine = createEngine({ name: "alive", store: sqlite(${JSON.stringify(tmp.file())}), retention: false });
engine.register("later", () => "done");
await engine.start();
const id = await engine.submit({ type: "later", runAt: Date.now() + 300 });
const task = await engine.wait(id);
console.log(task.status);
await engine.close();
`,
    );
    const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
      timeout: 15_000,
    });
    expect(stdout.trim()).toBe("completed");
  });

  it("reads after close throw EngineClosedError", async () => {
    const engine = engines.make();
    const id = await engine.submit({ type: "x" });
    await engine.close();
    await expect(engine.get(id)).rejects.toBeInstanceOf(EngineClosedError);
    await expect(engine.list()).rejects.toBeInstanceOf(EngineClosedError);
  });
});

describe("submit inside the caller's own SQLite transaction", () => {
  it("commits and rolls back with the caller's rows; a bad request aborts the transaction", async () => {
    const engine = engines.make();
    await engine.count();
    const db = (engine.store as SqliteStore).db;
    db.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, task TEXT)");
    // better-sqlite3 transactions are synchronous: keep the promise, await it after.
    let submitted: Promise<string> | undefined;
    const place = db.transaction((fail: boolean) => {
      submitted = engine.submit({ type: "ship" }, { tx: db });
      db.prepare("INSERT INTO orders (task) VALUES ('x')").run();
      if (fail) throw new Error("payment declined");
    });
    place(false);
    const kept = await submitted!;
    expect((await engine.get(kept)).status).toBe("pending");
    expect(() => place(true)).toThrow("payment declined");
    expect(await engine.count()).toBe(1);
    const bad = db.transaction(() => {
      db.prepare("INSERT INTO orders (task) VALUES ('y')").run();
      void engine.submit({ type: "ship", priority: 42 }, { tx: db });
    });
    expect(() => bad()).toThrow(ValidationError);
    expect((db.prepare("SELECT count(*) AS n FROM orders").get() as { n: number }).n).toBe(1);
    expect(await engine.count()).toBe(1);

    let many: Promise<string[]> | undefined;
    const batch = db.transaction((fail: boolean) => {
      many = engine.submitMany([{ type: "ship" }, { type: "ship" }], { tx: db });
      if (fail) throw new Error("rolled back");
    });
    expect(() => batch(true)).toThrow("rolled back");
    expect(await engine.count()).toBe(1);
    batch(false);
    expect(await many!).toHaveLength(2);
    expect(await engine.count()).toBe(3);
  });
});
