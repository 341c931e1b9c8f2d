import type { Engine } from "../core/engine.js";
import {
  InvalidTransitionError,
  ValidationError,
  WaitTimeoutError,
  WorkflowExecutionError,
  WorkflowNotFoundError,
} from "../core/errors.js";
import { Attempt } from "../core/attempt.js";
import { timeOrderedIds } from "../core/ids.js";
import { assertName, validateInput } from "../core/task-request.js";
import type {
  LoomEvent,
  Page,
  RunningTask,
  TaskContext,
  WorkflowEventType,
} from "../core/types.js";
import {
  WORKFLOW_TASK_TYPE,
  WORKFLOW_TERMINAL,
  type Checkpoint,
  type HistoryRow,
  type NewWorkflowRun,
  type WorkflowRunRow,
} from "../store/workflows.js";
import { GroupCommitter, GroupLoader } from "./committer.js";
import { Execution, fromText, toText, type ExecutionHost } from "./replay.js";
import type {
  HistoryEvent,
  HistoryEventKind,
  StartOptions,
  WaitingFor,
  WorkflowDefinition,
  WorkflowHandle,
  WorkflowListFilter,
  WorkflowOptions,
  WorkflowRun,
  WorkflowsApi,
  WorkflowVersion,
} from "./types.js";

export interface WorkflowEngineOptions {
  /** A run whose history would grow past this many events fails with a clear error. Default 50 000. */
  maxHistoryEvents?: number;
  /**
   * How soon a held run (its version not registered here, or code that disagrees with its
   * history) is tried again, in ms. Default 30 000.
   */
  heldRetryMs?: number;
  /** Most checkpoints written in one group commit. Default 256. */
  maxBatch?: number;
}

interface Definition {
  name: string;
  version: WorkflowVersion;
  versionKey: string;
  opts: WorkflowOptions<unknown, unknown>;
}

const isTerminal = (s: string) => (WORKFLOW_TERMINAL as readonly string[]).includes(s);

export function toRun(r: WorkflowRunRow): WorkflowRun {
  const waiting = r.waitingFor
    ? (JSON.parse(r.waitingFor) as WaitingFor & { until?: string })
    : null;
  return {
    id: r.id,
    name: r.name,
    version: JSON.parse(r.version) as WorkflowVersion,
    status: r.status,
    input: fromText(r.input) ?? null,
    result: r.result === null ? null : fromText(r.result),
    error: r.error,
    state: r.state ? (JSON.parse(r.state) as Record<string, unknown>) : {},
    tenant: r.tenant,
    project: r.project,
    parentId: r.parentId,
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
    completedAt: r.completedAt === null ? null : new Date(r.completedAt),
    ...(waiting && r.status === "waiting"
      ? {
          waitingFor: {
            kind: waiting.kind,
            name: waiting.name,
            ...(waiting.until ? { until: new Date(waiting.until) } : {}),
          },
        }
      : {}),
  };
}

export function toHistoryEvent(e: HistoryRow): HistoryEvent {
  return {
    seq: e.seq,
    kind: e.kind as HistoryEventKind,
    name: e.name,
    data: fromText(e.data) ?? null,
    at: new Date(e.at),
  };
}

/** Workflows of one engine: definitions, starting runs, and executing their wake-up tasks. */
export class WorkflowRuntime {
  readonly api: WorkflowsApi;
  private readonly defs = new Map<string, Map<string, Definition>>();
  private readonly latest = new Map<string, Definition>();
  private readonly ids = timeOrderedIds();
  private readonly committer: GroupCommitter;
  private readonly loader: GroupLoader;
  private readonly maxHistoryEvents: number;
  private readonly heldRetryMs: number;
  private registered = false;
  /** A run this process just created with its first wake-up claimed: executed without a load. */
  private fresh: { taskId: string; run: WorkflowRunRow } | null = null;
  /**
   * Runs executing in this process now, with how many executions and a promise that settles when
   * the last one stops: `result()` waits on it, no read.
   */
  private readonly executing = new Map<
    string,
    { n: number; stopped: Promise<void>; resolve: () => void }
  >();
  /**
   * Outcomes of runs that ended in this process (a terminal state never changes), so `result()`
   * of a run executed here answers without a read. Bounded; the oldest are dropped.
   */
  private readonly ended = new Map<
    string,
    { status: "completed" | "failed"; result: string | null; error: string | null }
  >();

