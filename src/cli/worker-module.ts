import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Engine } from "../core/engine.js";
import type { RegisterOptions, TaskHandle } from "../core/types.js";
import { usageError } from "./errors.js";

/**
 * The worker module contract (docs/cli.md): an ES module whose default export (or named export
 * `setup`) is a function `(engine, info) => void | Promise<void>` that registers task types (and
 * lanes and workflows, once the engine has them) on the engine it is given. `loom worker` calls
 * it once, then starts dispatching.
 */
export type WorkerSetup = (engine: Engine, info: WorkerInfo) => void | Promise<void>;

export interface WorkerInfo {
  /** `--lanes`, when given: only types declared with one of these lanes run here. */
  lanes: string[] | null;
}

export async function loadWorkerModule(path: string, cwd = process.cwd()): Promise<WorkerSetup> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw usageError(`worker module not found: ${file}`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load worker module ${file}: ${(err as Error).message}`, { cause: err });
  }
  const setup = typeof mod.default === "function" ? mod.default : mod.setup;
  if (typeof setup !== "function") {
    throw usageError(
      `worker module ${file} must export a function as default (or as "setup"): (engine) => void`,
    );
  }
  return setup as WorkerSetup;
}

/**
 * The engine as the module sees it. With `--lanes`, types outside those lanes are not
 * registered for dispatch here (so this worker never claims them); the module still gets a
 * handle whose `submit` works.
 */
export function laneFilteredEngine(engine: Engine, lanes: string[] | null): Engine {
  if (!lanes) return engine;
  const wanted = new Set(lanes);
  const register = (type: string, handler: unknown, opts: RegisterOptions = {}) => {
    if (opts.lane !== undefined && wanted.has(opts.lane)) {
      return (engine.register as (t: string, h: unknown, o: RegisterOptions) => unknown)(
        type,
        handler,
        opts,
      );
    }
    const handle: TaskHandle<unknown, unknown> = {
      type,
      submit: (input, o = {}) => engine.submit({ ...o, type, input }, o),
      submitMany: (inputs) => engine.submitMany(inputs.map((input) => ({ type, input }))),
      wait: (id, o) => engine.wait(id, o),
    };
    return handle;
  };
  return new Proxy(engine, {
    get(target, prop, receiver) {
      if (prop === "register") return register;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function"
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
