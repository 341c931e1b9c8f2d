import { Engine, type EngineOptions } from "./core/engine.js";
import { sqlite } from "./stores/sqlite/sqlite-store.js";

/**
 * Create an engine. The default store is `sqlite(".loom/loom.db")` in the current folder.
 * Migrations start at once; every engine call waits for them.
 */
export function createEngine(opts: EngineOptions = {}): Engine {
  return new Engine({ ...opts, store: opts.store ?? sqlite(".loom/loom.db") });
}