  constructor(
    private readonly engine: Engine,
    opts: WorkflowEngineOptions = {},
  ) {
    this.maxHistoryEvents = opts.maxHistoryEvents ?? 50_000;
    this.heldRetryMs = opts.heldRetryMs ?? 30_000;
    this.committer = new GroupCommitter(engine.store, opts.maxBatch ?? 256);
    this.loader = new GroupLoader(engine.store, opts.maxBatch ?? 256);
    this.api = {
      get: (id) => this.handleFor(id) as never,
      list: (filter) => this.list(filter),
      start: async (name, input, o) => (await this.startRun(name, input, o)).handle as never,
      startRun: (name, input, o) => this.startRun(name, input, o),
    };
  }

  // ---------------------------------------------------------------- definitions

  define<I, R>(name: string, opts: WorkflowOptions<I, R>): WorkflowDefinition<I, R> {
    assertName(name, "name");
    if (!opts || typeof opts.run !== "function")
      throw new ValidationError("must be a function", "run");
    const version = opts.version ?? 1;
    if (typeof version !== "number" && typeof version !== "string")
      throw new ValidationError("must be a number or a string", "version");
    const versionKey = JSON.stringify(version);
    const def: Definition = {
      name,
      version,
      versionKey,
      opts: opts as WorkflowOptions<unknown, unknown>,
    };
    let versions = this.defs.get(name);
    if (!versions) this.defs.set(name, (versions = new Map<string, Definition>()));
    versions.set(versionKey, def);
    this.latest.set(name, def);
    if (!this.registered) {
      this.registered = true;
      this.engine.registerType(
        WORKFLOW_TASK_TYPE,
        (task: RunningTask, ctx: TaskContext) => this.execute(task, ctx),
        {
          crashPolicy: "retry",
          maxRetries: 1000,
          maxCrashes: 1000,
          gate: false,
        },
      );
    }
    return {
      name,
      version,
      start: async (input, o) =>
        (await this.startDef(def, input, o)).handle as unknown as WorkflowHandle<R>,
    };
  }

  private definitionOf(name: string, versionKey: string): Definition | undefined {
    return this.defs.get(name)?.get(versionKey);
  }

  // ---------------------------------------------------------------- start / read

  private async startRun(name: string, input: unknown, opts: StartOptions = {}) {
    const def = this.latest.get(name);
    if (!def)
      throw new ValidationError(`no workflow named ${JSON.stringify(name)} is registered`, "name");
    return this.startDef(def, input, opts);
  }

  private async startDef(
    def: Definition,
    input: unknown,
    opts: StartOptions = {},
  ): Promise<{ handle: WorkflowHandle; created: boolean }> {
    await this.engine.whenStoreReady();
    const row = await this.newRun(def, input, {
      id: opts.id,
      tenant: opts.tenant,
      project: opts.project,
      parentId: null,
    });
    // With a free slot here, claim the run's first wake-up in the same write that creates the
    // run and execute it at once: no queue, no claim round trip, no history load.
    if (this.engine.reserveSlot()) {
      row.claim = {
        taskId: this.ids(),
        attemptId: `${this.ids()}.1`,
        engineName: this.engine.name,
      };
    }
    let created: boolean;
    let run: WorkflowRunRow;
    try {
      // Through the group committer: concurrent starts share a commit with running runs' steps.
      ({ run, created } = await this.committer.start(row));
    } catch (err) {
      if (row.claim) this.engine.unreserveSlot();
      throw err;
    }
    if (row.claim && !created) this.engine.unreserveSlot();
    if (!created && (run.name !== row.name || run.tenant !== row.tenant)) {
      throw new ValidationError(
        `a workflow run with id ${row.id} already exists under another name or tenant`,
        "id",
      );
    }
    if (created) {
      this.emit("workflow.started", run, "pending");
      if (row.claim) this.adoptFresh(run, row.claim.taskId, row.claim.attemptId, row.leaseMs);
      else this.engine.wakeDispatcher();
    }
    return { handle: this.handle(run.id), created };
  }

