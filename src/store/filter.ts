import { ValidationError } from "../core/errors.js";
import { TASK_STATUSES, type TaskFilter, type TaskStatus } from "../core/types.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** A task filter reduced to SQL conditions, with placeholders made by the dialect. */
export interface FilterSql {
  where: string[];
  params: unknown[];
}

export interface FilterDialect {
  /** Placeholder for the next parameter (`?` or `$n`). */
  param(params: unknown[], value: unknown): string;
  /** Condition that the labels JSON column has `key` = `value`. */
  label(params: unknown[], key: string, value: string): string;
}

export function statusesOf(filter: TaskFilter): TaskStatus[] | undefined {
  if (filter.status === undefined) return undefined;
  const list = Array.isArray(filter.status) ? filter.status : [filter.status];
  for (const s of list) {
    if (!TASK_STATUSES.includes(s))
      throw new ValidationError(`unknown status ${JSON.stringify(s)}`, "status");
  }
  return list;
}

export function pageSize(filter: TaskFilter): number {
  const limit = filter.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new ValidationError(`must be an integer from 1 to ${MAX_PAGE_SIZE}`, "limit");
  }
  return limit;
}

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!id || !/^[\w:.-]+$/.test(id))
    throw new ValidationError("is not a cursor from a previous page", "cursor");
  return id;
}

/** Conditions for every field of the filter except paging. Pages run newest first (id descending). */
export function filterSql(
  filter: TaskFilter,
  dialect: FilterDialect,
  withCursor: boolean,
): FilterSql {
  const params: unknown[] = [];
  const where: string[] = [];
  const eq = (column: string, value: unknown) =>
    where.push(`${column} = ${dialect.param(params, value)}`);
  const anyOf = (column: string, values: readonly unknown[]) =>
    where.push(`${column} IN (${values.map((v) => dialect.param(params, v)).join(", ")})`);

  if (filter.tenant !== undefined) eq("tenant", filter.tenant);
  if (filter.project !== undefined) eq("project", filter.project);
  const statuses = statusesOf(filter);
  if (statuses) {
    if (statuses.length === 0) where.push("1 = 0");
    else anyOf("status", statuses);
  }
  if (filter.type !== undefined) {
    const types = Array.isArray(filter.type) ? filter.type : [filter.type];
    if (types.length === 0) where.push("1 = 0");
    else anyOf("type", types);
  }
  if (filter.lane !== undefined) eq("lane", filter.lane);
  if (filter.caller !== undefined) eq("caller", filter.caller);
  if (filter.workflowId !== undefined) eq("workflow_id", filter.workflowId);
  if (filter.labels) {
    for (const [key, value] of Object.entries(filter.labels))
      where.push(dialect.label(params, key, value));
  }
  if (withCursor && filter.cursor)
    where.push(`id < ${dialect.param(params, decodeCursor(filter.cursor))}`);
  return { where, params };
}
