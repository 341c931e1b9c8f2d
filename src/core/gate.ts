import type { GateCheck, GateDecision, GateInput } from "./types.js";

/**
 * The quality gate runs after a handler returns and before the task is completed. Each check
 * looks at the result and accepts, asks for a retry, or fails the task; checks compose in order
 * and the first one that does not accept decides.
 */
export const ACCEPT: GateDecision = Object.freeze({ accept: true, retry: false, reason: "pass" });

/** `""`, `null`, `[]`, `{}` and `{ content: "" }` are empty; `undefined` (no return) is not. */
export function isEmptyResult(result: unknown): boolean {
  if (result === undefined) return false;
  if (result === null) return true;
  if (typeof result === "string") return result.trim() === "";
  if (Array.isArray(result)) return result.length === 0;
  if (typeof result === "object") {
    const keys = Object.keys(result);
    if (keys.length === 0) return true;
    if (keys.length === 1 && keys[0] === "content") {
      const content = (result as { content: unknown }).content;
      return content === "" || content === null || content === undefined;
    }
  }
  return false;
}

/** Empty result → retry. */
export function emptyResult(): GateCheck {
  return ({ result }) =>
    isEmptyResult(result) ? { accept: false, retry: true, reason: "empty_output" } : ACCEPT;
}

const RATE_LIMIT_TEXT =
  /\b(rate[ _-]?limit(ed)?|too many requests|quota exceeded|resource[ _-]?exhausted|overloaded)\b|\b429\b/i;

function textOf(result: unknown): string {
  if (typeof result === "string") return result;
  if (result === null || result === undefined) return "";
  try {
    return JSON.stringify(result);
  } catch {
    return "";
  }
}

/** A result that says it was rate limited (text, or `status`/`statusCode` 429) → retry with backoff. */
export function rateLimited(): GateCheck {
  return ({ result }) => {
    if (result !== null && typeof result === "object") {
      const r = result as { status?: unknown; statusCode?: unknown };
      if (r.status === 429 || r.statusCode === 429) {
        return { accept: false, retry: true, reason: "rate_limit_error" };
      }
    }
    const text = textOf(result);
    // A long answer that mentions rate limits in passing is still an answer.
    if (text.length <= 2_000 && RATE_LIMIT_TEXT.test(text)) {
      return { accept: false, retry: true, reason: "rate_limit_error" };
    }
    return ACCEPT;
  };
}

function tokens(value: unknown): Set<string> {
  return new Set(
    textOf(value)
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter(Boolean),
  );
}

/** |A ∩ B| / |A ∪ B| of the word sets; two empty sets are identical. */
export function jaccard(a: unknown, b: unknown): number {
  const ta = tokens(a);
  const tb = tokens(b);
  if (ta.size === 0 && tb.size === 0) return 1;
  let inter = 0;
  for (const t of ta) if (tb.has(t)) inter++;
  return inter / (ta.size + tb.size - inter);
}

/**
 * The last `window` results of one task (this one included) are all at least `threshold`
 * similar to each other → fail: retrying is going round in circles.
 */
export function thrashing(opts: { window?: number; threshold?: number } = {}): GateCheck {
  const window = Math.max(2, opts.window ?? 3);
  const threshold = opts.threshold ?? 0.8;
  return ({ result, previousResults }) => {
    if (previousResults.length < window - 1) return ACCEPT;
    const recent = [...previousResults.slice(-(window - 1)), result];
    for (let i = 0; i < recent.length; i++) {
      for (let j = i + 1; j < recent.length; j++) {
        if (jaccard(recent[i], recent[j]) < threshold) return ACCEPT;
      }
    }
    return { accept: false, retry: false, reason: "thrashing" };
  };
}

/** Runs checks in order; the first that does not accept decides. */
export function composeGate(...checks: GateCheck[]): GateCheck {
  return (input: GateInput) => {
    for (const check of checks) {
      const decision = check(input);
      if (!decision.accept) return decision;
    }
    return ACCEPT;
  };
}

/** The gate every type gets unless it says otherwise: empty → retry, rate limit → retry, thrashing → fail. */
export function defaultChecks(): GateCheck[] {
  return [emptyResult(), rateLimited(), thrashing()];
}

export const checks = { emptyResult, rateLimited, thrashing };
