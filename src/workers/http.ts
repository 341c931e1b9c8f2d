import { backoffDelay } from "../core/backoff.js";
import { ValidationError } from "../core/errors.js";
import { redact } from "../core/redact.js";
import type {
  BackoffOptions,
  HandlerFn,
  JsonValue,
  RunningTask,
  TaskContext,
} from "../core/types.js";
import { HttpError, HttpNetworkError, OutputLimitError } from "./errors.js";
import { abortReason, checkLimit, resolve, type PerTask } from "./process.js";

/**
 * A request body. Strings, bytes, `URLSearchParams` and `Blob`s are sent as they are; any other
 * JSON value (object, array, number, boolean) is sent as JSON with `content-type:
 * application/json` unless the headers set one. `null` sends no body.
 */
export type HttpBody = string | Uint8Array | ArrayBuffer | URLSearchParams | Blob | JsonValue;

/** What `retryOn` decides from: a response status, or the error of a request that got none. */
export interface RetryInfo {
  /** The response status, or `null` when the request failed without a response. */
  status: number | null;
  /** The network error (or per-request timeout) when there was no response. */
  error: unknown;
  method: string;
  /** Which try this was, from 1. */
  tryNumber: number;
}

export interface HttpOptions<I = unknown, R = unknown> {
  /**
   * The URL to request, as given or computed from the task. Required. A user name and password
   * in it are sent as Basic authorization (unless `headers` set one) and never shown in errors.
   */
  url: PerTask<I, string | URL>;
  /** HTTP method. Default: `"GET"`. */
  method?: PerTask<I, string>;
  /** Request headers. Default: none beyond what `fetch` adds (and the JSON content type). */
  headers?: PerTask<I, Record<string, string>>;
  /**
   * The request body (see `HttpBody`). Default: for methods other than GET and HEAD, the task's
   * input as JSON (no body when the input is `undefined`); for GET and HEAD, no body.
   */
  body?: PerTask<I, HttpBody>;
  /**
   * Time allowed for one request, from sending it to reading the response body, in ms. A request
   * that runs out of time counts as a network error (and is retried). Default: 30 000.
   */
  timeoutMs?: number;
  /**
   * Further tries after the first, within one attempt, for what `retryOn` accepts. Each try
   * waits an exponential backoff with jitter, or what the response's `Retry-After` asks for.
   * Non-idempotent requests (POST) are retried too: set `0` if a repeat would do harm.
   * Default: 3.
   */
  retries?: number;
  /** Delays between tries. Default: `{ baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 }`. */
  backoff?: BackoffOptions;
  /**
   * Longest wait honoured from a `Retry-After` header (seconds or an HTTP date), in ms; a longer
   * one is cut to this. Default: 60 000.
   */
  maxRetryAfterMs?: number;
  /** Which failures to retry. Default: network errors, timeouts, HTTP 429 and every 5xx. */
  retryOn?: (info: RetryInfo) => boolean;
  /**
   * Turns a successful (2xx) response into the task's result. Default: the body as JSON when
   * the content type says JSON (`application/json`, `…+json`), otherwise as text; `undefined`
   * for an empty body (so a 204 completes instead of tripping the quality gate's empty-result
   * retry). The default reads at most `maxResponseBytes`.
   */
  parse?: (response: Response, task: RunningTask<I>) => R | Promise<R>;
  /**
   * Most bytes of a response body the default `parse` reads; past it the attempt fails with an
   * `OutputLimitError`. Default: 10 MiB.
   */
  maxResponseBytes?: number;
}

const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
/** Error bodies: how much is read, and how much of its end is kept in `HttpError.bodyTail`. */
const ERROR_BODY_READ_BYTES = 64 * 1024;
const ERROR_BODY_TAIL_CHARS = 2_048;

/** The default `retryOn`: no response, 429, or 5xx. */
export function defaultRetryOn(info: RetryInfo): boolean {
  return info.status === null || info.status === 429 || info.status >= 500;
}

