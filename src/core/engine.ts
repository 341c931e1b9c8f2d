import { hostname } from "node:os";
import type { Meter, Tracer } from "@opentelemetry/api";
import type { Attempt } from "./attempt.js";
import { systemClock, type Clock, type TimerHandle } from "./clock.js";
import { Dispatcher, type DispatcherHost, type RegisteredType } from "./dispatcher.js";
import {
  EngineClosedError,
  InvalidTransitionError,
  NotQueuedError,
  StaleAttemptError,
  TaskNotFoundError,
  ValidationError,
  WaitTimeoutError,
} from "./errors.js";
import { EventBus } from "./events.js";
import {
  EngineLanes,
  type EngineLane,
  type EngineLaneOptions,
  type EngineLaneStats,
} from "./engine-lanes.js";
import type { LaneClaim } from "../store/lanes.js";
import { composeGate, defaultChecks } from "./gate.js";
import { timeOrderedIds, type IdGenerator } from "./ids.js";
import { silentLogger, type Logger } from "./logger.js";
import { retryAt } from "./backoff.js";
import { errorText } from "./redact.js";
import { currentRequestId } from "./request-context.js";
import {
  assertName,
  assertNonNegativeInt,
  assertPositiveMs,
  assertProgress,
  toJson,
  toNewTask,
  validateInput,
  type TypeSettings,
} from "./task-request.js";
import { readStats, type EngineStats, type StatsOptions } from "./stats.js";
import { captureTraceContext, Instruments } from "./telemetry.js";
import {
  isTerminal,
  TERMINAL_STATUSES,
  type GateCheck,
  type GateDecision,
  type Handler,
  type HandlerFn,
  type LoomEvent,
  type LoomEventType,
  type Page,
  type RegisterOptions,
  type SubmitOptions,
  type Task,
  type TaskFilter,
  type TaskHandle,
  type TaskRequest,
  type TaskStatus,
  type BackoffOptions,
} from "./types.js";
import type {
  ClaimedTask,
  EventRelay,
  InsertOutcome,
  NewTask,
  Store,
  TaskChange,
  TaskRef,
} from "../store/store.js";
import { Flows, type Flow, type FlowDefinition } from "../workflow/flows.js";
import { Schedules, type Schedule, type ScheduleOptions } from "../workflow/schedules.js";
import type { EventListener } from "./events.js";
import type { EventFilter } from "./types.js";
import { WorkflowRuntime, type WorkflowEngineOptions } from "../workflow/runtime.js";
import type { WorkflowDefinition, WorkflowOptions, WorkflowsApi } from "../workflow/types.js";
import { WORKFLOW_TASK_TYPE } from "../store/workflows.js";

export interface RetentionOptions {
  /** Terminal tasks older than this are deleted. Default 24 h. */
  maxAgeMs?: number;
  /** Statuses swept. Default every terminal status. */
  statuses?: TaskStatus[];
  /** Time between sweeps. Default 1 h. */
  intervalMs?: number;
  /** Delay before the first sweep after `start()`. Default 60 s. */
  firstSweepAfterMs?: number;
}

export interface EngineOptions {
  /** This daemon's identity: boot-time recovery touches only attempts claimed under this name. */
  name?: string;
  /** Default `sqlite(".loom/loom.db")`. The engine closes it on `close()`. */
  store?: Store;
  logger?: Logger;
  meter?: Meter;
  tracer?: Tracer;
  clock?: Clock;
  /** Tasks this engine runs at once. Default 10. */
  concurrency?: number;
  /**
   * Most tasks of `"retry"` crash policy claimed ahead into a local buffer, started without
   * another store write as slots free up. Default: `concurrency`. 0 turns prefetch off.
   * `"fail"`-policy tasks are never prefetched.
   */
  prefetch?: number;
  /** Default lease of an attempt without a heartbeat, in ms. Default 30 000. */
  leaseMs?: number;
  /** Fallback look for ready work (delays set by other processes, lost wake-ups), in ms. Default 1000. */
  pollMs?: number;
  /** How often expired leases are rescued and due retries promoted, in ms. Default 1000. */
  maintenanceMs?: number;
  /** Defaults for every registered type. */
  defaults?: Pick<
    RegisterOptions,
    "maxRetries" | "backoff" | "crashPolicy" | "maxCrashes" | "timeoutMs"
  >;
  /** The gate for types that do not set one. Default: empty → retry, rate limit → retry, thrashing → fail. */
  gate?: GateCheck | GateCheck[] | false;
  /** Retention sweep of terminal tasks; `false` turns it off. */
  retention?: RetentionOptions | false;
  /** Id generator for tasks. Default: time-ordered ids. */
  ids?: IdGenerator;
  /** Workflow limits and retry timing (see docs/workflows.md). */
  workflows?: WorkflowEngineOptions;
}

export interface CloseOptions {
  /** How long in-flight attempts may take to finish before they are left to lease recovery. Default 30 s. */
  timeoutMs?: number;
}

export interface AgentClaimOptions {
  agent: string;
  tenant?: string;
  project?: string;
  types?: string[];
  lanes?: string[];
  /** Most claimed-or-running tasks the agent may hold. Default 1. */
  max?: number;
}

export interface PurgeOptions {
  /** A cutoff time, or an age in ms: terminal tasks that ended before it are deleted. */
  olderThan: Date | number;
  statuses?: TaskStatus[];
  /** Only this tenant's (and project's) tasks; default every tenant. */
  tenant?: string;
  project?: string;
}

interface Waiter {
  resolve(task: Task): void;
  reject(err: Error): void;
}

const DEFAULT_LEASE_MS = 30_000;
const RESERVED_PREFIX = "loom.";

function toGate(
  g: GateCheck | GateCheck[] | false | undefined,
  fallback: GateCheck | null,
): GateCheck | null {
  if (g === false) return null;
  if (g === undefined) return fallback;
  return Array.isArray(g) ? composeGate(...g) : g;
}

/** A task engine: see DESIGN.md §4. Create one with `createEngine`. */
export class Engine {
  readonly name: string;
  readonly store: Store;
  readonly events: { subscribe(fn: EventListener, filter?: EventFilter): () => void };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly concurrency: number;
  readonly prefetch: number;
  /** Flows (task DAGs): `get`, `list`, `cancel`, `ofTask`. See `engine.flow`. */
  readonly flows: Flows;
  /** Cron schedules: `list`, `get`, `remove`. See `engine.schedule`. */
  readonly schedules: Schedules;

