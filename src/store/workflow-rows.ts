import { ValidationError } from "../core/errors.js";
import { pageSize } from "./filter.js";
import { WORKFLOW_STATUSES, type WorkflowRunFilter, type WorkflowStatus } from "./workflows.js";

// Filter conditions both SQL stores share for workflow run lists (newest first, id cursor).

export function workflowPageSize(filter: WorkflowRunFilter): number {
  return pageSize({ limit: filter.limit });
}

export function runStatuses(filter: WorkflowRunFilter): WorkflowStatus[] | undefined {
  if (filter.status === undefined) return undefined;
  const list = Array.isArray(filter.status) ? filter.status : [filter.status];
  for (const s of list) {
    if (!WORKFLOW_STATUSES.includes(s))
      throw new ValidationError(`unknown workflow status ${JSON.stringify(s)}`, "status");
  }
  return list;
}

/** SQL conditions for the filter except the cursor; `param` adds a bound value and returns its placeholder. */
export function runFilterParts(
  filter: WorkflowRunFilter,
  param: (value: unknown) => string,
): string[] {
  const where: string[] = [];
  if (filter.tenant !== undefined) where.push(`tenant = ${param(filter.tenant)}`);
  if (filter.project !== undefined) where.push(`project = ${param(filter.project)}`);
  if (filter.name !== undefined) where.push(`name = ${param(filter.name)}`);
  if (filter.parentId !== undefined) where.push(`parent_id = ${param(filter.parentId)}`);
  const statuses = runStatuses(filter);
  if (statuses) {
    if (statuses.length === 0) where.push("1 = 0");
    else where.push(`status IN (${statuses.map((s) => param(s)).join(", ")})`);
  }
  return where;
}
