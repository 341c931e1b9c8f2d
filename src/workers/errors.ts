import { LoomError } from "../core/errors.js";
import { redact } from "../core/redact.js";

/** Why a process-based worker failed. */
export type SubprocessFailure =
  /** The command exited with a non-zero code. */
  | "exit"
  /** The command was killed by a signal it did not get from the worker. */
  | "signal"
  /** The worker's own `timeoutMs` elapsed; the process group was killed. */
  | "timeout"
  /** The command could not be started (not found, not executable, bad `cwd`…). */
  | "spawn";

/**
 * A command run by `subprocess` or `streaming` failed. `stderrTail` holds the end of what it
 * wrote to stderr, redacted; the message includes it so the stored task error explains itself.
 */
export class SubprocessError extends LoomError {
  readonly code = "SUBPROCESS";
  constructor(
    /** The program that was run (arguments are left out: they may carry secrets). */
    readonly command: string,
    readonly reason: SubprocessFailure,
    /** Exit code, or `null` when the process was killed by a signal or never started. */
    readonly exitCode: number | null,
    /** The signal that ended the process, if any. */
    readonly signal: NodeJS.Signals | null,
    /** The last bytes the process wrote to stderr, redacted (may be empty). */
    readonly stderrTail: string,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(
      redact(
        `${command} ${describe(reason, exitCode, signal, detail)}` +
          (stderrTail ? `\n${stderrTail}` : ""),
      ),
      options,
    );
  }
}

function describe(
  reason: SubprocessFailure,
  exitCode: number | null,
  signal: NodeJS.Signals | null,
  detail: string | undefined,
): string {
  switch (reason) {
    case "exit":
      return `exited with code ${exitCode}`;
    case "signal":
      return `was killed by ${signal}`;
    case "timeout":
      return `timed out${detail ? ` after ${detail}` : ""}`;
    case "spawn":
      return `could not be started${detail ? `: ${detail}` : ""}`;
  }
}

/**
 * A worker read more output than it is allowed to keep (`maxOutputBytes` of a process worker,
 * `maxResponseBytes` of an `http` worker). The process is killed, the response abandoned.
 */
export class OutputLimitError extends LoomError {
  readonly code = "OUTPUT_LIMIT";
  constructor(
    /** Where the output came from. */
    readonly source: "stdout" | "response",
    readonly limitBytes: number,
    /** The command or the URL (without credentials). */
    readonly origin: string,
  ) {
    super(redact(`${origin}: ${source} exceeded the limit of ${limitBytes} bytes`));
  }
}

/**
 * An `http` worker got a response it does not accept: a 4xx that is not retried, or a 5xx/429
 * after its retries ran out. `retryable` tells whether trying again later may help.
 */
export class HttpError extends LoomError {
  readonly code = "HTTP";
  constructor(
    readonly status: number,
    readonly method: string,
    /** The request URL without user name and password, redacted. */
    readonly url: string,
    /** The start of the response body, redacted (may be empty). */
    readonly bodyTail: string,
    /** `true` for statuses that were retried (5xx, 429 by default) and ran out of retries. */
    readonly retryable: boolean,
  ) {
    super(`${method} ${url} failed with HTTP ${status}${bodyTail ? `: ${bodyTail}` : ""}`);
  }
}

/**
 * An `http` worker got no response: the connection failed, or the per-request `timeoutMs`
 * elapsed, on every try. `cause` holds the last underlying error.
 */
export class HttpNetworkError extends LoomError {
  readonly code = "HTTP_NETWORK";
  readonly retryable = true;
  constructor(
    readonly method: string,
    /** The request URL without user name and password, redacted. */
    readonly url: string,
    /** `true` when the last try ran out of time rather than failing to connect. */
    readonly timedOut: boolean,
    /** How many requests were sent. */
    readonly tries: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${method} ${url} ${timedOut ? "timed out" : "failed"} after ${tries} ${tries === 1 ? "try" : "tries"}` +
        causeText(options?.cause),
      options,
    );
  }
}

function causeText(cause: unknown): string {
  if (!(cause instanceof Error)) return "";
  // fetch reports "fetch failed" and hides the useful part (ECONNREFUSED…) in its own cause.
  const inner = cause.cause instanceof Error ? cause.cause : null;
  const text = inner ? `${cause.message} (${inner.message})` : cause.message;
  return text ? `: ${redact(text)}` : "";
}