  private readonly bus: EventBus;
  private readonly instruments: Instruments;
  private readonly ids: IdGenerator;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly maintenanceMs: number;
  private readonly defaults: TypeSettings;
  private readonly defaultGate: GateCheck | null;
  private readonly retention: Required<RetentionOptions> | null;
  private readonly types = new Map<string, { reg: RegisteredType; settings: TypeSettings }>();
  private typeList: string[] = [];
  /** Registered types outside lanes (the plain claim), and laned ones grouped by lane. */
  private plainTypes: string[] = [];
  private laneClaims: LaneClaim[] = [];
  private readonly preemptibleTypes = new Set<string>();
  private readonly laneRegistry: EngineLanes;
  private readonly dispatcher: Dispatcher;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly results = new Map<string, unknown[]>();
  private readonly ready: Promise<void>;
  private isReady = false;
  private started = false;
  private closing: Promise<void> | null = null;
  private maintenanceTimer: TimerHandle | null = null;
  private sweepTimer: TimerHandle | null = null;
  private unwatchWaiters: (() => void) | null = null;
  private storeClosed = false;
  private holds = 0;
  private holdTimer: NodeJS.Timeout | null = null;
  private releaseStarted: (() => void) | null = null;
  /** Identifies this engine instance in the cross-process event relay. */
  private readonly origin = `${process.pid}.${Math.random().toString(36).slice(2, 10)}`;
  private relayOutbox: LoomEvent[] = [];
  private relayFlushQueued = false;
  /** The publish in flight: one at a time, since two NOTIFYs in flight may commit out of order. */
  private relayInFlight: Promise<void> | null = null;
  private stopRelayIn: (() => void) | null = null;
  private workflowRuntime: WorkflowRuntime | null = null;
  private readonly workflowOptions: WorkflowEngineOptions | undefined;

