import { spawn, type ChildProcess } from "node:child_process";
import { ValidationError } from "../core/errors.js";
import { redact } from "../core/redact.js";
import type { RunningTask } from "../core/types.js";
import { SubprocessError } from "./errors.js";

/** A value given once, or computed from the task for each attempt. */
export type PerTask<I, T> = T | ((task: RunningTask<I>) => T);

/** Options shared by the process workers, `subprocess` and `streaming`. */
export interface ProcessOptions<I = unknown> {
  /**
   * The program to run: a path, or a name looked up on `PATH`. It is run directly, not through a
   * shell (see `shell`), so arguments need no quoting.
   */
  command: string;
  /** Arguments, as given or computed from the task. Default: none. */
  args?: PerTask<I, readonly string[]>;
  /** Working directory. Default: the current directory of this process. */
  cwd?: PerTask<I, string>;
  /**
   * Environment variables. Merged over this process's environment unless `inheritEnv` is
   * `false`; a variable set to `undefined` is removed. Default: this process's environment.
   */
  env?: PerTask<I, Record<string, string | undefined>>;
  /**
   * Pass this process's environment on to the command (with `env` merged over it). Turn it off
   * to keep secrets in this process's environment away from the command. Default: `true`.
   */
  inheritEnv?: boolean;
  /**
   * What to write to the command's stdin, which is closed afterwards. A string or bytes is
   * written as is; `undefined` writes nothing. `false` gives the command no stdin at all.
   * Default: the task's input as JSON (nothing when the input is `undefined`).
   */
  stdin?: ((task: RunningTask<I>) => string | Uint8Array | undefined) | false;
  /**
   * Run the command through a shell (`true` for `/bin/sh`, or the path of a shell). Only for
   * commands you write yourself: never build a shell command from task input. Default: `false`.
   */
  shell?: boolean | string;
  /**
   * Kill the command (its whole process group) after this many ms and fail the attempt with a
   * `SubprocessError` whose `reason` is `"timeout"`. The engine's own `timeoutMs` (a register
   * option) works too: it aborts `ctx.signal`, which also kills the group. Default: no limit.
   */
  timeoutMs?: number;
  /** Signal sent to the process group on timeout or abort. Default: `"SIGTERM"`. */
  killSignal?: NodeJS.Signals;
  /**
   * How long the process group has to exit after `killSignal` before it gets `SIGKILL`, in ms.
   * Default: 5000.
   */
  killGraceMs?: number;
  /**
   * Most bytes of stdout kept. Past it the process group is killed and the attempt fails with an
   * `OutputLimitError`. Default: 10 MiB.
   */
  maxOutputBytes?: number;
  /** How many bytes of the end of stderr are kept for `SubprocessError.stderrTail`. Default: 4096. */
  stderrTailBytes?: number;
}

/** Resolved, validated process options. */
export interface ProcessSpec {
  command: string;
  args: readonly string[];
  cwd: string | undefined;
  env: NodeJS.ProcessEnv;
  stdin: string | Uint8Array | undefined | false;
  shell: boolean | string;
  timeoutMs: number | undefined;
  killSignal: NodeJS.Signals;
  killGraceMs: number;
  stderrTailBytes: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
const DEFAULT_KILL_GRACE_MS = 5_000;
const DEFAULT_STDERR_TAIL_BYTES = 4_096;

export function resolve<I, T>(value: PerTask<I, T>, task: RunningTask<I>): T {
  return typeof value === "function" ? (value as (task: RunningTask<I>) => T)(task) : value;
}

export function checkLimit(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError("must be a positive number", field);
  }
  return value;
}

/** Validate the options once, when the worker is made, so mistakes show at `register`. */
export function checkProcessOptions<I>(opts: ProcessOptions<I>): void {
  if (!opts || typeof opts.command !== "string" || opts.command.trim() === "") {
    throw new ValidationError("must be a non-empty string", "command");
  }
  checkLimit(opts.timeoutMs, "timeoutMs", 1);
  checkLimit(opts.killGraceMs, "killGraceMs", 1);
  checkLimit(opts.maxOutputBytes, "maxOutputBytes", 1);
  checkLimit(opts.stderrTailBytes, "stderrTailBytes", 1);
}

/** The spec for one attempt: per-task values computed, defaults applied. */
export function processSpec<I>(opts: ProcessOptions<I>, task: RunningTask<I>): ProcessSpec {
  const extra = opts.env === undefined ? {} : resolve(opts.env, task);
  const env: NodeJS.ProcessEnv = opts.inheritEnv === false ? {} : { ...process.env };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  let stdin: ProcessSpec["stdin"];
  if (opts.stdin === false) stdin = false;
  else if (opts.stdin) stdin = opts.stdin(task);
  else stdin = task.input === undefined ? undefined : JSON.stringify(task.input);
  return {
    command: opts.command,
    args: opts.args === undefined ? [] : [...resolve(opts.args, task)],
    cwd: opts.cwd === undefined ? undefined : resolve(opts.cwd, task),
    env,
    stdin,
    shell: opts.shell ?? false,
    timeoutMs: opts.timeoutMs,
    killSignal: opts.killSignal ?? "SIGTERM",
    killGraceMs: opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
    stderrTailBytes: opts.stderrTailBytes ?? DEFAULT_STDERR_TAIL_BYTES,
  };
}

