import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine, sqlite, type Engine, type EngineOptions } from "../../src/index.js";

/** A fresh folder for one test file's SQLite databases, removed with `cleanup()`. */
export function tempDir(prefix = "loom-test-"): {
  dir: string;
  file(name?: string): string;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    dir,
    file: (name) => join(dir, name ?? `db-${++n}.sqlite`),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An engine on its own SQLite file; every engine made here is closed by `closeAll()`. */
export function engineFactory(dir: { file(name?: string): string }) {
  const engines: Engine[] = [];
  return {
    make(opts: EngineOptions & { path?: string } = {}): Engine {
      const { path, ...rest } = opts;
      const engine = createEngine({
        name: "test",
        retention: false,
        store: sqlite(path ?? dir.file()),
        ...rest,
      });
      engines.push(engine);
      return engine;
    },
    async closeAll(): Promise<void> {
      await Promise.all(engines.splice(0).map((e) => e.close({ timeoutMs: 2_000 })));
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a truthy value or `timeoutMs` passes. */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  everyMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
