import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ValidationError } from "./errors.js";
import type { NewTask } from "../store/store.js";
import {
  MAX_PRIORITY,
  MIN_PRIORITY,
  type BackoffOptions,
  type CrashPolicy,
  type TaskRequest,
} from "./types.js";

/** Per-type settings written onto every task row at submit, so any engine can apply them later. */
export interface TypeSettings {
  lane: string | null;
  maxRetries: number;
  backoff: BackoffOptions | null;
  crashPolicy: CrashPolicy;
  /** The crash policy was chosen by the user (workflow activities default to "retry" otherwise). */
  crashPolicyExplicit?: boolean;
  maxCrashes: number;
  leaseMs: number;
  timeoutMs: number | null;
  schema?: StandardSchemaV1 | undefined;
}

const MAX_NAME = 200;

export function assertName(value: unknown, field: string): string {
  if (typeof value !== "string" || value.trim() === "")
    throw new ValidationError("must be a non-empty string", field);
  if (value.length > MAX_NAME)
    throw new ValidationError(`must be at most ${MAX_NAME} characters`, field);
  return value;
}

function optionalName(value: unknown, field: string): string | null {
  return value === undefined || value === null ? null : assertName(value, field);
}

export function assertNonNegativeInt(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new ValidationError("must be a non-negative integer", field);
  }
  return value;
}

export function assertPositiveMs(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError("must be a positive number of milliseconds", field);
  }
  return Math.ceil(value);
}

/** JSON text of `value`, refusing what JSON would silently drop or change (functions, NaN, bigint, cycles). */
export function toJson(value: unknown, field: string): string | null {
  if (value === undefined) return null;
  assertJsonSafe(value, field, "top level", 0);
  try {
    return JSON.stringify(value);
  } catch (err) {
    // Cycles (and toJSON methods that throw) end here.
    throw new ValidationError(`is not JSON-serialisable: ${(err as Error).message}`, field);
  }
}

/**
 * Refuses what JSON.stringify would silently drop or change: functions, symbols, bigints and
 * non-finite numbers. A plain walk: cheaper than a replacer, which is called for every key.
 */
function assertJsonSafe(v: unknown, field: string, at: string, depth: number): void {
  switch (typeof v) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(v)) {
        throw new ValidationError(`is not JSON-serialisable (${String(v)} at ${at})`, field);
      }
      return;
    case "function":
    case "symbol":
    case "bigint":
      throw new ValidationError(`is not JSON-serialisable (${typeof v} at ${at})`, field);
    case "object": {
      if (v === null || depth > 64) return; // deeper than this: JSON.stringify reports cycles
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) assertJsonSafe(v[i], field, `[${i}]`, depth + 1);
        return;
      }
      if (typeof (v as { toJSON?: unknown }).toJSON === "function") return; // Date and friends
      for (const key in v) {
        if (Object.prototype.hasOwnProperty.call(v, key)) {
          assertJsonSafe((v as Record<string, unknown>)[key], field, `"${key}"`, depth + 1);
        }
      }
      return;
    }
    default:
      return; // undefined inside an object is dropped by JSON, as it is by JavaScript spreads
  }
}

function toTime(value: unknown, field: string): number {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === "string"
        ? Date.parse(value)
        : (value as number);
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new ValidationError("must be a Date, an ISO time or epoch ms", field);
  return ms;
}

function stringRecord(value: unknown, field: string): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value))
    throw new ValidationError("must be an object of strings", field);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw new ValidationError(`must be a string`, `${field}.${k}`);
  }
  return Object.keys(value).length ? (value as Record<string, string>) : null;
}

const KNOWN_FIELDS = new Set([
  "type",
  "input",
  "tenant",
  "project",
  "caller",
  "priority",
  "runAt",
  "dependsOn",
  "idempotencyKey",
  "labels",
  "metadata",
  "timeoutMs",
  "maxRetries",
  "requestId",
]);

export interface RequestContext {
  id: string;
  now: number;
  settings: TypeSettings;
  requestId: string | null;
  traceContext: Record<string, string> | null;
  workflowId?: string | null;
  /** Prefix for field names in errors, e.g. `tasks[3].` */
  at?: string;
}

