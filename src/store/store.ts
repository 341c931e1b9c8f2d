import type { Logger } from "../core/logger.js";
import type { FlowStore, ScheduleStore } from "./flows.js";
import type { LaneClaim, LaneStore } from "./lanes.js";
import type {
  BackoffOptions,
  CrashPolicy,
  LoomEvent,
  Page,
  Task,
  TaskFilter,
  TaskStatus,
} from "../core/types.js";
import type { TaskStatsQuery, TaskStatsResult } from "./stats.js";
import type { TokenStore } from "./tokens.js";
import type { WorkflowStore } from "./workflows.js";

/**
 * The Store is everything Loom persists, as coarse domain operations: each method is one round
 * trip (one transaction) and leaves the database consistent on its own. Stores hold all SQL;
 * nothing above this interface knows which database it talks to. Every behaviour is pinned by
 * the conformance suite in `store/conformance`, which each store must pass.
 *
 * Times are epoch milliseconds passed in by the engine (its injected clock), never read from the
 * database server, so a manual clock in tests moves everything.
 */
export interface Store extends LaneStore, WorkflowStore {
  /** `sqlite` or `postgres`: for logs and docs only, never for branching above the store. */
  readonly dialect: string;
  readonly capabilities: StoreCapabilities;
  /** Cross-process event relay, when the store offers one. */
  readonly relay?: EventRelay;
  /** Flows (task DAGs): see `store/flows.ts`. */
  readonly flows: FlowStore;
  /** Cron schedules: see `store/flows.ts`. */
  readonly schedules: ScheduleStore;
  /** Stored access tokens (`loom token create`), when the store keeps them. */
  readonly tokens?: TokenStore;
  /** The engine hands the store its logger (a store given its own logger keeps that one). */
  useLogger?(logger: Logger): void;

  /** Apply pending migrations (idempotent; safe when several processes start at once). */
  migrate(): Promise<void>;
  /** Release connections the store opened itself. Idempotent. */
  close(): Promise<void>;

  /**
   * Insert tasks, all or nothing. A task whose `(tenant, idempotencyKey)` already exists is not
   * inserted; its outcome names the existing id with `created: false`. Throws `ValidationError`
   * (and inserts nothing) when a dependency id does not exist in the task's tenant.
   * `tx` is the caller's own transaction handle (store-specific).
   */
  insertTasks(tasks: NewTask[], tx?: unknown): Promise<InsertOutcome[]>;

  /**
   * `insertTasks`, done before returning, for stores whose driver is synchronous (SQLite): lets
   * `submit(req, { tx })` run inside the caller's synchronous transaction and throw into it.
   */
  insertTasksNow?(tasks: NewTask[], tx?: unknown): InsertOutcome[];

  getTask(id: string): Promise<Task | null>;
  listTasks(filter: TaskFilter): Promise<Page<Task>>;
  countTasks(filter: TaskFilter): Promise<number>;

  /**
   * The dispatch loop's one write per tick: settle finished attempts, then claim up to
   * `claim.limit` ready tasks of `claim.types` straight into `running` for `claim.engineName`.
   */
  exchange(req: ExchangeRequest): Promise<ExchangeResult>;

  /**
   * Work stealing for external agents: claim the best ready task (priority, then age) into
   * `claimed`, unless `agent` already holds `max` claimed or running tasks (then `null`).
   */
  claimForAgent(req: AgentClaimRequest): Promise<Task | null>;

  /**
   * Renew one attempt's lease, optionally recording progress; `claimed` becomes `running`.
   * Fenced: returns `{ ok: false }` when the attempt no longer owns the task.
   */
  touch(req: TouchRequest): Promise<TouchOutcome>;

  /** Renew the leases of many attempts; returns the ids whose attempt no longer owns the task. */
  heartbeatMany(items: AttemptRef[], now: number): Promise<string[]>;

  /** Cancel non-terminal tasks (by ids, or every match of a filter) and, transitively, their dependents. */
  cancel(
    target: { ids: string[] } | { filter: TaskFilter },
    reason: string,
    now: number,
  ): Promise<TaskChange[]>;

  /** Attempts whose lease expired: apply each task's crash policy. */
  rescueExpired(now: number, limit: number): Promise<TaskChange[]>;

  /** Every claimed or running attempt of `engineName`: apply each task's crash policy. */
  recoverEngine(engineName: string, now: number): Promise<TaskChange[]>;

  /** `retrying` tasks whose backoff elapsed become `pending`; returns how many. */
  promoteDue(now: number): Promise<number>;

  /** The earliest `runAt` after `now` of a waiting task of these types, or `null`. */
  nextRunAt(types: string[], now: number): Promise<number | null>;

  /** Where a task stands among the ready tasks of its type; `null` only for an unknown id. */
  queuePosition(id: string, now: number): Promise<QueuePosition | null>;

  /**
   * Delete terminal tasks that ended before `before` (only `scope`'s tenant / project, when
   * given); returns how many.
   */
  purge(before: number, statuses: TaskStatus[], scope?: PurgeScope): Promise<number>;

  /** Counts by status and per-minute throughput (see `store/stats.ts`). */
  taskStats(query: TaskStatsQuery): Promise<TaskStatsResult>;

  /**
   * Call `listener` soon after another process (or connection) writes to the store, so idle
   * engines wake without polling the task table. Returns an idempotent unsubscribe.
   */
  onExternalChange(listener: () => void): () => void;
}