/**
 * How long a `Retry-After` header asks to wait, in ms: delay-seconds or an HTTP date (relative
 * to `now`). `null` when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The URL as it may be shown: no user name or password, no fragment, secrets redacted. */
export function safeUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  copy.hash = "";
  return redact(copy.href);
}

function isJsonType(contentType: string | null): boolean {
  if (!contentType) return false;
  const mime = contentType.split(";")[0]!.trim().toLowerCase();
  return mime === "application/json" || mime.endsWith("+json");
}

/** Reads at most `max` bytes of the body; `truncated` when there was more. */
async function readBody(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: "", truncated: false };
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.length > max) {
      chunks.push(value.subarray(0, max - size));
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    size += value.length;
  }
  return { text: Buffer.concat(chunks).toString("utf8"), truncated };
}

/** The redacted end of an error response's body. */
async function bodyTail(res: Response): Promise<string> {
  let text: string;
  try {
    ({ text } = await readBody(res, ERROR_BODY_READ_BYTES));
  } catch {
    return "";
  }
  // Redact before cutting, so a secret is never split into a part the patterns miss.
  text = redact(text).trim();
  return text.length > ERROR_BODY_TAIL_CHARS ? `…${text.slice(-ERROR_BODY_TAIL_CHARS)}` : text;
}

async function parseDefault(res: Response, maxBytes: number, url: string): Promise<unknown> {
  const { text, truncated } = await readBody(res, maxBytes);
  if (truncated) throw new OutputLimitError("response", maxBytes, url);
  if (text.trim() === "") return undefined;
  if (!isJsonType(res.headers.get("content-type"))) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`response from ${url} is not valid JSON: ${(err as Error).message}`);
  }
}

