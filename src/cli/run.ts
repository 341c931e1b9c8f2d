import type { Command } from "commander";
import { LoomError } from "../core/errors.js";
import { contextOf, type CliContext } from "./context.js";
import { describeError, exitCodeOf } from "./errors.js";
import { paint } from "./output.js";

/**
 * Wraps a command's action: builds its context, runs it, turns the outcome into an exit code and
 * reports an error in one line (with the stack only under `--verbose`). With `--json`, the error
 * is also printed to stdout as `{ "error": { code, message, exitCode } }`.
 */
export function action<P extends unknown[]>(
  fn: (ctx: CliContext, ...args: P) => Promise<number | void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = contextOf(cmd);
    try {
      process.exitCode = (await fn(ctx, ...(args.slice(0, -1) as P))) ?? 0;
    } catch (err) {
      reportError(ctx, err);
      process.exitCode = exitCodeOf(err);
    }
  };
}

export function reportError(ctx: CliContext, err: unknown): void {
  const exitCode = exitCodeOf(err);
  ctx.o.err(`${paint(ctx.o, "red", "error:")} ${describeError(err)}`);
  if (ctx.flags.verbose && err instanceof Error && err.stack) ctx.o.err(err.stack);
  if (ctx.o.json) {
    ctx.o.data({
      error: {
        code: err instanceof LoomError ? err.code : "ERROR",
        message: describeError(err),
        exitCode,
      },
    });
  }
}
