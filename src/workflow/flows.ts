import type { Engine } from "../core/engine.js";
import { InvalidTransitionError, ValidationError } from "../core/errors.js";
import { timeOrderedIds } from "../core/ids.js";
import { assertName } from "../core/task-request.js";
import { isTerminal, type Page, type TaskRequest, type TaskStatus } from "../core/types.js";
import { FLOW_STATUSES, type FlowRow, type FlowStatus } from "../store/flows.js";
import { FlowNotFoundError } from "./errors.js";

export type { FlowStatus } from "../store/flows.js";

/**
 * One task of a flow: a task request (type, input, priority, labels…) with a `key` unique in the
 * flow, and `dependsOn` naming other keys. Tenant and project come from the flow.
 */
export interface FlowTaskDefinition<I = unknown> extends Omit<
  TaskRequest<I>,
  "dependsOn" | "tenant" | "project" | "idempotencyKey"
> {
  key: string;
  dependsOn?: string[];
}

/** What `engine.flow` takes (and `pipeline` / `fanOut` return). */
export interface FlowDefinition {
  name: string;
  tasks: FlowTaskDefinition[];
  tenant?: string;
  project?: string;
}

export interface FlowTask {
  key: string;
  taskId: string;
  type: string;
  /** The task's status; `null` once retention purged its row. */
  status: TaskStatus | null;
  /** Keys. */
  dependsOn: string[];
}

/** A flow as read back. Its status is derived from its tasks whenever it is read. */
export interface Flow {
  id: string;
  name: string;
  status: FlowStatus;
  tenant: string;
  project: string;
  createdAt: Date;
  /** When its last task ended, once all have; `null` while any runs (even if it already failed). */
  completedAt: Date | null;
  tasks: FlowTask[];
}

export interface FlowListFilter {
  status?: FlowStatus;
  tenant?: string;
  project?: string;
  /** 1–1000, default 100. */
  limit?: number;
  cursor?: string;
}

/** A step of `pipeline` / `fanOut`: a flow task whose `key` defaults to its `type`. */
export type FlowStep<I = unknown> = Omit<FlowTaskDefinition<I>, "key" | "dependsOn"> & {
  key?: string;
};

export interface FlowScope {
  tenant?: string;
  project?: string;
}

/** Tasks that run one after the other: each step depends on the previous one. */
export function pipeline(name: string, steps: FlowStep[], scope: FlowScope = {}): FlowDefinition {
  if (!Array.isArray(steps)) throw new ValidationError("must be an array of steps", "steps");
  const tasks = steps.map((s, i) => {
    const key = s?.key ?? s?.type;
    const prev = i === 0 ? undefined : (steps[i - 1]?.key ?? steps[i - 1]?.type);
    return { ...s, key, ...(prev === undefined ? {} : { dependsOn: [prev] }) };
  });
  return { name, tasks, ...scope };
}

/**
 * Tasks that run in parallel, then optionally one `then` task that depends on all of them (a
 * join). `then` runs only if every parallel task completed; if one fails, it is cancelled.
 */
export function fanOut(
  name: string,
  spec: { tasks: FlowStep[]; then?: FlowStep },
  scope: FlowScope = {},
): FlowDefinition {
  if (!spec || !Array.isArray(spec.tasks))
    throw new ValidationError("must be an array of steps", "tasks");
  const tasks: FlowTaskDefinition[] = spec.tasks.map((s) => ({ ...s, key: s?.key ?? s?.type }));
  if (spec.then) {
    tasks.push({
      ...spec.then,
      key: spec.then.key ?? spec.then.type,
      dependsOn: tasks.map((t) => t.key),
    });
  }
  return { name, tasks, ...scope };
}

const MAX_FLOW_TASKS = 10_000;
const toDate = (ms: number | null) => (ms === null ? null : new Date(ms));

function toFlow(r: FlowRow): Flow {
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    tenant: r.tenant,
    project: r.project,
    createdAt: new Date(r.createdAt),
    completedAt: toDate(r.completedAt),
    tasks: r.tasks.map((t) => ({ ...t })),
  };
}

/**
 * Orders the keys so that every dependency comes before its dependents (the store inserts in
 * that order), or throws a `ValidationError` naming a key on a cycle.
 */
function topologicalOrder(tasks: FlowTaskDefinition[]): number[] {
  const index = new Map(tasks.map((t, i) => [t.key, i]));
  const state = new Array<0 | 1 | 2>(tasks.length).fill(0); // unvisited, on the path, done
  const order: number[] = [];
  const path: number[] = [];
  const visit = (i: number): void => {
    if (state[i] === 2) return;
    if (state[i] === 1) {
      const cycle = [...path.slice(path.indexOf(i)), i].map((j) => tasks[j]!.key);
      throw new ValidationError(`dependency cycle: ${cycle.join(" → ")}`, `tasks[${i}].dependsOn`);
    }
    state[i] = 1;
    path.push(i);
    for (const dep of tasks[i]!.dependsOn ?? []) visit(index.get(dep)!);
    path.pop();
    state[i] = 2;
    order.push(i);
  };
  // Iterative outer loop; the recursion depth is the longest dependency chain.
  for (let i = 0; i < tasks.length; i++) visit(i);
  return order;
}