  /** Execute a run just created here, its first wake-up claimed by the same write. */
  private adoptFresh(run: WorkflowRunRow, taskId: string, attemptId: string, leaseMs: number) {
    this.fresh = { taskId, run };
    try {
      this.engine.adoptClaimed({
        id: taskId,
        type: WORKFLOW_TASK_TYPE,
        tenant: run.tenant,
        project: run.project,
        requestId: null,
        workflowId: run.id,
        attempt: 1,
        attemptId,
        input: JSON.stringify({ workflowId: run.id }),
        caller: null,
        priority: 1,
        labels: null,
        metadata: null,
        timeoutMs: null,
        maxRetries: 1000,
        crashCount: 0,
        backoff: null,
        leaseMs,
        runAt: run.createdAt,
        traceContext: null,
      });
    } finally {
      this.fresh = null;
    }
  }

  private async newRun(
    def: Definition,
    input: unknown,
    o: { id?: string; tenant?: string; project?: string; parentId: string | null },
  ): Promise<NewWorkflowRun> {
    let value = validateInput(def.opts.input, input, "input");
    if (value instanceof Promise) value = await value;
    const id = o.id === undefined ? this.ids() : assertName(o.id, "id");
    if (!/^[\w:.-]+$/.test(id))
      throw new ValidationError("may contain only letters, digits, _ : . -", "id");
    let text: string | null;
    try {
      text = toText(value);
    } catch {
      throw new ValidationError("must be JSON-serialisable", "input");
    }
    return {
      id,
      name: def.name,
      version: def.versionKey,
      input: text,
      tenant: o.tenant === undefined ? "default" : assertName(o.tenant, "tenant"),
      project: o.project === undefined ? "default" : assertName(o.project, "project"),
      parentId: o.parentId,
      leaseMs: this.engine.workflowLeaseMs,
      now: this.engine.clock.now(),
    };
  }

  private async handleFor(id: string): Promise<WorkflowHandle> {
    await this.engine.whenStoreReady();
    const run = await this.engine.store.getWorkflowRun(id);
    if (!run) throw new WorkflowNotFoundError(id);
    return this.handle(id);
  }

  private async list(filter: WorkflowListFilter = {}): Promise<Page<WorkflowRun>> {
    await this.engine.whenStoreReady();
    const page = await this.engine.store.listWorkflowRuns(filter);
    return { items: page.items.map(toRun), nextCursor: page.nextCursor };
  }

  /** A run's record; `WorkflowNotFoundError` for an unknown id. */
  async status(id: string): Promise<WorkflowRun> {
    await this.engine.whenStoreReady();
    const run = await this.engine.store.getWorkflowRun(id);
    if (!run) throw new WorkflowNotFoundError(id);
    return toRun(run);
  }

  async history(id: string): Promise<HistoryEvent[]> {
    await this.engine.whenStoreReady();
    const loaded = await this.engine.store.loadWorkflow(id);
    if (!loaded) throw new WorkflowNotFoundError(id);
    return loaded.history.map(toHistoryEvent);
  }

  private handle(id: string): WorkflowHandle {
    return {
      id,
      result: (o) => this.result(id, o?.timeoutMs),
      status: () => this.status(id),
      signal: (name, data) => this.signal(id, name, data),
      cancel: (reason) => this.cancel(id, reason),
      history: () => this.history(id),
    };
  }

