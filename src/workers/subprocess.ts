import type { HandlerFn, RunningTask, TaskContext } from "../core/types.js";
import { OutputLimitError } from "./errors.js";
import {
  checkLimit,
  checkProcessOptions,
  DEFAULT_MAX_OUTPUT_BYTES,
  processSpec,
  runProcess,
  type ProcessOptions,
} from "./process.js";

export interface SubprocessOptions<I = unknown, R = unknown> extends ProcessOptions<I> {
  /**
   * Turns the command's stdout into the task's result. Default: stdout as JSON when it parses,
   * otherwise the text with trailing whitespace removed; `undefined` when stdout is empty or
   * only whitespace (so a command that prints nothing completes instead of tripping the quality
   * gate's empty-result retry).
   */
  parse?: (stdout: string, task: RunningTask<I>) => R | Promise<R>;
}

/** The default `parse`: JSON if it parses, else the text; nothing for empty output. */
export function parseOutput(stdout: string): unknown {
  const text = stdout.trimEnd();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A worker that runs a command for each task: the task's input goes to its stdin (as JSON by
 * default), its stdout becomes the result. It runs in its own process group; on timeout or when
 * `ctx.signal` aborts (cancel, the engine's `timeoutMs`, shutdown) the whole group is killed, so
 * processes the command started die too. A non-zero exit fails the attempt with a
 * `SubprocessError` carrying the redacted end of stderr.
 *
 * @example
 * engine.register("thumbnail", subprocess({ command: "convert-thumb", timeoutMs: 60_000 }));
 */
export function subprocess<I = unknown, R = unknown>(
  opts: SubprocessOptions<I, R>,
): HandlerFn<I, Awaited<R>> {
  checkProcessOptions(opts);
  const maxBytes = checkLimit(opts.maxOutputBytes, "maxOutputBytes", DEFAULT_MAX_OUTPUT_BYTES);
  const parse = opts.parse ?? (parseOutput as (stdout: string) => R);

  return async (task: RunningTask<I>, ctx: TaskContext): Promise<Awaited<R>> => {
    const spec = processSpec(opts, task);
    const chunks: Buffer[] = [];
    let size = 0;
    await runProcess(spec, ctx.signal, {
      onStdout(chunk) {
        size += chunk.length;
        if (size > maxBytes) throw new OutputLimitError("stdout", maxBytes, spec.command);
        chunks.push(chunk);
      },
    });
    return await parse(Buffer.concat(chunks).toString("utf8"), task);
  };
}