function checkDefinition(def: FlowDefinition): void {
  if (def === null || typeof def !== "object")
    throw new ValidationError("must be an object", "flow");
  assertName(def.name, "name");
  if (!Array.isArray(def.tasks) || def.tasks.length === 0)
    throw new ValidationError("must be a non-empty array", "tasks");
  if (def.tasks.length > MAX_FLOW_TASKS)
    throw new ValidationError(`at most ${MAX_FLOW_TASKS} tasks per flow`, "tasks");
  const keys = new Set<string>();
  def.tasks.forEach((t, i) => {
    if (t === null || typeof t !== "object")
      throw new ValidationError("must be an object", `tasks[${i}]`);
    const key = assertName(t.key, `tasks[${i}].key`);
    if (keys.has(key)) throw new ValidationError(`duplicate key "${key}"`, `tasks[${i}].key`);
    keys.add(key);
    for (const field of ["tenant", "project", "idempotencyKey"] as const) {
      if ((t as unknown as Record<string, unknown>)[field] !== undefined) {
        throw new ValidationError(
          field === "idempotencyKey"
            ? "flow tasks cannot have one (the flow maps keys to new task ids)"
            : "set it on the flow, not on its tasks",
          `tasks[${i}].${field}`,
        );
      }
    }
  });
  def.tasks.forEach((t, i) => {
    const deps = t.dependsOn ?? [];
    if (!Array.isArray(deps) || deps.some((d) => typeof d !== "string"))
      throw new ValidationError("must be an array of keys", `tasks[${i}].dependsOn`);
    for (const d of deps) {
      if (!keys.has(d)) {
        throw new ValidationError(
          `task "${t.key}" depends on unknown key "${d}"`,
          `tasks[${i}].dependsOn`,
        );
      }
    }
  });
}

/** `engine.flows`: read, list and cancel flows. Create them with `engine.flow(def)`. */
export class Flows {
  private readonly ids = timeOrderedIds();

  constructor(private readonly engine: Engine) {}

  /** Validate the whole DAG, then insert the flow and all its tasks in one transaction. */
  async create(def: FlowDefinition): Promise<Flow> {
    checkDefinition(def);
    const order = topologicalOrder(def.tasks);
    const tenant = def.tenant === undefined ? undefined : assertName(def.tenant, "tenant");
    const project = def.project === undefined ? undefined : assertName(def.project, "project");
    const id = this.ids();
    const reqs: TaskRequest[] = order.map((i) => {
      const { key, dependsOn: _deps, ...req } = def.tasks[i]!;
      return {
        ...req,
        ...(tenant === undefined ? {} : { tenant }),
        ...(project === undefined ? {} : { project }),
        // The flow is findable from its tasks: `engine.list({ labels: { "loom.flow": id } })`.
        labels: { ...req.labels, "loom.flow": id, "loom.flowKey": key },
      };
    });
    let rows;
    try {
      rows = await this.engine.prepareTasks(reqs);
    } catch (err) {
      // Name the field by the flow's own index, not the topological one.
      if (err instanceof ValidationError && err.field) {
        const m = /^tasks\[(\d+)\]/.exec(err.field);
        if (m) {
          const field = err.field.replace(m[0], `tasks[${order[Number(m[1])]}]`);
          throw new ValidationError(err.message.slice(err.field.length + 2), field, err.issues);
        }
      }
      throw err;
    }
    const taskIdOf = new Map<string, string>();
    order.forEach((i, n) => taskIdOf.set(def.tasks[i]!.key, rows[n]!.id));
    order.forEach((i, n) => {
      rows[n]!.dependsOn = (def.tasks[i]!.dependsOn ?? []).map((k) => taskIdOf.get(k)!);
    });
    const first = rows[0]!;
    const store = await this.engine.storeReady();
    const outcomes = await store.flows.insertFlow(
      {
        id,
        name: def.name,
        tenant: first.tenant,
        project: first.project,
        createdAt: first.createdAt,
        tasks: def.tasks.map((t) => ({
          key: t.key,
          taskId: taskIdOf.get(t.key)!,
          type: t.type,
          dependsOn: [...new Set(t.dependsOn ?? [])],
        })),
      },
      rows,
    );
    this.engine.tasksInserted(rows, outcomes);
    return this.get(id);
  }

  /** The flow, or `FlowNotFoundError`. */
  async get(id: string): Promise<Flow> {
    const store = await this.engine.storeReady();
    const row = await store.flows.getFlow(id);
    if (!row) throw new FlowNotFoundError(id);
    return toFlow(row);
  }

  /** The flow a task belongs to, or `null` for a task outside any flow. */
  async ofTask(taskId: string): Promise<Flow | null> {
    const store = await this.engine.storeReady();
    const id = await store.flows.flowOfTask(taskId);
    return id === null ? null : this.get(id);
  }

  /** A page of flows, newest first; pass `nextCursor` back as `cursor`. */
  async list(filter: FlowListFilter = {}): Promise<Page<Flow>> {
    if (filter.status !== undefined && !FLOW_STATUSES.includes(filter.status)) {
      throw new ValidationError(`must be one of ${FLOW_STATUSES.join(", ")}`, "status");
    }
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ValidationError("must be an integer from 1 to 1000", "limit");
    const store = await this.engine.storeReady();
    const page = await store.flows.listFlows({ ...filter, limit });
    return { items: page.items.map(toFlow), nextCursor: page.nextCursor };
  }

  /**
   * Cancel every task of the flow that has not ended (running attempts see `ctx.signal` abort).
   * `InvalidTransitionError` when all its tasks had already ended.
   */
  async cancel(id: string, reason = `flow ${id} cancelled`): Promise<Flow> {
    const flow = await this.get(id);
    const open = flow.tasks
      .filter((t) => t.status !== null && !isTerminal(t.status))
      .map((t) => t.taskId);
    if (open.length === 0) {
      throw new InvalidTransitionError(id, flow.status, "cancelled", "the flow has already ended");
    }
    await this.engine.cancelTasks(open, reason);
    return this.get(id);
  }
}
