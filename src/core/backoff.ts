import type { BackoffOptions } from "./types.js";

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  baseMs: 1_000,
  maxMs: 60_000,
  factor: 2,
  jitter: 0.2,
};

/** Delay before retry number `retry` (1 for the first retry): exponential, capped, jittered. */
export function backoffDelay(
  retry: number,
  opts: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { baseMs, maxMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...opts };
  const raw = Math.min(maxMs, baseMs * Math.pow(factor, Math.max(0, retry - 1)));
  const spread = raw * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(maxMs, raw + spread)));
}

/**
 * When a failed attempt runs again, or `null` when it fails for good. Failed attempts so far,
 * this one included, are `attempt - crashCount`: crash returns do not use up `maxRetries`.
 */
export function retryAt(
  a: { attempt: number; crashCount: number; maxRetries: number },
  retryable: boolean,
  now: number,
  backoff?: BackoffOptions,
): number | null {
  const used = a.attempt - a.crashCount;
  return retryable && used <= a.maxRetries ? now + backoffDelay(used, backoff) : null;
}
