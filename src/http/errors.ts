import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { isLoomError, ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/** An RFC 9457 problem document, as every error response of the HTTP API carries it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  /** For `VALIDATION`: the offending field and the individual issues. */
  field?: string;
  issues?: { path: string; message: string }[];
}

/** An error the HTTP layer raises itself (auth, limits, timeouts). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title);
    this.name = "HttpProblem";
  }
}

const problemType = (code: string) =>
  `urn:loomkit:problem:${code.toLowerCase().replace(/_/g, "-")}`;

/** HTTP status and title for each engine error code. Codes not listed are internal errors. */
const BY_CODE: Record<string, { status: number; title: string }> = {
  VALIDATION: { status: 400, title: "Invalid request" },
  TASK_NOT_FOUND: { status: 404, title: "Task not found" },
  WORKFLOW_NOT_FOUND: { status: 404, title: "Workflow not found" },
  FLOW_NOT_FOUND: { status: 404, title: "Flow not found" },
  SCHEDULE_NOT_FOUND: { status: 404, title: "Schedule not found" },
  STALE_ATTEMPT: { status: 409, title: "Stale attempt" },
  INVALID_TRANSITION: { status: 409, title: "Invalid transition" },
  ALREADY_CLAIMED: { status: 409, title: "Already claimed" },
  NOT_QUEUED: { status: 409, title: "Not queued" },
  LANE_BUSY: { status: 429, title: "Lane busy" },
  WAIT_TIMEOUT: { status: 408, title: "Wait timed out" },
  ENGINE_CLOSED: { status: 503, title: "Engine closed" },
  LANE_CLOSED: { status: 503, title: "Lane closed" },
};

const HTTP_CODES: Record<number, { code: string; title: string }> = {
  400: { code: "VALIDATION", title: "Invalid request" },
  401: { code: "UNAUTHORIZED", title: "Unauthorized" },
  403: { code: "FORBIDDEN", title: "Forbidden" },
  404: { code: "NOT_FOUND", title: "Not found" },
  405: { code: "METHOD_NOT_ALLOWED", title: "Method not allowed" },
  413: { code: "PAYLOAD_TOO_LARGE", title: "Payload too large" },
  415: { code: "UNSUPPORTED_MEDIA_TYPE", title: "Unsupported media type" },
  429: { code: "TOO_MANY_REQUESTS", title: "Too many requests" },
  503: { code: "UNAVAILABLE", title: "Service unavailable" },
  504: { code: "REQUEST_TIMEOUT", title: "Request timed out" },
};

export function problem(
  status: number,
  code: string,
  title: string,
  detail: string,
  extra: Partial<Problem> = {},
): Problem {
  return { type: problemType(code), title, status, detail, code, ...extra };
}

/**
 * Turns anything thrown into a problem document. Engine errors keep their stable `code` and their
 * (already redacted) message; anything unexpected becomes a bare 500 so that no driver or SQL
 * text ever reaches a client. The original error is logged.
 */
export function toProblem(
  err: unknown,
  logger: Logger,
): { body: Problem; headers: Record<string, string> } {
  if (err instanceof HttpProblem) {
    return { body: problem(err.status, err.code, err.title, err.message), headers: err.headers };
  }
  if (err instanceof ValidationError) {
    return {
      body: problem(400, err.code, "Invalid request", err.message, {
        ...(err.field !== undefined ? { field: err.field } : {}),
        ...(err.issues.length > 0 ? { issues: [...err.issues] } : {}),
      }),
      headers: {},
    };
  }
  if (isLoomError(err)) {
    const known = BY_CODE[err.code];
    if (known)
      return { body: problem(known.status, err.code, known.title, err.message), headers: {} };
  }
  if (err instanceof HTTPException && err.status < 500) {
    const known = HTTP_CODES[err.status] ?? { code: "HTTP_ERROR", title: "Request error" };
    // Hono's own messages (malformed JSON, media type) carry no request data.
    return {
      body: problem(err.status, known.code, known.title, err.message || known.title),
      headers: {},
    };
  }
  logger.error({ err }, "http: unexpected error");
  return {
    body: problem(500, "INTERNAL", "Internal error", "the server could not handle the request"),
    headers: {},
  };
}

export function problemResponse(c: Context, err: unknown, logger: Logger): Response {
  const { body, headers } = toProblem(err, logger);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

/** Builds a problem for a known HTTP status from the HTTP layer itself. */
export function httpProblem(
  status: number,
  detail: string,
  headers: Record<string, string> = {},
): HttpProblem {
  const known = HTTP_CODES[status] ?? { code: "HTTP_ERROR", title: "Request error" };
  return new HttpProblem(status, known.code, known.title, detail, headers);
}