export interface StoreCapabilities {
  /** Accepts `submit(req, { tx })` with this kind of handle. */
  transactionalEnqueue: boolean;
  /** Other processes on the same database can dispatch and observe. */
  multiProcess: boolean;
  /**
   * How many `exchange` calls one engine may have in flight at once (default 1). Above 1, the
   * settling of one batch overlaps the claiming of the next.
   */
  concurrentExchanges?: number;
}

export interface PurgeScope {
  tenant?: string;
  project?: string;
}

export interface NewTask {
  id: string;
  type: string;
  /** JSON text, or `null` for no input. */
  input: string | null;
  tenant: string;
  project: string;
  caller: string | null;
  priority: number;
  lane: string | null;
  labels: Record<string, string> | null;
  metadata: Record<string, unknown> | null;
  maxRetries: number;
  backoff: BackoffOptions | null;
  crashPolicy: CrashPolicy;
  maxCrashes: number;
  leaseMs: number;
  timeoutMs: number | null;
  runAt: number;
  dependsOn: string[];
  idempotencyKey: string | null;
  requestId: string | null;
  workflowId: string | null;
  traceContext: Record<string, string> | null;
  createdAt: number;
}

/** Enough of a task to describe a change to subscribers. */
export interface TaskRef {
  id: string;
  type: string;
  tenant: string;
  project: string;
  requestId: string | null;
  workflowId: string | null;
  attempt: number;
}

export interface TaskChange extends TaskRef {
  status: TaskStatus;
  error: string | null;
}

export interface InsertOutcome {
  id: string;
  created: boolean;
  status: TaskStatus;
  /** Set when the task was created already cancelled (a dependency had ended unsuccessfully). */
  error: string | null;
}

export interface AttemptRef {
  id: string;
  attemptId: string;
}

export type Settlement =
  | (AttemptRef & { kind: "complete"; result: string | null })
  | (AttemptRef & { kind: "fail"; error: string; retryAt: number | null })
  /** Give the task back (not started, or pre-empted): `pending` again, no retry used. */
  | (AttemptRef & { kind: "release" });

export interface SettleOutcome {
  id: string;
  /** False when the attempt no longer owned the task (stale): nothing was written. */
  ok: boolean;
  /** Status after the write (`ok`), or the status found (stale). */
  status: TaskStatus | null;
  /** Dependents cancelled because this task ended unsuccessfully. */
  cascade: TaskChange[];
}

export interface ClaimRequest {
  engineName: string;
  types: string[];
  /** Claim up to this many ready tasks straight into `running` (the engine's free slots). */
  limit: number;
  /**
   * Then claim up to this many more ready tasks whose crash policy is `"retry"` into `claimed`,
   * for the engine's local buffer (DESIGN §3 prefetch). Same order (priority, runAt, id); never a
   * `"fail"`-policy task. Default 0.
   */
  prefetch?: number;
  /**
   * Laned types, claimed through their lanes first (fair share and the lane's concurrency,
   * decided in the store across processes) into `running`, sharing `limit`. Never prefetched.
   */
  lanes?: LaneClaim[];
}

export interface ExchangeRequest {
  now: number;
  settle: Settlement[];
  claim: ClaimRequest | null;
}

/** What the dispatcher needs to start an attempt: the hot columns only. */
export interface ClaimedTask extends TaskRef {
  attemptId: string;
  /** JSON text or null. */
  input: string | null;
  caller: string | null;
  priority: number;
  /** JSON text or null. */
  labels: string | null;
  /** JSON text or null. */
  metadata: string | null;
  timeoutMs: number | null;
  maxRetries: number;
  crashCount: number;
  /** JSON text or null. */
  backoff: string | null;
  leaseMs: number;
  runAt: number;
  /** JSON text or null. */
  traceContext: string | null;
}

export interface ExchangeResult {
  settled: SettleOutcome[];
  /** Claimed into `running`, best first. */
  claimed: ClaimedTask[];
  /** Claimed into `claimed` for the local buffer (only with `claim.prefetch`), best first. */
  prefetched?: ClaimedTask[];
}

export interface AgentClaimRequest {
  agent: string;
  tenant?: string;
  project?: string;
  types?: string[];
  lanes?: string[];
  max: number;
  now: number;
}

export interface TouchRequest extends AttemptRef {
  now: number;
  progress?: number;
  note?: string | null;
}

export type TouchOutcome =
  | { ok: true; task: TaskRef; movedToRunning: boolean; status: TaskStatus }
  | { ok: false; status: TaskStatus | null };

export interface QueuePosition {
  /** 1-based among ready tasks of the type; 0 when not queued. */
  position: number;
  type: string;
  status: TaskStatus;
  /** False for a task that is not waiting to be claimed (running, ended, delayed or blocked). */
  queued: boolean;
}

/**
 * Relays lifecycle events between processes sharing one database, so `engine.events.subscribe`
 * sees tasks run anywhere. Optional: a store without it relays nothing. It must cost nothing on
 * the hot path while no other process listens: the engine checks `wanted` before publishing.
 */
export interface EventRelay {
  /** True while a listener in another process (another `origin`) is registered. Cheap: cached. */
  wanted(origin: string): boolean;
  /** Publish this process's events (the engine batches them). */
  publish(origin: string, events: LoomEvent[]): Promise<void>;
  /** Receive other origins' events, oldest first. Returns an idempotent stop. */
  listen(origin: string, fn: (events: LoomEvent[]) => void): () => void;
}