function encodeBody(
  body: HttpBody | undefined,
  headers: Headers,
): string | Uint8Array | ArrayBuffer | URLSearchParams | Blob | undefined {
  if (body === undefined || body === null) return undefined;
  if (
    typeof body === "string" ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    body instanceof URLSearchParams ||
    body instanceof Blob
  ) {
    return body;
  }
  if (!headers.has("content-type")) headers.set("content-type", "application/json");
  return JSON.stringify(body);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    if (signal.aborted) return fail(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      fail(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      done();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

type TryOutcome<R> =
  | { kind: "ok"; value: R }
  | { kind: "status"; status: number; retryAfter: string | null; bodyTail: string }
  | { kind: "network"; error: unknown; timedOut: boolean };

/**
 * A worker that makes an HTTP request for each task with `fetch` and returns the parsed
 * response. Network errors, per-request timeouts, 429 and 5xx are retried within the attempt
 * (exponential backoff with jitter, or the server's `Retry-After`, capped); other non-2xx
 * statuses fail at once with an `HttpError`. When `ctx.signal` aborts (cancel, the engine's
 * `timeoutMs`, shutdown) the request in flight or the wait before the next try ends at once.
 *
 * @example
 * engine.register("notify", http({ url: "https://hooks.example.com/notify", method: "POST" }));
 */
export function http<I = unknown, R = unknown>(opts: HttpOptions<I, R>): HandlerFn<I, Awaited<R>> {
  if (!opts || opts.url === undefined) throw new ValidationError("is required", "url");
  const timeoutMs = checkLimit(opts.timeoutMs, "timeoutMs", DEFAULT_TIMEOUT_MS);
  const maxRetryAfterMs = checkLimit(
    opts.maxRetryAfterMs,
    "maxRetryAfterMs",
    DEFAULT_MAX_RETRY_AFTER_MS,
  );
  const maxBytes = checkLimit(
    opts.maxResponseBytes,
    "maxResponseBytes",
    DEFAULT_MAX_RESPONSE_BYTES,
  );
  const retries = opts.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new ValidationError("must be a non-negative integer", "retries");
  }
  const backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  const retryOn = opts.retryOn ?? defaultRetryOn;

  return async (task: RunningTask<I>, ctx: TaskContext): Promise<Awaited<R>> => {
    let url: URL;
    try {
      url = new URL(resolve(opts.url, task));
    } catch {
      throw new ValidationError("is not a valid URL", "url");
    }
    const shownUrl = safeUrl(url);
    const method = (opts.method === undefined ? "GET" : resolve(opts.method, task)).toUpperCase();
    const headerValues = opts.headers === undefined ? {} : resolve(opts.headers, task);
    const canHaveBody = method !== "GET" && method !== "HEAD";
    const rawBody =
      opts.body !== undefined
        ? resolve(opts.body, task)
        : canHaveBody
          ? (task.input as JsonValue | undefined)
          : undefined;
    const headers = new Headers(headerValues);
    // fetch refuses URLs with credentials: send them as Basic auth, as browsers and curl do.
    if (url.username || url.password) {
      if (!headers.has("authorization")) {
        const user = decodeURIComponent(url.username);
        const pass = decodeURIComponent(url.password);
        headers.set("authorization", `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`);
      }
      url.username = "";
      url.password = "";
    }
    const body = encodeBody(rawBody, headers);
    const parse = async (res: Response): Promise<Awaited<R>> =>
      opts.parse
        ? await opts.parse(res, task)
        : ((await parseDefault(res, maxBytes, shownUrl)) as Awaited<R>);

    /** One request, with its own timeout, ended early when the attempt is aborted. */
    const tryOnce = async (): Promise<TryOutcome<Awaited<R>>> => {
      const controller = new AbortController();
      let timedOut = false;
      const onAbort = () => controller.abort(abortReason(ctx.signal));
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      let responded = false;
      try {
        const response = await fetch(url, { method, headers, body, signal: controller.signal });
        responded = true;
        if (!response.ok) {
          // Read here, under the timeout and the abort: a body that never ends must not hang us.
          const tail = await bodyTail(response);
          if (ctx.signal.aborted) throw abortReason(ctx.signal);
          const retryAfter = response.headers.get("retry-after");
          return { kind: "status", status: response.status, retryAfter, bodyTail: tail };
        }
        return { kind: "ok", value: await parse(response) };
      } catch (error) {
        if (ctx.signal.aborted) throw abortReason(ctx.signal);
        // A connection lost while the default parse reads the body is a network error too; a
        // limit, bad JSON or a custom parse's own error is not.
        const network =
          !responded || timedOut || (opts.parse === undefined && error instanceof TypeError);
        if (!network) throw error;
        return { kind: "network", error, timedOut };
      } finally {
        clearTimeout(timer);
        ctx.signal.removeEventListener("abort", onAbort);
      }
    };

    for (let tryNumber = 1; ; tryNumber++) {
      if (ctx.signal.aborted) throw abortReason(ctx.signal);
      const outcome = await tryOnce();
      if (outcome.kind === "ok") return outcome.value;
      const status = outcome.kind === "status" ? outcome.status : null;
      const wanted = retryOn({
        status,
        error: outcome.kind === "network" ? outcome.error : null,
        method,
        tryNumber,
      });
      if (!wanted || tryNumber > retries) {
        if (outcome.kind === "network") {
          throw new HttpNetworkError(method, shownUrl, outcome.timedOut, tryNumber, {
            cause: outcome.error,
          });
        }
        throw new HttpError(outcome.status, method, shownUrl, outcome.bodyTail, wanted);
      }
      let delay = backoffDelay(tryNumber, backoff);
      const asked = outcome.kind === "status" ? parseRetryAfter(outcome.retryAfter) : null;
      if (asked !== null) delay = Math.min(asked, maxRetryAfterMs);
      ctx.log.debug(
        { url: shownUrl, method, status, tryNumber, delayMs: delay },
        "http request failed; retrying",
      );
      await sleep(delay, ctx.signal);
    }
  };
}