  private async result(id: string, timeoutMs?: number): Promise<unknown> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      const ended = this.ended.get(id);
      if (ended?.status === "completed")
        return ended.result === null ? null : fromText(ended.result);
      if (ended) throw new WorkflowExecutionError(id, `failed: ${ended.error ?? ""}`);
      // A run executing here: wait for this execution to stop, no read and no subscription (a
      // subscription on an idle bus would register this process with the cross-process event
      // relay: two more statements per result() on PostgreSQL).
      const local = this.executing.get(id);
      if (local) {
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(id, timeoutMs ?? 0);
        await settledOrAfter(local.stopped, left);
        continue;
      }
      let wake: () => void = () => {};
      const changed = new Promise<void>((r) => (wake = r));
      const unsubscribe = this.engine.events.subscribe(() => wake(), {
        workflowId: id,
        types: ["workflow.completed", "workflow.failed", "workflow.cancelled"],
      });
      try {
        const run = await this.status(id);
        if (run.status === "completed") return run.result;
        if (run.status === "failed" || run.status === "cancelled") {
          throw new WorkflowExecutionError(id, `${run.status}: ${run.error ?? ""}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(id, timeoutMs ?? 0);
        // Events cover this process (and others, through the relay); the poll covers the rest.
        await settledOrAfter(changed, Math.min(left, 250));
      } finally {
        unsubscribe();
      }
    }
  }

  async signal(id: string, name: string, data?: unknown): Promise<void> {
    await this.engine.whenStoreReady();
    assertName(name, "name");
    let text: string | null;
    try {
      text = toText(data);
    } catch {
      throw new ValidationError("must be JSON-serialisable", "data");
    }
    const status = await this.engine.store.signalWorkflow(id, name, text, this.engine.clock.now());
    if (status === null) throw new WorkflowNotFoundError(id);
    if (isTerminal(status))
      throw new InvalidTransitionError(id, status, "signalled", "the workflow run has ended");
    const run = await this.engine.store.getWorkflowRun(id);
    if (run) this.emit("workflow.signal", run, run.status);
    this.engine.wakeDispatcher();
  }

  async cancel(id: string, reason = "cancelled"): Promise<WorkflowRun> {
    await this.engine.whenStoreReady();
    const ids = await this.engine.store.cancelWorkflow(id, reason, this.engine.clock.now());
    if (ids === null) throw new WorkflowNotFoundError(id);
    if (ids.length === 0) {
      const run = await this.status(id);
      throw new InvalidTransitionError(id, run.status, "cancelled", "the workflow run has ended");
    }
    for (const runId of ids) {
      // Open activities (and wake-ups) of each cancelled run: running ones see ctx.signal abort.
      await this.engine.cancelAll({ workflowId: runId }, `workflow ${runId} was cancelled`);
      const run = await this.engine.store.getWorkflowRun(runId);
      if (run) this.emit("workflow.cancelled", run, "cancelled");
    }
    this.engine.wakeDispatcher();
    return this.status(id);
  }

  private emit(
    type: WorkflowEventType,
    run: { id: string; tenant: string; project: string },
    status: string,
    error?: string,
  ): void {
    const event: LoomEvent = {
      type,
      workflowId: run.id,
      tenant: run.tenant,
      project: run.project,
      requestId: null,
      status,
      attempt: 0,
      at: new Date(this.engine.clock.now()),
    };
    if (error) event.error = error;
    this.engine.emitEvent(event);
  }

  // ---------------------------------------------------------------- execution

  /** The handler of `loom.workflow` wake-up tasks: replay the run until it waits or ends. */
  private async execute(task: RunningTask, ctx: TaskContext): Promise<void> {
    const id = task.workflowId ?? (task.input as { workflowId: string }).workflowId;
    let local = this.executing.get(id);
    if (local) local.n++;
    else {
      let resolve!: () => void;
      const stopped = new Promise<void>((r) => (resolve = r));
      this.executing.set(id, (local = { n: 1, stopped, resolve }));
    }
    try {
      await this.executeRun(id, task, ctx);
    } finally {
      if (--local.n === 0) {
        this.executing.delete(id);
        local.resolve();
      }
    }
  }

  private async executeRun(id: string, task: RunningTask, ctx: TaskContext): Promise<void> {
    const fresh = this.fresh;
    // A run created by this process a moment ago has only its WORKFLOW_STARTED event and no
    // signals (a signal since then woke it with a second wake-up task, which loads it).
    const loaded =
      fresh && fresh.taskId === task.id && fresh.run.id === id
        ? {
            run: fresh.run,
            history: [
              {
                seq: 0,
                kind: "WORKFLOW_STARTED",
                name: fresh.run.name,
                data: fresh.run.input,
                at: fresh.run.createdAt,
              },
            ],
            signals: [],
          }
        : await this.loader.load(id);
    if (!loaded || isTerminal(loaded.run.status)) return;
    const { run } = loaded;
    const def = this.definitionOf(run.name, run.version);
    if (!def) {
      const versions = [...(this.defs.get(run.name)?.keys() ?? [])];
      const error = `version ${run.version} of workflow ${run.name} is not registered in engine ${this.engine.name}${
        versions.length ? ` (it has ${versions.join(", ")})` : ""
      }; the run waits for a process that has it`;
      await this.commit(run, ctx, {
        workflowId: id,
        expectedLen: run.historyLen,
        events: [],
        status: "waiting",
        error,
        waitingFor: JSON.stringify({ kind: "version", name: run.version }),
        wakeAt: this.engine.clock.now() + this.heldRetryMs,
        tasks: [],
        children: [],
        now: this.engine.clock.now(),
      });
      this.engine.wakeDispatcher(this.engine.clock.now() + this.heldRetryMs);
      return;
    }
    const exec = new Execution(
      this.executionHost(run, ctx),
      run,
      loaded.history,
      loaded.signals,
      def.opts.run,
      def.version,
      ctx.signal,
    );
    const outcome = await exec.execute();
    if (outcome.kind === "error") throw outcome.error;
    if (outcome.kind === "conflict") {
      // Another execution moved the run on: make sure it is looked at again.
      this.engine.wakeDispatcher();
      return;
    }
    if (outcome.kind === "completed" || outcome.kind === "failed") {
      this.remember(id, outcome);
      this.emit(
        outcome.kind === "completed" ? "workflow.completed" : "workflow.failed",
        run,
        outcome.kind,
        outcome.kind === "failed" ? outcome.error : undefined,
      );
      if (run.parentId) this.engine.wakeDispatcher();
    }
  }

  private remember(
    id: string,
    o: { kind: "completed"; result: string } | { kind: "failed"; error: string },
  ): void {
    if (this.ended.size >= 1024) this.ended.delete(this.ended.keys().next().value!);
    this.ended.set(
      id,
      o.kind === "completed"
        ? { status: "completed", result: o.result, error: null }
        : { status: "failed", result: null, error: o.error },
    );
  }

  /** Write a checkpoint of `run` through the group committer, then wake and tell what it implies. */
  private async commit(run: WorkflowRunRow, ctx: TaskContext, cp: Checkpoint): Promise<boolean> {
    // A checkpoint that is not a step's is the execution's last: it completes the wake-up task
    // in the same write, and the dispatcher has nothing left to write for it.
    const attempt = ctx instanceof Attempt ? ctx : null;
    if (cp.status !== "running" && attempt) {
      cp.settle = { taskId: attempt.claimed.id, attemptId: attempt.claimed.attemptId };
    }
    const ok = await this.committer.commit(cp);
    if (!ok) return false;
    if (cp.settle && attempt) attempt.completedInStore = true;
    if (cp.tasks.length || cp.children.length) this.engine.wakeDispatcher();
    if (cp.wakeAt !== null) this.engine.wakeDispatcher(cp.wakeAt);
    if (this.engine.wantsWorkflowEvents) {
      for (const e of cp.events) {
        if (
          e.kind === "STEP_COMPLETED" ||
          e.kind === "STEP_FAILED" ||
          e.kind === "ACTIVITY_COMPLETED" ||
          e.kind === "ACTIVITY_FAILED" ||
          e.kind === "CHILD_COMPLETED"
        ) {
          this.emit("workflow.step", run, cp.status);
          break;
        }
      }
      for (const child of cp.children) this.emit("workflow.started", child, "pending");
    }
    return true;
  }

  private executionHost(run: WorkflowRunRow, ctx: TaskContext): ExecutionHost {
    const engine = this.engine;
    return {
      now: () => engine.clock.now(),
      setTimer: (fn, ms) => engine.clock.setTimer(fn, ms),
      logger: engine.logger,
      activityTask: (run, type, input, opts) =>
        engine.prepareTask(
          {
            type,
            input,
            tenant: run.tenant,
            project: run.project,
            ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
            ...(opts.caller !== undefined ? { caller: opts.caller } : {}),
            ...(opts.labels !== undefined ? { labels: opts.labels } : {}),
            ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
            ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
          },
          run.id,
        ),
      childRun: async (parent, id, workflow, input) => {
        const name = typeof workflow === "string" ? workflow : workflow.name;
        const def =
          typeof workflow === "string"
            ? this.latest.get(name)
            : this.definitionOf(name, JSON.stringify(workflow.version));
        if (!def)
          throw new ValidationError(
            `no workflow named ${JSON.stringify(name)} is registered`,
            "workflow",
          );
        return this.newRun(def, input, {
          id,
          tenant: parent.tenant,
          project: parent.project,
          parentId: parent.id,
        });
      },
      taskOutcome: async (taskId) => {
        const t = await engine.store.getTask(taskId);
        return t ? { status: t.status, result: t.result, error: t.error } : null;
      },
      runOutcome: (runId) => engine.store.getWorkflowRun(runId),
      commit: (cp) => this.commit(run, ctx, cp),
      maxHistoryEvents: this.maxHistoryEvents,
      heldRetryMs: this.heldRetryMs,
    };
  }
}

/** Resolves when `p` settles or after `ms` (never, for `Infinity`), whichever comes first. */
async function settledOrAfter(p: Promise<void>, ms: number): Promise<void> {
  if (ms === Infinity) return p;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