/**
 * Checks a task request and turns it into a row. Every problem is a `ValidationError` naming the
 * field; nothing reaches the store unless the whole request is valid. `input` is the value after
 * schema validation (see `validateInput`).
 */
export function toNewTask(req: TaskRequest, input: unknown, c: RequestContext): NewTask {
  const at = c.at ?? "";
  if (req === null || typeof req !== "object")
    throw new ValidationError("must be an object", at || "request");
  for (const key of Object.keys(req)) {
    if (!KNOWN_FIELDS.has(key)) throw new ValidationError(`unknown field`, `${at}${key}`);
  }
  const type = assertName(req.type, `${at}type`);
  const priority = req.priority ?? 1;
  if (
    typeof priority !== "number" ||
    !Number.isInteger(priority) ||
    priority < MIN_PRIORITY ||
    priority > MAX_PRIORITY
  ) {
    throw new ValidationError(
      `must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}`,
      `${at}priority`,
    );
  }
  const dependsOn = req.dependsOn ?? [];
  if (!Array.isArray(dependsOn) || dependsOn.some((d) => typeof d !== "string" || d === "")) {
    throw new ValidationError("must be an array of task ids", `${at}dependsOn`);
  }
  const metadata = req.metadata ?? null;
  if (metadata !== null && (typeof metadata !== "object" || Array.isArray(metadata))) {
    throw new ValidationError("must be an object", `${at}metadata`);
  }
  if (metadata !== null) toJson(metadata, `${at}metadata`);
  const timeoutMs =
    req.timeoutMs === undefined
      ? c.settings.timeoutMs
      : assertPositiveMs(req.timeoutMs, `${at}timeoutMs`);
  const maxRetries =
    req.maxRetries === undefined
      ? c.settings.maxRetries
      : assertNonNegativeInt(req.maxRetries, `${at}maxRetries`);
  return {
    id: c.id,
    type,
    input: toJson(input, `${at}input`),
    tenant: optionalName(req.tenant, `${at}tenant`) ?? "default",
    project: optionalName(req.project, `${at}project`) ?? "default",
    caller: optionalName(req.caller, `${at}caller`),
    priority,
    lane: c.settings.lane,
    labels: stringRecord(req.labels, `${at}labels`),
    metadata: metadata && Object.keys(metadata).length ? metadata : null,
    maxRetries,
    backoff: c.settings.backoff,
    crashPolicy: c.settings.crashPolicy,
    maxCrashes: c.settings.maxCrashes,
    leaseMs: c.settings.leaseMs,
    timeoutMs,
    runAt: req.runAt === undefined ? c.now : toTime(req.runAt, `${at}runAt`),
    dependsOn: [...new Set(dependsOn)],
    idempotencyKey: optionalName(req.idempotencyKey, `${at}idempotencyKey`),
    requestId:
      req.requestId === undefined ? c.requestId : assertName(req.requestId, `${at}requestId`),
    workflowId: c.workflowId ?? null,
    traceContext: c.traceContext,
    createdAt: c.now,
  };
}

/**
 * Runs a Standard Schema validator. Returns the validated value synchronously when the schema is
 * synchronous (so `submit(req, { tx })` can stay inside a synchronous SQLite transaction).
 */
export function validateInput(
  schema: StandardSchemaV1 | undefined,
  input: unknown,
  field: string,
): unknown {
  if (!schema) return input;
  const result = schema["~standard"].validate(input);
  const finish = (r: StandardSchemaV1.Result<unknown>) => {
    if (r.issues) {
      const issues = r.issues.map((i) => ({
        path: (i.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join("."),
        message: i.message,
      }));
      const first = issues[0];
      throw new ValidationError(
        first ? `${first.path ? `${first.path}: ` : ""}${first.message}` : "is invalid",
        field,
        issues,
      );
    }
    return r.value;
  };
  return result instanceof Promise ? result.then(finish) : finish(result);
}

/** A progress report: a number from 0 to 100. */
export function assertProgress(pct: unknown): number {
  if (typeof pct !== "number" || !Number.isFinite(pct) || pct < 0 || pct > 100) {
    throw new ValidationError("must be a number from 0 to 100", "progress");
  }
  return pct;
}