/**
 * Send `signal` to every process in the group led by `pid`. Returns `false` when the group is
 * gone. On Windows, where process groups do not exist, only the process itself is signalled.
 */
export function killProcessGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(process.platform === "win32" ? pid : -pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.max;
      this.dropped = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /** The kept text, redacted; a cut-off first line is dropped, so no half secret survives it. */
  text(): string {
    let text = Buffer.concat(this.chunks).toString("utf8");
    if (this.dropped) {
      const nl = text.indexOf("\n");
      text = nl === -1 ? `…${text}` : text.slice(nl + 1);
    }
    return redact(text.trimEnd());
  }
}

export interface RunHooks {
  /** Each chunk of stdout. Throwing kills the process group and fails the run with that error. */
  onStdout(chunk: Buffer): void;
}

/**
 * Run a command in its own process group and resolve once it exited with code 0 and its output
 * is closed. Rejects with a `SubprocessError` (non-zero exit, foreign signal, timeout, spawn
 * failure), with the error `onStdout` threw, or with `signal.reason` when `signal` aborts. On
 * timeout, abort or a hook error the whole group gets `killSignal`, then `SIGKILL` after
 * `killGraceMs`; the promise settles only after the command has exited. Processes the command
 * left behind in its group when it exited are sent `killSignal` too.
 */
export function runProcess(spec: ProcessSpec, signal: AbortSignal, hooks: RunHooks): Promise<void> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        shell: spec.shell,
        detached: process.platform !== "win32",
        stdio: [spec.stdin === false ? "ignore" : "pipe", "pipe", "pipe"],
        windowsHide: true,
      });
    } catch (err) {
      // Invalid arguments (e.g. a NUL byte) throw synchronously.
      reject(spawnError(spec, err));
      return;
    }
    const stderr = new Tail(spec.stderrTailBytes);
    const pid = child.pid;
    /** Why the run stops early; computed when the process has gone, so stderr is complete. */
    let failure: (() => Error) | null = null;
    let killSent = false;
    let graceTimer: NodeJS.Timeout | undefined;
    let timeoutTimer: NodeJS.Timeout | undefined;

    /** `killSignal` to the group now, `SIGKILL` to whatever is left of it after the grace period. */
    const killGroup = () => {
      if (killSent || pid === undefined) return;
      killSent = true;
      if (!signalGroup(pid, spec.killSignal)) return;
      graceTimer = setTimeout(() => signalGroup(pid, "SIGKILL"), spec.killGraceMs);
    };
    /** The first reason to stop wins; the run settles when the process has gone. */
    const stop = (error: () => Error) => {
      failure ??= error;
      killGroup();
    };
    const onAbort = () => stop(() => abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    if (spec.timeoutMs !== undefined) {
      const ms = spec.timeoutMs;
      timeoutTimer = setTimeout(
        () =>
          stop(
            () =>
              new SubprocessError(spec.command, "timeout", null, null, stderr.text(), `${ms} ms`),
          ),
        ms,
      );
    }

    child.stdout!.on("data", (chunk: Buffer) => {
      if (failure) return;
      try {
        hooks.onStdout(chunk);
      } catch (err) {
        stop(() => toError(err));
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
    if (child.stdin) {
      // A command that exits without reading its stdin makes the write fail with EPIPE: not an error.
      child.stdin.on("error", () => {});
      if (spec.stdin === undefined || spec.stdin === false) child.stdin.end();
      else child.stdin.end(spec.stdin);
    }
    // Anything the command left running in its group goes with it (and must close our pipes).
    child.on("exit", killGroup);

    let settled = false;
    const settle = (error: (() => Error) | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      signal.removeEventListener("abort", onAbort);
      // The SIGKILL escalation stays armed for leftovers that ignore killSignal, without keeping
      // this process alive for it.
      graceTimer?.unref();
      if (error === null) resolvePromise();
      else reject(error());
    };

    child.on("error", (err) => {
      // Emitted when spawning failed (then "close" may not follow) or a kill failed.
      if (child.pid === undefined) settle(failure ?? (() => spawnError(spec, err)));
    });
    child.on("close", (code, sig) => {
      if (failure) return settle(failure);
      if (code === 0) return settle(null);
      const tail = stderr.text();
      settle(() =>
        code === null
          ? new SubprocessError(spec.command, "signal", null, sig, tail)
          : new SubprocessError(spec.command, "exit", code, null, tail),
      );
    });
  });
}

/** `killProcessGroup` that never throws (a listener must not): `false` when nothing was signalled. */
function signalGroup(pid: number, sig: NodeJS.Signals): boolean {
  try {
    return killProcessGroup(pid, sig);
  } catch {
    // EPERM: the group now holds a process that is not ours; leave it alone.
    return false;
  }
}

function spawnError(spec: ProcessSpec, err: unknown): SubprocessError {
  const detail = err instanceof Error ? err.message : String(err);
  return new SubprocessError(spec.command, "spawn", null, null, "", detail, { cause: err });
}

/** What was thrown, as an `Error` (non-errors are wrapped). */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** Why `signal` was aborted, as the error to reject with. */
export function abortReason(signal: AbortSignal): Error {
  return toError(signal.reason ?? "aborted");
}
