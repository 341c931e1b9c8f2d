import { usageError } from "./errors.js";

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `7d`, `12h`, `30m`, `45s`, `500ms`, `1w`, or combined `1d12h`, to milliseconds. */
export function parseDuration(text: string, what = "duration"): number {
  const s = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (s === "" || end !== s.length) {
    throw usageError(`${what}: expected a duration like 7d, 12h, 30m, 45s or 500ms, got "${text}"`);
  }
  return Math.round(total);
}

/** A non-negative integer flag value. */
export function parseIntFlag(
  text: string,
  what: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!/^-?\d+$/.test(text.trim())) throw usageError(`${what}: expected an integer, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw usageError(`${what}: must be between ${min} and ${max}, got ${n}`);
  return n;
}
