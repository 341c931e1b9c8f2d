/**
 * Scrubs secrets from text that is about to be stored or shown: error messages come from
 * anywhere (HTTP clients echo headers, drivers echo connection strings) and outlive the attempt.
 */
const RULES: [RegExp, string][] = [
  // credentials in URLs: scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]+@/gi, "$1:[REDACTED]@"],
  // Authorization headers and bearer tokens
  [/\b(bearer|basic)\s+[a-z0-9._~+/=-]{8,}/gi, "$1 [REDACTED]"],
  // key=value and "key": "value" pairs whose key names a secret
  [
    /(["']?\b(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token|token|secret|client[_-]?secret|password|passwd|pwd)\b["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
    "$1[REDACTED]",
  ],
  // well-known key formats
  [/\bsk-(?:ant-|proj-)?[a-z0-9_-]{16,}/gi, "[REDACTED]"],
  [/\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[a-z0-9_]{20,}/gi, "[REDACTED]"],
  [/\bxox[abposr]-[a-z0-9-]{10,}/gi, "[REDACTED]"],
  [/\bAKIA[0-9A-Z]{16}\b/g, "[REDACTED]"],
  [/\bAIza[0-9A-Za-z_-]{35}\b/g, "[REDACTED]"],
  [/\beyJ[a-z0-9_-]{10,}\.[a-z0-9_-]{10,}\.[a-z0-9_-]{10,}/gi, "[REDACTED]"],
];

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}

const MAX_ERROR_LENGTH = 8_192;

/** The text stored for a failed attempt: the error's message, redacted and bounded. */
export function errorText(err: unknown): string {
  let text: string;
  if (err instanceof Error) {
    text = err.message || err.name;
    if (err.name && err.name !== "Error" && !text.startsWith(err.name))
      text = `${err.name}: ${text}`;
  } else if (typeof err === "string") {
    text = err;
  } else {
    try {
      text = JSON.stringify(err) ?? String(err);
    } catch {
      text = String(err);
    }
  }
  // NUL cannot be stored in PostgreSQL text: left in, one bad message would fail every write
  // of the batch it settles with, again and again.
  text = redact(text).replaceAll("\u0000", "\uFFFD");
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}