  /** Use `createEngine` (which supplies the default store) unless you subclass. */
  constructor(opts: EngineOptions & { store: Store }) {
    this.name =
      opts.name === undefined ? `${hostname()}:${process.pid}` : assertName(opts.name, "name");
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.concurrency = opts.concurrency ?? 10;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new ValidationError("must be a positive integer", "concurrency");
    }
    this.prefetch =
      opts.prefetch === undefined
        ? this.concurrency
        : assertNonNegativeInt(opts.prefetch, "prefetch");
    this.leaseMs =
      opts.leaseMs === undefined ? DEFAULT_LEASE_MS : assertPositiveMs(opts.leaseMs, "leaseMs");
    this.pollMs = opts.pollMs === undefined ? 1000 : assertPositiveMs(opts.pollMs, "pollMs");
    this.maintenanceMs =
      opts.maintenanceMs === undefined
        ? 1000
        : assertPositiveMs(opts.maintenanceMs, "maintenanceMs");
    this.ids = opts.ids ?? timeOrderedIds();
    this.instruments = new Instruments(opts.meter, opts.tracer);
    this.bus = new EventBus(this.logger);
    this.events = { subscribe: (fn, filter) => this.subscribe(fn, filter) };
    const d = opts.defaults ?? {};
    this.defaults = this.settingsFrom(d, {
      lane: null,
      maxRetries: 2,
      backoff: null,
      crashPolicy: "fail",
      maxCrashes: 3,
      leaseMs: this.leaseMs,
      timeoutMs: null,
    });
    this.defaultGate = toGate(opts.gate, composeGate(...defaultChecks()));
    this.retention =
      opts.retention === false
        ? null
        : {
            maxAgeMs: 24 * 3600_000,
            statuses: [...TERMINAL_STATUSES],
            intervalMs: 3600_000,
            firstSweepAfterMs: 60_000,
            ...opts.retention,
          };
    this.store = opts.store;
    this.workflowOptions = opts.workflows;
    this.store.useLogger?.(this.logger);
    this.dispatcher = new Dispatcher(this.dispatcherHost());
    this.laneRegistry = new EngineLanes({
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      meter: this.instruments.meter,
      whenReady: () => this.whenReady(),
      wake: () => {
        if (this.started) this.dispatcher.wake();
      },
    });
    this.ready = this.store.migrate().then(() => {
      this.isReady = true;
    });
    // Reported on the first call that needs the store, not as an unhandled rejection.
    this.ready.catch(() => {});
    this.flows = new Flows(this);
    this.schedules = new Schedules(this);
  }

  /** Submit a DAG of tasks (keys, `dependsOn` by key) in one transaction. See `pipeline`, `fanOut`. */
  flow(def: FlowDefinition): Promise<Flow> {
    return this.flows.create(def);
  }

  /** Declare or update a cron schedule (the last writer wins); fired once per tick across processes. */
  schedule(name: string, opts: ScheduleOptions): Promise<Schedule> {
    return this.schedules.declare(name, opts);
  }

  private settingsFrom(o: RegisterOptions, base: TypeSettings): TypeSettings {
    const backoff = o.backoff === undefined ? base.backoff : this.checkBackoff(o.backoff);
    if (o.crashPolicy !== undefined && o.crashPolicy !== "fail" && o.crashPolicy !== "retry") {
      throw new ValidationError(`must be "fail" or "retry"`, "crashPolicy");
    }
    return {
      lane: o.lane === undefined ? base.lane : assertName(o.lane, "lane"),
      maxRetries:
        o.maxRetries === undefined
          ? base.maxRetries
          : assertNonNegativeInt(o.maxRetries, "maxRetries"),
      backoff,
      crashPolicy: o.crashPolicy ?? base.crashPolicy,
      crashPolicyExplicit: o.crashPolicy !== undefined || base.crashPolicyExplicit === true,
      maxCrashes:
        o.maxCrashes === undefined
          ? base.maxCrashes
          : assertNonNegativeInt(o.maxCrashes, "maxCrashes"),
      leaseMs: o.leaseMs === undefined ? base.leaseMs : assertPositiveMs(o.leaseMs, "leaseMs"),
      timeoutMs:
        o.timeoutMs === undefined ? base.timeoutMs : assertPositiveMs(o.timeoutMs, "timeoutMs"),
      schema: o.input,
    };
  }

  private checkBackoff(b: BackoffOptions): BackoffOptions {
    for (const key of ["baseMs", "maxMs", "factor"] as const) {
      const v = b[key];
      if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
        throw new ValidationError("must be a non-negative number", `backoff.${key}`);
      }
    }
    if (b.jitter !== undefined && (typeof b.jitter !== "number" || b.jitter < 0 || b.jitter > 1)) {
      throw new ValidationError("must be from 0 to 1", "backoff.jitter");
    }
    return { ...b };
  }

  private async whenReady(): Promise<void> {
    if (this.storeClosed) throw new EngineClosedError(this.name);
    if (!this.isReady) await this.ready;
  }

  /**
   * Keeps the Node process alive while the engine is started or someone waits on a task (the
   * engine's own timers are unref'd so a closed engine never holds a process open).
   */
  private hold(): () => void {
    if (this.holds++ === 0) this.holdTimer = setInterval(() => {}, 1 << 30);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && this.holdTimer) {
        clearInterval(this.holdTimer);
        this.holdTimer = null;
      }
    };
  }

  private assertOpen(): void {
    if (this.closing) throw new EngineClosedError(this.name);
  }

  // ---------------------------------------------------------------- registration

  /**
   * Register the handler for a task type. Returns a typed handle: `handle.submit(input)` is
   * `engine.submit({ type, input })` with the input type of the handler (or of `opts.input`).
   */
  register<I = unknown, R = unknown>(
    type: string,
    handler: Handler<I, R>,
    opts: RegisterOptions<I> = {},
  ): TaskHandle<I, Awaited<R>> {
    assertName(type, "type");
    if (type.startsWith(RESERVED_PREFIX)) {
      throw new ValidationError(
        `task types starting with "${RESERVED_PREFIX}" are reserved for the engine`,
        "type",
      );
    }
    return this.registerType(type, handler, opts);
  }

  /** @internal Registration without the reserved-name check, for the engine's own task types. */
  registerType<I, R>(
    type: string,
    handler: Handler<I, R>,
    opts: RegisterOptions<I> = {},
  ): TaskHandle<I, Awaited<R>> {
    const run: HandlerFn =
      typeof handler === "function"
        ? (handler as HandlerFn)
        : handler && typeof handler.execute === "function"
          ? (handler.execute.bind(handler) as HandlerFn)
          : (() => {
              throw new ValidationError(
                "must be a function or an object with execute()",
                "handler",
              );
            })();
    const settings = this.settingsFrom(opts, this.defaults);
    const gate = toGate(opts.gate, this.defaultGate);
    this.types.set(type, { reg: { type, run, gate }, settings });
    this.typeList = [...this.types.keys()];
    if (opts.preemptible === true) this.preemptibleTypes.add(type);
    else this.preemptibleTypes.delete(type);
    this.plainTypes = [];
    const byLane = new Map<string, string[]>();
    for (const [t, e] of this.types) {
      if (e.settings.lane === null) this.plainTypes.push(t);
      else byLane.set(e.settings.lane, [...(byLane.get(e.settings.lane) ?? []), t]);
    }
    this.laneClaims = [...byLane].map(([lane, types]) => {
      const preemptible = types.filter((t) => this.preemptibleTypes.has(t));
      return preemptible.length ? { lane, types, preemptible } : { lane, types };
    });
    if (settings.lane !== null) this.laneRegistry.watch(settings.lane);
    if (this.started) this.dispatcher.wake();
    return {
      type,
      submit: (input, o = {}) => {
        const { tx, maxWaitMs, ...rest } = o;
        return this.submit({ ...rest, type, input }, { tx, maxWaitMs });
      },
      submitMany: (inputs) => this.submitMany(inputs.map((input) => ({ type, input }))),
      wait: (id, o) => this.wait(id, o) as Promise<Task<I, Awaited<R>>>,
    };
  }

  // ---------------------------------------------------------------- workflows

  /** Define a durable workflow (DESIGN §4 Workflows; docs/workflows.md). */
  workflow<I = unknown, R = unknown>(
    name: string,
    opts: WorkflowOptions<I, R>,
  ): WorkflowDefinition<I, Awaited<R>> {
    return this.workflowsRuntime().define(name, opts) as WorkflowDefinition<I, Awaited<R>>;
  }

  /** Runs of workflows: `get(id)`, `list(filter)`, `start(name, input, opts)`. */
  get workflows(): WorkflowsApi {
    return this.workflowsRuntime().api;
  }

  /** @internal */
  workflowsRuntime(): WorkflowRuntime {
    this.workflowRuntime ??= new WorkflowRuntime(this, this.workflowOptions);
    return this.workflowRuntime;
  }

  /** @internal */
  whenStoreReady(): Promise<void> {
    return this.whenReady();
  }

  /** @internal Lease of workflow wake-up tasks. */
  get workflowLeaseMs(): number {
    return this.leaseMs;
  }

  /** @internal Look for ready work now, or at `at`. */
  wakeDispatcher(at?: number): void {
    if (!this.started) return;
    if (at === undefined) this.dispatcher.wake();
    else this.dispatcher.wakeAt(at);
  }

  /** @internal Hold a worker slot for a workflow run this process starts and executes inline. */
  reserveSlot(): boolean {
    return this.started && !this.closing && this.dispatcher.reserveSlot();
  }

  /** @internal Give back a slot held by `reserveSlot` that will not be used. */
  unreserveSlot(): void {
    this.dispatcher.unreserve();
  }

  /** @internal Run a task this process claimed in its own write, in the slot `reserveSlot` held. */
  adoptClaimed(c: ClaimedTask): void {
    this.dispatcher.adopt(c);
  }

  /** @internal A task row for a workflow activity, built and checked like a submit. */
  async prepareTask(req: TaskRequest, workflowId: string): Promise<NewTask> {
    this.assertNotReserved(req, "type");
    const task = await this.prepare(req, this.clock.now(), "");
    const explicit = this.types.get(task.type)?.settings;
    // Activities default to the "retry" crash policy (DESIGN §3) unless their type chose "fail".
    const crashPolicy = explicit?.crashPolicyExplicit ? task.crashPolicy : "retry";
    return { ...task, workflowId, crashPolicy };
  }

  /** @internal */
  get wantsWorkflowEvents(): boolean {
    return this.wantsEvents;
  }

  /** @internal Emit a workflow event to subscribers (and other processes). */
  emitEvent(event: LoomEvent): void {
    if (this.wantsEvents) this.deliver(event);
  }

  // ---------------------------------------------------------------- submit

  /** The request id and trace context a submit inherits; read once per call, not per task. */
  private ambient(): { requestId: string | null; traceContext: Record<string, string> | null } {
    return { requestId: currentRequestId() ?? null, traceContext: captureTraceContext() };
  }

  private prepare(
    req: TaskRequest,
    now: number,
    at: string,
    ambient = this.ambient(),
  ): NewTask | Promise<NewTask> {
    if (req === null || typeof req !== "object")
      throw new ValidationError("must be an object", at || "request");
    const type = assertName(req.type, `${at}type`);
    const entry = this.types.get(type);
    const settings = entry?.settings ?? this.defaults;
    const build = (input: unknown) => {
      const row = toNewTask(req, input, {
        id: this.ids(),
        now,
        settings,
        requestId: ambient.requestId,
        traceContext: ambient.traceContext,
        at,
      });
      // Fair share in a lane is per caller; a task that names none shares its tenant's.
      if (row.lane !== null && row.caller === null) row.caller = row.tenant;
      return row;
    };
    const input = validateInput(settings.schema, req.input, `${at}input`);
    return input instanceof Promise ? input.then(build) : build(input);
  }

  /**
   * Persist a task and return its id once the row is committed. With `opts.tx`, the row is
   * written inside the caller's own transaction (the handle the store takes: `store.db` inside
   * `store.db.transaction(...)` on SQLite, a `pg` client inside BEGIN on PostgreSQL). On SQLite
   * the insert happens before `submit` returns and a bad request throws at once, so it aborts the
   * caller's transaction. No `task.created` event is emitted for a task submitted in a caller's
   * transaction: it may still roll back.
   */
  submit(req: TaskRequest, opts: SubmitOptions = {}): Promise<string> {
    if (opts.tx !== undefined && this.store.insertTasksNow) {
      return Promise.resolve(this.submitInTransaction(req, opts.tx));
    }
    return this.submitAsync(req, opts);
  }

  private submitInTransaction(req: TaskRequest, tx: unknown): string {
    return this.insertInTransaction([req], tx, (_, i) => (i === 0 ? "" : `tasks[${i}].`))[0]!;
  }

  /** Validate and insert now, inside the caller's synchronous transaction; errors throw into it. */
  private insertInTransaction(
    reqs: TaskRequest[],
    tx: unknown,
    at: (req: TaskRequest, i: number) => string,
  ): string[] {
    this.assertOpen();
    if (!this.isReady) {
      throw new ValidationError(
        "the engine is still migrating its store: await engine.start() (or any engine call) first",
        "tx",
      );
    }
    const now = this.clock.now();
    const ambient = this.ambient();
    const rows = reqs.map((req, i) => {
      this.assertNotReserved(req, `${at(req, i)}type`);
      const row = this.prepare(req, now, at(req, i), ambient);
      if (row instanceof Promise) {
        throw new ValidationError(
          "an asynchronous input schema cannot run inside a synchronous transaction",
          `${at(req, i)}input`,
        );
      }
      return row;
    });
    const outcomes = this.store.insertTasksNow!(rows, tx);
    // Look once the caller's (synchronous) transaction is over.
    if (this.started) setImmediate(() => this.dispatcher.wake());
    return outcomes.map((o) => o.id);
  }

  private assertNotReserved(req: TaskRequest, field: string): void {
    if (req?.type?.startsWith?.(RESERVED_PREFIX)) {
      throw new ValidationError(
        `task types starting with "${RESERVED_PREFIX}" are reserved for the engine`,
        field,
      );
    }
  }

  private async submitAsync(req: TaskRequest, opts: SubmitOptions): Promise<string> {
    this.assertOpen();
    this.assertNotReserved(req, "type");
    if (opts.maxWaitMs !== undefined) assertPositiveMs(opts.maxWaitMs, "maxWaitMs");
    const prepared = this.prepare(req, this.clock.now(), "");
    const row = prepared instanceof Promise ? await prepared : prepared;
    await this.whenReady();
    if (row.lane !== null) await this.laneRegistry.admit(row, opts.maxWaitMs);
    const [outcome] = await this.store.insertTasks([row], opts.tx);
    this.afterInsert([row], [outcome!], opts.tx === undefined);
    return outcome!.id;
  }

  /** Persist many tasks in one transaction: all or none. Returns their ids in order. */
  submitMany(reqs: TaskRequest[], opts: Pick<SubmitOptions, "tx"> = {}): Promise<string[]> {
    if (opts.tx !== undefined && this.store.insertTasksNow && Array.isArray(reqs)) {
      return Promise.resolve(this.insertInTransaction(reqs, opts.tx, (_, i) => `tasks[${i}].`));
    }
    return this.submitManyAsync(reqs, opts);
  }

  private async submitManyAsync(
    reqs: TaskRequest[],
    opts: Pick<SubmitOptions, "tx">,
  ): Promise<string[]> {
    this.assertOpen();
    if (!Array.isArray(reqs))
      throw new ValidationError("must be an array of task requests", "tasks");
    const rows = await this.prepareTasks(reqs);
    if (rows.length === 0) return [];
    await this.whenReady();
    const outcomes = await this.store.insertTasks(rows, opts.tx);
    this.afterInsert(rows, outcomes, opts.tx === undefined);
    return outcomes.map((o) => o.id);
  }

  /**
   * @internal Validate requests into rows as `submitMany` does (field names `tasks[i].…`), for
   * features that insert tasks with their own rows in one store transaction (flows, schedules).
   */
  async prepareTasks(reqs: TaskRequest[], opts: { reserved?: boolean } = {}): Promise<NewTask[]> {
    const now = this.clock.now();
    const ambient = this.ambient();
    const prepared = reqs.map((r, i) => {
      if (!opts.reserved) this.assertNotReserved(r, `tasks[${i}].type`);
      return this.prepare(r, now, `tasks[${i}].`, ambient);
    });
    return prepared.some((p) => p instanceof Promise)
      ? Promise.all(prepared.map((p) => Promise.resolve(p)))
      : (prepared as NewTask[]);
  }

  /** @internal Events, metrics and wake-ups for rows another store operation inserted. */
  tasksInserted(rows: NewTask[], outcomes: InsertOutcome[]): void {
    this.afterInsert(rows, outcomes);
  }

  /** @internal Cancel these tasks (and, transitively, their dependents). Returns how many. */
  async cancelTasks(ids: string[], reason: string): Promise<number> {
    await this.whenReady();
    const changes = await this.store.cancel({ ids }, reason, this.clock.now());
    this.afterCancel(changes);
    return changes.length;
  }

  /** @internal Resolves once the store is migrated (for the engine's own features). */
  async storeReady(): Promise<Store> {
    await this.whenReady();
    return this.store;
  }

  private afterInsert(
    rows: NewTask[],
    outcomes: { id: string; created: boolean; status: TaskStatus; error: string | null }[],
    emit = true,
  ): void {
    let wake = false;
    const now = this.clock.now();
    for (let i = 0; i < rows.length; i++) {
      const o = outcomes[i]!;
      if (!o.created) continue;
      const row = rows[i]!;
      this.instruments.submitted.add(1, { type: row.type });
      if (emit && this.wantsEvents) {
        const ref = { ...row, attempt: 0 };
        this.emitChange("task.created", ref, "pending");
        if (o.status === "cancelled") this.emitChange("task.cancelled", ref, "cancelled", o.error);
      }
      if (o.status === "cancelled") continue;
      if (this.started && this.types.has(row.type)) {
        if (row.runAt <= now) wake = true;
        else this.dispatcher.wakeAt(row.runAt);
      }
    }
    if (wake) this.dispatcher.wake();
  }

  // ---------------------------------------------------------------- reads

  /** The task, or `TaskNotFoundError`. */
  async get(id: string): Promise<Task> {
    await this.whenReady();
    const task = await this.store.getTask(id);
    if (!task) throw new TaskNotFoundError(id);
    return task;
  }

  /** A page of tasks, newest first; pass `nextCursor` back as `cursor` for the next page. */
  async list(filter: TaskFilter = {}): Promise<Page<Task>> {
    await this.whenReady();
    return this.store.listTasks(filter);
  }

  async count(filter: TaskFilter = {}): Promise<number> {
    await this.whenReady();
    return this.store.countTasks(filter);
  }

  /**
   * Resolves with the task once it is terminal (whatever the outcome). Rejects with
   * `WaitTimeoutError` after `timeoutMs` (default: wait as long as it takes).
   */
  async wait(id: string, opts: { timeoutMs?: number } = {}): Promise<Task> {
    const task = await this.get(id);
    if (isTerminal(task.status)) return task;
    return new Promise<Task>((resolve, reject) => {
      let timer: TimerHandle | null = null;
      const release = this.hold();
      const waiter: Waiter = {
        resolve: (t) => {
          timer?.cancel();
          release();
          resolve(t);
        },
        reject: (e) => {
          timer?.cancel();
          release();
          reject(e);
        },
      };
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(waiter);
      this.watchForWaiters();
      if (opts.timeoutMs !== undefined) {
        timer = this.clock.setTimer(() => {
          this.dropWaiter(id, waiter);
          waiter.reject(new WaitTimeoutError(id, opts.timeoutMs!));
        }, opts.timeoutMs);
      }
      // It may have ended between the read and the registration.
      void this.checkWaiters([id]);
    });
  }

  private dropWaiter(id: string, waiter: Waiter): void {
    const set = this.waiters.get(id);
    set?.delete(waiter);
    if (set?.size === 0) this.waiters.delete(id);
  }

  /** Waiters on tasks run by other processes learn of the end by the store's change feed and a slow poll. */
  private watchForWaiters(): void {
    if (this.unwatchWaiters) return;
    const unwatch = this.store.onExternalChange(() => void this.checkWaiters());
    let timer: TimerHandle | null = null;
    const poll = () => {
      timer = this.clock.setTimer(() => {
        void this.checkWaiters();
        if (this.unwatchWaiters) poll();
      }, this.pollMs);
    };
    poll();
    this.unwatchWaiters = () => {
      unwatch();
      timer?.cancel();
    };
  }

  private async checkWaiters(ids: string[] = [...this.waiters.keys()]): Promise<void> {
    for (const id of ids) {
      if (!this.waiters.has(id)) continue;
      let task: Task | null;
      try {
        task = await this.store.getTask(id);
      } catch {
        continue;
      }
      if (task && !isTerminal(task.status)) continue;
      const set = this.waiters.get(id);
      this.waiters.delete(id);
      for (const w of set ?? []) {
        if (task) w.resolve(task);
        else w.reject(new TaskNotFoundError(id));
      }
    }
    if (this.waiters.size === 0 && this.unwatchWaiters) {
      this.unwatchWaiters();
      this.unwatchWaiters = null;
    }
  }

  /** `{ position, etaMs }` of a pending task: 1-based place among ready tasks of its type. */
  async position(id: string): Promise<{ position: number; etaMs: number | null }> {
    await this.whenReady();
    // A laned task: its place in fair-share order, its ETA from the lane's pace (docs/lanes.md).
    const inLane = await this.laneRegistry.position(id);
    if (inLane) return inLane;
    const pos = await this.store.queuePosition(id, this.clock.now());
    if (!pos) throw new TaskNotFoundError(id);
    if (!pos.queued) throw new NotQueuedError(id, pos.status);
    const rate = this.throughputPerMs(pos.type);
    return { position: pos.position, etaMs: rate > 0 ? Math.round(pos.position / rate) : null };
  }

  private completions = new Map<string, number[]>();

  private throughputPerMs(type: string): number {
    const times = this.completions.get(type);
    if (!times || times.length < 2) return 0;
    const span = this.clock.now() - times[0]!;
    return span > 0 ? times.length / span : 0;
  }

  private recordCompletion(type: string): void {
    let times = this.completions.get(type);
    if (!times) this.completions.set(type, (times = []));
    const now = this.clock.now();
    times.push(now);
    while (times.length > 0 && (times[0]! < now - 60_000 || times.length > 1000)) times.shift();
  }

  // ---------------------------------------------------------------- cancel

  // ---------------------------------------------------------------- lanes

  /**
   * Declare or update a lane: its settings go to the store (the last writer wins) and hold for
   * every process on it. Tasks of types registered with `{ lane: name }` run through it.
   */
  lane(name: string, opts: EngineLaneOptions): Promise<EngineLane> {
    this.assertOpen();
    return this.laneRegistry.declare(name, opts);
  }

  /** Lanes as every process sees them: `get(name)` (null if undeclared), `list()`, `handle(name)`. */
  readonly lanes = {
    get: (name: string): Promise<EngineLaneStats | null> => this.laneRegistry.find(name),
    list: (): Promise<EngineLaneStats[]> => this.laneRegistry.list(),
    handle: (name: string): EngineLane => this.laneRegistry.handle(name),
  };

  /** Cancel one task (and its dependents). A running attempt sees `ctx.signal` abort. */
  async cancel(id: string, reason = "cancelled"): Promise<Task> {
    await this.whenReady();
    const changes = await this.store.cancel({ ids: [id] }, reason, this.clock.now());
    if (!changes.some((c) => c.id === id)) {
      const task = await this.store.getTask(id);
      if (!task) throw new TaskNotFoundError(id);
      throw new InvalidTransitionError(id, task.status, "cancelled", "the task has already ended");
    }
    this.afterCancel(changes);
    return this.get(id);
  }

  /** Cancel every non-terminal task matching the filter (e.g. a project). Returns how many. */
  async cancelAll(filter: TaskFilter, reason = "cancelled"): Promise<number> {
    await this.whenReady();
    const changes = await this.store.cancel({ filter }, reason, this.clock.now());
    this.afterCancel(changes);
    return changes.length;
  }

  private afterCancel(changes: TaskChange[]): void {
    for (const c of changes) {
      this.dispatcher.cancelRunning(c.id, c.error ?? "cancelled");
      this.instruments.cancelled.add(1, { type: c.type });
      this.emitChange("task.cancelled", c, "cancelled", c.error);
      this.settledLocally(c.id);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Begin dispatching: recover this engine name's crashed attempts, then claim work. Idempotent. */
  async start(): Promise<void> {
    this.assertOpen();
    if (this.started) return;
    this.started = true;
    this.releaseStarted = this.hold();
    await this.whenReady();
    await this.recoverCrashed();
    if (this.closing) return;
    await this.adoptLaneless(this.clock.now());
    this.dispatcher.start();
    this.scheduleMaintenance();
    if (this.retention) this.scheduleSweep(this.retention.firstSweepAfterMs);
    void this.warnUndeclaredLanes();
  }

  /** Ready rows of our laned types submitted without their lane (by a process that never registered the type). */
  private async adoptLaneless(now: number): Promise<void> {
    let adopted = 0;
    for (const { lane, types } of this.laneClaims) {
      adopted += await this.store.adoptIntoLane(lane, types, now);
    }
    if (adopted > 0) this.dispatcher.wake();
  }

  /** Tasks of a lane nobody declared wait for good: say so once at start, not silently. */
  private async warnUndeclaredLanes(): Promise<void> {
    for (const { lane } of this.laneClaims) {
      try {
        if ((await this.lanes.get(lane)) === null) {
          this.logger.warn(
            { lane },
            `lane "${lane}" is not declared: its tasks wait until engine.lane("${lane}", { concurrency }) declares it`,
          );
        }
      } catch {
        // Only a hint; the store's own errors surface elsewhere.
      }
    }
  }

  /**
   * Stop claiming, let in-flight attempts finish (up to `timeoutMs`), write their outcomes, then
   * release the store. Attempts still running at the deadline are aborted and left to lease
   * recovery. Idempotent: later calls return the same promise.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.timeoutMs ?? 30_000);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.dispatcher.stopClaiming();
    this.maintenanceTimer?.cancel();
    this.sweepTimer?.cancel();
    this.schedules.stop();
    await this.ready.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([
      this.dispatcher.whenIdle().then(() => "idle" as const),
      deadline,
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.logger.warn(
        { running: this.dispatcher.running.size },
        "close deadline passed; leaving attempts to lease recovery",
      );
      this.dispatcher.abortAll(new EngineClosedError(this.name));
    }
    this.dispatcher.stopHeartbeats();
    this.stopRelayIn?.();
    this.stopRelayIn = null;
    await this.relayInFlight;
    if (this.relayOutbox.length && this.store.relay) {
      await this.store.relay.publish(this.origin, this.relayOutbox.splice(0)).catch(() => {});
    }
    this.unwatchWaiters?.();
    for (const [id, set] of this.waiters)
      for (const w of set) w.reject(new EngineClosedError(`${this.name} (waiting for ${id})`));
    this.waiters.clear();
    await this.store.close();
    this.storeClosed = true;
    this.releaseStarted?.();
  }

  /** Apply the crash policy to this engine name's claimed or running attempts. Returns how many. */
  async recoverCrashed(): Promise<number> {
    await this.whenReady();
    const changes = await this.store.recoverEngine(this.name, this.clock.now());
    this.afterCrash(changes);
    if (changes.length)
      this.logger.warn(
        { count: changes.length },
        "recovered attempts of a previous run of this engine",
      );
    return changes.length;
  }

  private afterCrash(changes: TaskChange[]): void {
    for (const c of changes) {
      this.dispatcher.cancelRunning(c.id, c.error ?? "crashed");
      if (c.status === "failed_crash") {
        this.instruments.crashed.add(1, { type: c.type });
        this.emitChange("task.failed_crash", c, c.status, c.error);
        this.settledLocally(c.id);
      } else if (c.status === "cancelled") {
        this.emitChange("task.cancelled", c, c.status, c.error);
        this.settledLocally(c.id);
      } else {
        this.instruments.crashed.add(1, { type: c.type });
        this.emitChange("task.retrying", c, c.status, c.error);
      }
    }
    if (changes.length && this.started) this.dispatcher.wake();
  }

  private scheduleMaintenance(): void {
    this.maintenanceTimer = this.clock.setTimer(() => {
      void this.maintain().finally(() => {
        if (!this.closing) this.scheduleMaintenance();
      });
    }, this.maintenanceMs);
  }

  /** Rescue expired leases (any engine's) and promote retries whose backoff elapsed. */
  async maintain(): Promise<void> {
    try {
      const now = this.clock.now();
      for (;;) {
        const changes = await this.store.rescueExpired(now, 500);
        this.afterCrash(changes);
        if (changes.length < 500) break;
      }
      if ((await this.store.promoteDue(now)) > 0) this.dispatcher.wake();
      if (this.started) await this.adoptLaneless(now);
      await this.laneRegistry.refresh();
      // Attempts here that a lane claim (in any process) chose to preempt: abort and re-queue.
      if (this.started && this.preemptibleTypes.size > 0) {
        for (const p of await this.store.preemptionsOf(this.name))
          this.dispatcher.preempt(p.id, p.attemptId);
      }
    } catch (err) {
      this.logger.error({ err }, "maintenance failed; will try again");
    }
    await this.schedules.fireDue();
  }

  private scheduleSweep(delay: number): void {
    const r = this.retention!;
    this.sweepTimer = this.clock.setTimer(() => {
      void this.purge({ olderThan: r.maxAgeMs, statuses: r.statuses })
        .then((n) => n && this.logger.info({ purged: n }, "retention sweep"))
        .catch((err: unknown) => this.logger.error({ err }, "retention sweep failed"))
        .finally(() => {
          if (!this.closing) this.scheduleSweep(r.intervalMs);
        });
    }, delay);
  }

  /** Delete terminal tasks that ended before `olderThan` (a Date, or an age in ms). Returns how many. */
  async purge(opts: PurgeOptions): Promise<number> {
    await this.whenReady();
    const cutoff =
      opts.olderThan instanceof Date
        ? opts.olderThan.getTime()
        : this.clock.now() - assertNonNegativeInt(Math.floor(opts.olderThan), "olderThan");
    if (!Number.isFinite(cutoff))
      throw new ValidationError("must be a Date or an age in ms", "olderThan");
    const statuses = opts.statuses ?? [...TERMINAL_STATUSES];
    for (const s of statuses) {
      if (!TERMINAL_STATUSES.includes(s))
        throw new ValidationError(`only terminal statuses can be purged, not ${s}`, "statuses");
    }
    const scope: { tenant?: string; project?: string } = {};
    if (opts.tenant !== undefined) scope.tenant = assertName(opts.tenant, "tenant");
    if (opts.project !== undefined) scope.project = assertName(opts.project, "project");
    return this.store.purge(cutoff, statuses, scope);
  }

  /** Counts by status and per-minute completed/failed throughput over the last hour. */
  async stats(opts: StatsOptions = {}): Promise<EngineStats> {
    await this.whenReady();
    return readStats(this.store, this.clock.now(), opts);
  }

  /**
   * @internal Resolves once the dispatcher has looked for ready work and nothing is running or
   * waiting to be written (what `loomkit/testing`'s `drain()` waits for).
   */
  async settle(): Promise<void> {
    await this.whenReady();
    this.dispatcher.wake();
    await this.dispatcher.whenIdle();
  }

  // ---------------------------------------------------------------- external agents

  /** Claim the best ready task for an external agent, or `null` (nothing ready, or it holds `max`). */
  async claimNext(opts: AgentClaimOptions): Promise<Task | null> {
    this.assertOpen();
    await this.whenReady();
    const agent = assertName(opts.agent, "agent");
    const max = opts.max === undefined ? 1 : assertNonNegativeInt(opts.max, "max");
    const task = await this.store.claimForAgent({
      agent,
      tenant: opts.tenant,
      project: opts.project,
      types: opts.types,
      lanes: opts.lanes,
      max,
      now: this.clock.now(),
    });
    if (task) this.emitChange("task.claimed", task, "claimed");
    return task;
  }

  private async touchAgent(
    id: string,
    attemptId: string,
    progress?: number,
    note?: string,
  ): Promise<void> {
    await this.whenReady();
    const out = await this.store.touch({
      id,
      attemptId,
      now: this.clock.now(),
      progress,
      note: note ?? null,
    });
    if (!out.ok) {
      if (out.status === null) throw new TaskNotFoundError(id);
      throw new StaleAttemptError(id, attemptId, out.status);
    }
    if (out.movedToRunning) this.emitChange("task.running", out.task, "running");
    if (progress !== undefined && this.wantsEvents) {
      this.deliver({
        ...this.eventBase("task.progress", out.task, "running"),
        progress,
        ...(note ? { note } : {}),
      });
    }
  }

  /** Renew an agent's lease on a claimed task (and mark it running). */
  heartbeat(id: string, attemptId: string): Promise<void> {
    return this.touchAgent(id, attemptId);
  }

  /** Record an agent's progress (0–100) on a claimed task. */
  async progress(id: string, attemptId: string, pct: number, note?: string): Promise<void> {
    return this.touchAgent(id, attemptId, assertProgress(pct), note);
  }

  /** An agent's result. Goes through the type's quality gate like a local handler's. */
  async complete(id: string, attemptId: string, result?: unknown): Promise<Task> {
    const task = await this.owned(id, attemptId);
    const json = toJson(result, "result");
    const gate = this.types.get(task.type)?.reg.gate ?? this.defaultGate;
    const decision = this.judge(gate, task, result);
    if (decision && !decision.accept) {
      return this.settleAgentFailure(
        task,
        attemptId,
        `quality gate: ${decision.reason}`,
        decision.retry,
      );
    }
    const [out] = (
      await this.store.exchange({
        now: this.clock.now(),
        settle: [{ kind: "complete", id, attemptId, result: json }],
        claim: null,
      })
    ).settled;
    if (!out?.ok) throw new StaleAttemptError(id, attemptId, out?.status ?? undefined);
    this.forgetResults(id);
    this.emitChange("task.completed", task, "completed");
    this.instruments.completed.add(1, { type: task.type });
    this.afterCascade(out.cascade);
    this.settledLocally(id);
    return this.get(id);
  }

  /** An agent's failure: retried with backoff while retries remain (`retry: false` fails it now). */
  async fail(
    id: string,
    attemptId: string,
    error: unknown,
    opts: { retry?: boolean } = {},
  ): Promise<Task> {
    const task = await this.owned(id, attemptId);
    return this.settleAgentFailure(task, attemptId, errorText(error), opts.retry ?? true);
  }

  private async settleAgentFailure(
    task: Task,
    attemptId: string,
    error: string,
    retryable: boolean,
  ): Promise<Task> {
    const at = retryAt(
      task,
      retryable,
      this.clock.now(),
      this.types.get(task.type)?.settings.backoff ?? undefined,
    );
    const retry = at !== null;
    const [out] = (
      await this.store.exchange({
        now: this.clock.now(),
        settle: [{ kind: "fail", id: task.id, attemptId, error, retryAt: at }],
        claim: null,
      })
    ).settled;
    if (!out?.ok) throw new StaleAttemptError(task.id, attemptId, out?.status ?? undefined);
    this.emitChange(
      retry ? "task.retrying" : "task.failed",
      task,
      retry ? "retrying" : "failed",
      error,
    );
    (retry ? this.instruments.retried : this.instruments.failed).add(1, { type: task.type });
    this.afterCascade(out.cascade);
    if (retry) {
      if (this.started) this.dispatcher.wakeAt(at);
    } else {
      this.forgetResults(task.id);
      this.settledLocally(task.id);
    }
    return this.get(task.id);
  }

  private afterCascade(cascade: TaskChange[]): void {
    for (const c of cascade) {
      this.emitChange("task.cancelled", c, "cancelled", c.error);
      this.settledLocally(c.id);
    }
  }

  private async owned(id: string, attemptId: string): Promise<Task> {
    const task = await this.get(id);
    if (task.attemptId !== attemptId || (task.status !== "claimed" && task.status !== "running")) {
      throw new StaleAttemptError(id, attemptId, task.status);
    }
    return task;
  }

  // ---------------------------------------------------------------- events

  private subscribe(fn: EventListener, filter?: EventFilter): () => void {
    const unsubscribe = this.bus.subscribe(fn, filter);
    this.startRelayIn();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      unsubscribe();
      if (!this.bus.active) {
        this.stopRelayIn?.();
        this.stopRelayIn = null;
      }
    };
  }

  /** While anyone subscribes here, receive the events of other processes on the same store. */
  private startRelayIn(): void {
    if (this.stopRelayIn || this.closing) return;
    let stop: (() => void) | null = null;
    let cancelled = false;
    this.stopRelayIn = () => {
      cancelled = true;
      stop?.();
    };
    void this.ready.then(() => {
      const relay = this.store.relay;
      if (cancelled || !relay) return;
      stop = relay.listen(this.origin, (events) => {
        for (const e of events) this.bus.emit(e);
      });
    });
  }

  private relayOut(event: LoomEvent): void {
    const relay = this.isReady ? this.store.relay : undefined;
    if (!relay?.wanted(this.origin)) return;
    this.relayOutbox.push(event);
    this.scheduleRelayFlush(relay);
  }

  /** Publish the outbox soon; events that arrive while a publish is in flight wait for it. */
  private scheduleRelayFlush(relay: EventRelay): void {
    if (this.relayFlushQueued || this.relayInFlight) return;
    this.relayFlushQueued = true;
    setImmediate(() => {
      this.relayFlushQueued = false;
      const batch = this.relayOutbox;
      this.relayOutbox = [];
      this.relayInFlight = relay
        .publish(this.origin, batch)
        .catch((err: unknown) =>
          this.logger.warn({ err }, "could not relay events to other processes"),
        )
        .finally(() => {
          this.relayInFlight = null;
          if (this.relayOutbox.length) this.scheduleRelayFlush(relay);
        });
    });
  }

  private get wantsEvents(): boolean {
    return this.bus.active || (this.isReady && (this.store.relay?.wanted(this.origin) ?? false));
  }

  private deliver(event: LoomEvent): void {
    if (this.bus.active) this.bus.emit(event);
    this.relayOut(event);
  }

  private eventBase(type: LoomEventType, ref: TaskRef, status: string): LoomEvent {
    return {
      type,
      taskId: ref.id,
      taskType: ref.type,
      ...(ref.workflowId ? { workflowId: ref.workflowId } : {}),
      tenant: ref.tenant,
      project: ref.project,
      requestId: ref.requestId,
      status,
      attempt: ref.attempt,
      at: new Date(this.clock.now()),
    };
  }

  /** @internal */
  emitChange(type: LoomEventType, ref: TaskRef, status: TaskStatus, error?: string | null): void {
    if (type === "task.completed") this.recordCompletion(ref.type);
    // An activity ended: the store enqueued its run's wake-up in the same write; claim it soon.
    if (
      ref.workflowId !== null &&
      ref.type !== WORKFLOW_TASK_TYPE &&
      this.workflowRuntime &&
      isTerminal(status)
    )
      this.wakeDispatcher();
    if (!this.wantsEvents) return;
    const event = this.eventBase(type, ref, status);
    if (error) event.error = error;
    this.deliver(event);
  }

  private settledLocally(id: string): void {
    if (this.waiters.has(id)) void this.checkWaiters([id]);
  }

  /**
   * Run a gate on a result: record the decision's metric and, when it rejects, remember the
   * result for the thrashing check of later attempts.
   */
  private judge(
    gate: GateCheck | null,
    task: { id: string; type: string; attempt: number },
    result: unknown,
  ): GateDecision | null {
    if (!gate) return null;
    const decision = gate({
      taskId: task.id,
      type: task.type,
      attempt: task.attempt,
      result,
      previousResults: this.results.get(task.id) ?? [],
    });
    this.instruments.gateDecisions.add(1, { type: task.type, reason: decision.reason });
    if (!decision.accept) this.rememberResult(task.id, result);
    return decision;
  }

  private rememberResult(id: string, result: unknown): void {
    const list = this.results.get(id) ?? [];
    list.push(result);
    if (list.length > 10) list.shift();
    this.results.set(id, list);
    // Bounded: results of tasks retried elsewhere would otherwise never be forgotten.
    if (this.results.size > 10_000) this.results.delete(this.results.keys().next().value!);
  }

  private forgetResults(id: string): void {
    if (this.results.size) this.results.delete(id);
  }

  private dispatcherHost(): DispatcherHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    return {
      get name() {
        return engine.name;
      },
      get store() {
        return engine.store;
      },
      get clock() {
        return engine.clock;
      },
      get logger() {
        return engine.logger;
      },
      get instruments() {
        return engine.instruments;
      },
      get concurrency() {
        return engine.concurrency;
      },
      get prefetch() {
        return engine.prefetch;
      },
      get pollMs() {
        return engine.pollMs;
      },
      get heartbeatMs() {
        let min = engine.leaseMs;
        for (const t of engine.types.values()) min = Math.min(min, t.settings.leaseMs);
        return Math.max(10, Math.floor(min / 3));
      },
      handlerFor: (type) => engine.types.get(type)?.reg,
      registeredTypes: () => engine.typeList,
      plainTypes: () => engine.plainTypes,
      laneClaims: () => engine.laneClaims,
      emitChange: (type, ref: ClaimedTask | TaskChange, status, error) =>
        engine.emitChange(type, ref, status, error),
      emitProgress: (attempt: Attempt, pct, note) => {
        if (!engine.wantsEvents) return;
        engine.deliver({
          ...engine.eventBase("task.progress", attempt.claimed, "running"),
          progress: pct,
          ...(note ? { note } : {}),
        });
      },
      settledLocally: (id) => engine.settledLocally(id),
      judge: (gate, task, result) => engine.judge(gate, task, result),
      forgetResults: (id) => engine.forgetResults(id),
    };
  }
}
