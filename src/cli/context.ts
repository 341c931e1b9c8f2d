import type { Command } from "commander";
import { Engine, type EngineOptions } from "../core/engine.js";
import type { Logger, LogFn } from "../core/logger.js";
import type { Store } from "../store/store.js";
import { postgres } from "../stores/postgres/postgres-store.js";
import { sqlite } from "../stores/sqlite/sqlite-store.js";
import {
  resolveConfig,
  type GlobalFlags,
  type ResolvedConfig,
  type StoreConfig,
} from "./config.js";
import { createOutput, paint, type Output } from "./output.js";

/** What every command gets: its flags (with the global ones), output and configuration. */
export interface CliContext {
  flags: GlobalFlags;
  o: Output;
  /** Read lazily: `loom init` works where the config file is broken. */
  config(): ResolvedConfig;
  logger: Logger;
}

export function contextOf(cmd: Command): CliContext {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const o = createOutput(flags);
  let config: ResolvedConfig | undefined;
  return {
    flags,
    o,
    config: () => (config ??= resolveConfig(flags)),
    logger: stderrLogger(o, flags.verbose ? "debug" : "warn"),
  };
}

const LEVELS = ["trace", "debug", "info", "warn", "error"] as const;
type Level = (typeof LEVELS)[number];

/** Logs at `min` and above to stderr, one line each: `level message {fields}`. */
export function stderrLogger(o: Output, min: Level): Logger {
  const at = LEVELS.indexOf(min);
  const make = (level: Level): LogFn => {
    if (LEVELS.indexOf(level) < at) return () => {};
    const colour = level === "error" ? "red" : level === "warn" ? "yellow" : "gray";
    return (a: object | string, b?: string) => {
      const [fields, msg] = typeof a === "string" ? [undefined, a] : [a, b ?? ""];
      let extra = "";
      if (fields && Object.keys(fields).length) {
        extra =
          " " +
          JSON.stringify(fields, (_k, v: unknown) =>
            v instanceof Error ? { message: v.message } : v,
          );
      }
      o.err(`${paint(o, colour, level)} ${msg}${extra}`);
    };
  };
  const logger: Logger = {
    trace: make("trace"),
    debug: make("debug"),
    info: make("info"),
    warn: make("warn"),
    error: make("error"),
  };
  return logger;
}

export function openStore(store: StoreConfig): Store {
  return store.kind === "sqlite"
    ? sqlite(store.path)
    : postgres(store.url, store.schema ? { schema: store.schema } : {});
}

/**
 * An engine on the configured store. It does not dispatch unless the command calls `start()`,
 * so one-shot commands (submit, list, cancel…) never run tasks themselves.
 */
export function openEngine(ctx: CliContext, opts: EngineOptions = {}): Engine {
  return new Engine({
    name: "loom-cli",
    logger: ctx.logger,
    retention: false,
    ...opts,
    store: opts.store ?? openStore(ctx.config().store),
  });
}

/** Run `fn` with an engine, closing it afterwards whatever happens. */
export async function withEngine<T>(
  ctx: CliContext,
  fn: (engine: Engine) => Promise<T>,
  opts: EngineOptions = {},
): Promise<T> {
  const engine = openEngine(ctx, opts);
  try {
    return await fn(engine);
  } finally {
    await engine.close({ timeoutMs: 5_000 }).catch(() => {});
  }
}
