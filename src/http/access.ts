import type { Engine } from "../core/engine.js";
import { TaskNotFoundError, ValidationError } from "../core/errors.js";
import { TASK_STATUSES, type Task, type TaskFilter, type TaskStatus } from "../core/types.js";
import type { Principal } from "./auth.js";
import type { TaskQuery } from "./schemas.js";

/** True when the caller may see this row: same tenant (and project, for a project-bound token). */
export function canSee(p: Principal, tenant: string, project: string): boolean {
  if (p.tenant !== undefined && p.tenant !== tenant) return false;
  if (p.project !== undefined && p.project !== project) return false;
  return true;
}

/** The task, or `TaskNotFoundError` when it does not exist or belongs to someone else. */
export async function visibleTask(engine: Engine, p: Principal, id: string): Promise<Task> {
  const task = await engine.get(id);
  if (!canSee(p, task.tenant, task.project)) throw new TaskNotFoundError(id);
  return task;
}

/** Splits repeated and comma-separated query values: `?a=x,y&a=z` → `[x, y, z]`. */
export function splitMulti(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const out = (Array.isArray(v) ? v : [v])
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return out.length > 0 ? out : undefined;
}

export function statusesOf(v: string | string[] | undefined): TaskStatus[] | undefined {
  const list = splitMulti(v);
  if (!list) return undefined;
  for (const s of list) {
    if (!(TASK_STATUSES as readonly string[]).includes(s)) {
      throw new ValidationError(`must be one of ${TASK_STATUSES.join(", ")}`, "status");
    }
  }
  return list as TaskStatus[];
}

/** A store filter from query parameters; the token's tenant and project always win. */
export function filterOf(q: Partial<TaskQuery>, p: Principal): TaskFilter {
  const filter: TaskFilter = {};
  const tenant = p.tenant ?? q.tenant;
  const project = p.project ?? q.project;
  const status = statusesOf(q.status);
  const type = splitMulti(q.type);
  if (tenant !== undefined) filter.tenant = tenant;
  if (project !== undefined) filter.project = project;
  if (status) filter.status = status;
  if (type) filter.type = type;
  if (q.lane !== undefined) filter.lane = q.lane;
  if (q.caller !== undefined) filter.caller = q.caller;
  if (q.workflowId !== undefined) filter.workflowId = q.workflowId;
  if (q.limit !== undefined) filter.limit = q.limit;
  if (q.cursor !== undefined) filter.cursor = q.cursor;
  return filter;
}
