import { LoomError } from "../core/errors.js";

/**
 * Exit codes (documented in docs/cli.md). Scripts may rely on them.
 *   0  success
 *   1  error (store unreachable, unexpected failure)
 *   2  bad usage: unknown command or flag, a bad value, invalid input (ValidationError)
 *   3  not found: an unknown task or token id
 *   4  the task ended unsuccessfully (`submit --wait`: failed, failed_crash or cancelled)
 *   5  timed out waiting (`submit --wait --timeout`)
 */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  taskFailed: 4,
  timeout: 5,
} as const;

/** An error the CLI reports in one line with a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);

/** The exit code an error maps to. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof LoomError) {
    switch (err.code) {
      case "VALIDATION":
        return EXIT.usage;
      case "TASK_NOT_FOUND":
      case "WORKFLOW_NOT_FOUND":
        return EXIT.notFound;
      case "WAIT_TIMEOUT":
        return EXIT.timeout;
      default:
        return EXIT.error;
    }
  }
  return EXIT.error;
}

/** One line: the error's message (and field, for a validation error). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const field = (err as { field?: unknown }).field;
  const text = err.message.split("\n")[0] ?? err.message;
  return typeof field === "string" && field !== "" && !text.includes(field)
    ? `${field}: ${text}`
    : text;
}
