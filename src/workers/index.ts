/**
 * Worker bases (`loomkit/workers`): ready-made handlers for the common kinds of task.
 *
 * - `subprocess` runs a command per task (input on stdin, result from stdout) in its own process
 *   group, which is killed as a whole on timeout or cancel.
 * - `http` makes a request per task with retries, backoff and `Retry-After`.
 * - `streaming` runs a command and turns progress lines in its output into `ctx.progress`.
 */
export { subprocess, parseOutput } from "./subprocess.js";
export type { SubprocessOptions } from "./subprocess.js";
export { streaming, defaultProgress, parseLines } from "./streaming.js";
export type { StreamingOptions, ProgressUpdate } from "./streaming.js";
export { http, defaultRetryOn, parseRetryAfter } from "./http.js";
export type { HttpOptions, HttpBody, RetryInfo } from "./http.js";
export { killProcessGroup } from "./process.js";
export type { ProcessOptions, PerTask } from "./process.js";
export { SubprocessError, OutputLimitError, HttpError, HttpNetworkError } from "./errors.js";
export type { SubprocessFailure } from "./errors.js";
