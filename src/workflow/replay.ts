import {
  ActivityFailedError,
  NonDeterministicWorkflowError,
  WaitTimeoutError,
  WorkflowExecutionError,
} from "../core/errors.js";
import { silentLogger, type LogFn, type Logger } from "../core/logger.js";
import type { NewTask } from "../store/store.js";
import type {
  Checkpoint,
  HistoryRow,
  NewWorkflowRun,
  SignalRow,
  WorkflowRunRow,
  WorkflowStatus,
} from "../store/workflows.js";
import type {
  ActivityOptions,
  HistoryEventKind,
  StepOptions,
  WaitingFor,
  WorkflowContext,
  WorkflowDefinition,
  WorkflowState,
  WorkflowVersion,
} from "./types.js";

/** What an execution needs from the runtime around it. */
export interface ExecutionHost {
  now(): number;
  setTimer(fn: () => void, ms: number): { cancel(): void };
  logger: Logger;
  /** Build an activity task row (validated like a submit), carrying `workflowId`. */
  activityTask(
    run: WorkflowRunRow,
    type: string,
    input: unknown,
    opts: ActivityOptions,
  ): Promise<NewTask>;
  /** A child run row for a definition (or a workflow name) and its input. */
  childRun(
    parent: WorkflowRunRow,
    id: string,
    workflow: WorkflowDefinition<unknown, unknown> | string,
    input: unknown,
  ): Promise<NewWorkflowRun>;
  taskOutcome(
    id: string,
  ): Promise<{ status: string; result: unknown; error: string | null } | null>;
  runOutcome(
    id: string,
  ): Promise<{ status: WorkflowStatus; result: string | null; error: string | null } | null>;
  /** Write a checkpoint (group commit); false when another execution moved the run on. */
  commit(cp: Checkpoint): Promise<boolean>;
  maxHistoryEvents: number;
  heldRetryMs: number;
}

export type ExecutionOutcome =
  | { kind: "suspended"; waitingFor: WaitingFor; committed: boolean }
  | { kind: "completed"; committed: boolean; result: string }
  | { kind: "failed"; error: string; committed: boolean }
  | { kind: "held"; error: string; committed: boolean }
  | { kind: "conflict" }
  /** The store failed: nothing of this execution's last write was committed; retry the wake-up. */
  | { kind: "error"; error: unknown };

type Call = "step" | "activity" | "sleep" | "signal" | "child";

/** Never settles: a suspended workflow function simply stops here and is garbage-collected. */
const NEVER = new Promise<never>(() => {});

const toText = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
const fromText = (t: string | null): unknown => (t === null ? undefined : JSON.parse(t));
const roundTrip = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

function callOf(e: HistoryRow): Call | null {
  switch (e.kind) {
    case "STEP_COMPLETED":
    case "STEP_FAILED":
      return "step";
    case "ACTIVITY_SCHEDULED":
    case "ACTIVITY_COMPLETED":
    case "ACTIVITY_FAILED":
      return "activity";
    case "TIMER_STARTED":
    case "TIMER_FIRED":
      return (fromText(e.data) as { signal?: boolean } | undefined)?.signal ? "signal" : "sleep";
    case "SIGNAL_RECEIVED":
      return "signal";
    case "CHILD_STARTED":
    case "CHILD_COMPLETED":
      return "child";
    default:
      return null;
  }
}

/** An error as a step failure records it, and the same error rebuilt on every replay. */
function errorData(err: unknown): { name: string; message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { name: "Error", message: String(err) };
}
function rebuildError(d: { name: string; message: string; code?: string }): Error {
  const e = new Error(d.message);
  e.name = d.name;
  if (d.code) (e as Error & { code?: string }).code = d.code;
  return e;
}

function seededRandom(seed: string): () => number {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  let a = h >>> 0;
  return () => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One execution of a run: replays the function from the top against the recorded history, runs
 * what is new, and ends when the function must wait, returns, throws, or disagrees with history.
 */
export class Execution {
  private readonly bySeq = new Map<number, HistoryRow[]>();
  private readonly stateEvents: HistoryRow[] = [];
  private readonly signals = new Map<string, SignalRow[]>();
  private readonly consumed = new Map<string, number>();
  private readonly lastRecordedSeq: number;
  private seq = 0;
  private stateIndex = 0;
  private stateValues: Record<string, unknown> = {};
  private stateDirty = false;
  private len: number;
  private pending: HistoryRow[] = [];
  private lastAt: number;
  private stopped = false;
  private stop!: (o: ExecutionOutcome) => void;
  private readonly stopPromise = new Promise<ExecutionOutcome>((r) => (this.stop = r));
  private readonly random: () => number;
  private readonly ctx: WorkflowContext;

  constructor(
    private readonly host: ExecutionHost,
    private readonly run: WorkflowRunRow,
    history: HistoryRow[],
    signals: SignalRow[],
    private readonly fn: (ctx: WorkflowContext, input: unknown) => unknown,
    private readonly version: WorkflowVersion,
    /** The wake-up task's signal: aborts running steps when the run is cancelled. */
    private readonly abort: AbortSignal,
  ) {
    let last = 0;
    this.lastAt = history[0]?.at ?? run.createdAt;
    for (const e of history) {
      if (e.kind === "STATE_SET" || e.kind === "STATE_UPDATE") this.stateEvents.push(e);
      else if (callOf(e) !== null) {
        const list = this.bySeq.get(e.seq);
        if (list) list.push(e);
        else this.bySeq.set(e.seq, [e]);
        last = Math.max(last, e.seq);
      }
    }
    this.lastRecordedSeq = last;
    for (const s of signals) {
      const list = this.signals.get(s.name);
      if (list) list.push(s);
      else this.signals.set(s.name, [s]);
    }
    this.len = run.historyLen;
    this.random = seededRandom(run.id);
    this.ctx = this.makeContext();
  }

  private get replaying(): boolean {
    return this.seq < this.lastRecordedSeq;
  }

  /** Run until the function waits or ends; the final checkpoint is written before this resolves. */
  async execute(): Promise<ExecutionOutcome> {
    const input = fromText(this.run.input);
    void (async () => {
      try {
        const result: unknown = await this.fn(this.ctx, input);
        if (this.stopped) return;
        if (this.seq < this.lastRecordedSeq) {
          const next = this.bySeq.get(this.seq + 1)?.[0];
          this.hold(
            new NonDeterministicWorkflowError(
              this.run.id,
              this.seq + 1,
              next ? `${callOf(next)}("${next.name}")` : "more calls",
              "the end of the workflow",
            ),
          );
          return;
        }
        this.finish("completed", result);
      } catch (err) {
        if (this.stopped) return;
        this.finish("failed", err);
      }
    })();
    const outcome = await this.stopPromise;
    return outcome;
  }

  // ---------------------------------------------------------------- endings

  private end(o: ExecutionOutcome): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stop(o);
  }

  private finish(kind: "completed" | "failed", value: unknown): void {
    const now = this.host.now();
    if (kind === "completed") {
      let text: string | null;
      try {
        text = toText(value);
      } catch (err) {
        return this.finish("failed", err);
      }
      this.push("WORKFLOW_COMPLETED", null, text, now);
      const result = text ?? "null";
      void this.final("completed", { result }).then((ok) =>
        this.end(ok === null ? { kind: "conflict" } : { kind: "completed", committed: ok, result }),
      );
    } else {
      const error = errorData(value);
      const text = `${error.name}: ${error.message}`;
      this.push("WORKFLOW_FAILED", null, JSON.stringify(error), now);
      void this.final("failed", { error: text }).then((ok) =>
        this.end(
          ok === null ? { kind: "conflict" } : { kind: "failed", error: text, committed: ok },
        ),
      );
    }
  }

  /** The run disagrees with its history: hold it (waiting, with the error), retry later. */
  private hold(err: NonDeterministicWorkflowError): void {
    if (this.stopped) return;
    this.pending = [];
    const waitingFor: WaitingFor = { kind: "code", name: `seq ${err.seq}` };
    this.stopped = true;
    void this.host
      .commit({
        workflowId: this.run.id,
        expectedLen: this.len,
        events: [],
        status: "waiting",
        error: err.message,
        waitingFor: JSON.stringify(waitingFor),
        wakeAt: this.host.now() + this.host.heldRetryMs,
        tasks: [],
        children: [],
        now: this.host.now(),
      })
      .then(
        (ok) =>
          this.stop(
            ok ? { kind: "held", error: err.message, committed: true } : { kind: "conflict" },
          ),
        () => this.stop({ kind: "conflict" }),
      );
  }

  private suspend(
    waitingFor: WaitingFor,
    wakeAt: number | null,
    extra: { tasks?: NewTask[]; children?: NewWorkflowRun[] } = {},
  ): Promise<never> {
    if (this.stopped) return NEVER;
    void this.write({
      status: "waiting",
      waitingFor: JSON.stringify({ ...waitingFor, until: waitingFor.until?.toISOString() }),
      wakeAt,
      tasks: extra.tasks ?? [],
      children: extra.children ?? [],
    }).then((ok) => {
      if (this.stopped) return;
      this.end(
        ok === null ? { kind: "conflict" } : { kind: "suspended", waitingFor, committed: ok },
      );
    });
    return NEVER;
  }

  /** Write the final checkpoint of a run that ended. */
  private final(
    status: "completed" | "failed",
    fields: { result?: string; error?: string },
  ): Promise<boolean | null> {
    return this.write({
      status,
      waitingFor: null,
      wakeAt: null,
      tasks: [],
      children: [],
      ...fields,
    });
  }

  /**
   * Write pending events and the run's standing. Resolves true when written, null on a conflict
   * (another execution moved the run on: this one stops). A history over the limit fails the run.
   */
  private async write(p: {
    status: WorkflowStatus;
    waitingFor: string | null;
    wakeAt: number | null;
    tasks: NewTask[];
    children: NewWorkflowRun[];
    result?: string;
    error?: string;
  }): Promise<boolean | null> {
    let cp: Checkpoint = {
      workflowId: this.run.id,
      expectedLen: this.len,
      events: this.pending,
      error: null,
      ...p,
      state: this.stateDirty ? JSON.stringify(this.stateValues) : null,
      now: this.host.now(),
    };
    if (this.len + this.pending.length > this.host.maxHistoryEvents) {
      const error = `history limit exceeded: ${this.len + this.pending.length} events, more than maxHistoryEvents ${this.host.maxHistoryEvents}`;
      cp = {
        workflowId: this.run.id,
        expectedLen: this.len,
        events: [
          {
            seq: this.seq,
            kind: "WORKFLOW_FAILED",
            name: null,
            data: JSON.stringify({ name: "Error", message: error }),
            at: this.host.now(),
          },
        ],
        status: "failed",
        error,
        waitingFor: null,
        wakeAt: null,
        tasks: [],
        children: [],
        now: this.host.now(),
      };
      const ok = await this.host.commit(cp).catch(() => false);
      this.end(ok ? { kind: "failed", error, committed: true } : { kind: "conflict" });
      return NEVER;
    }
    this.pending = [];
    this.stateDirty = false;
    let ok: boolean;
    try {
      ok = await this.host.commit(cp);
    } catch (error) {
      // Never let a store error reach workflow code (a step must not be recorded as failed
      // because its checkpoint could not be written): stop here, the wake-up task retries.
      this.end({ kind: "error", error });
      return NEVER;
    }
    if (!ok) return null;
    this.len += cp.events.length;
    return true;
  }

  // ---------------------------------------------------------------- history access

  private push(kind: HistoryEventKind, name: string | null, data: string | null, at: number): void {
    this.pending.push({ seq: this.seq, kind, name, data, at });
    this.lastAt = at;
  }

  /** The recorded events of the next call, checked against what the code calls now. */
  private recorded(call: Call, name: string): HistoryRow[] | null {
    const seq = ++this.seq;
    const events = this.bySeq.get(seq);
    if (!events) return null;
    const first = events[0]!;
    const was = callOf(first)!;
    if (was !== call || first.name !== name) {
      const err = new NonDeterministicWorkflowError(
        this.run.id,
        seq,
        `${was}("${first.name}")`,
        `${call}("${name}")`,
      );
      this.hold(err);
      throw err;
    }
    return events;
  }

  private consume(e: HistoryRow): HistoryRow {
    this.lastAt = Math.max(this.lastAt, e.at);
    return e;
  }

  private find(events: HistoryRow[], kind: HistoryEventKind): HistoryRow | undefined {
    const e = events.find((x) => x.kind === kind);
    return e ? this.consume(e) : undefined;
  }

  // ---------------------------------------------------------------- ctx

  private makeContext(): WorkflowContext {
    const log = this.replayLogger();
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const state: WorkflowState = {
      get: <T>(key: string) => self.stateValues[key] as T | undefined,
      set: (key, value) => self.setState("STATE_SET", key, () => value),
      update: <T>(key: string, fn: (current: T | undefined) => T) =>
        self.setState("STATE_UPDATE", key, () => fn(self.stateValues[key] as T | undefined)) as T,
      batch: (fn) => fn(),
    };
    return {
      workflowId: this.run.id,
      name: this.run.name,
      version: this.version,
      step: (name, fn, opts) => this.step(name, fn, opts),
      activity: (type, input, opts) => this.activity(type, input, opts),
      sleep: (name, d) => this.sleep(name, d),
      waitForSignal: (name, opts) => this.waitForSignal(name, opts),
      child: (wf, input) => this.child(wf, input) as never,
      state,
      now: () => new Date(this.lastAt),
      random: () => this.random(),
      log,
    };
  }

  private replayLogger(): Logger {
    const base = this.host.logger.child
      ? this.host.logger.child({ workflowId: this.run.id })
      : this.host.logger;
    const wrap =
      (fn: LogFn): LogFn =>
      (...args: [object, string?] | [string]) => {
        if (this.replaying || this.stopped) return;
        (fn as (...a: unknown[]) => void)(...args);
      };
    if (base === silentLogger) return silentLogger;
    return {
      trace: wrap((...a: unknown[]) => (base.trace as (...x: unknown[]) => void)(...a)),
      debug: wrap((...a: unknown[]) => (base.debug as (...x: unknown[]) => void)(...a)),
      info: wrap((...a: unknown[]) => (base.info as (...x: unknown[]) => void)(...a)),
      warn: wrap((...a: unknown[]) => (base.warn as (...x: unknown[]) => void)(...a)),
      error: wrap((...a: unknown[]) => (base.error as (...x: unknown[]) => void)(...a)),
    };
  }

  private setState(kind: "STATE_SET" | "STATE_UPDATE", key: string, value: () => unknown): unknown {
    if (this.stopped) return undefined;
    const recorded = this.stateEvents[this.stateIndex];
    if (recorded) {
      this.stateIndex++;
      if (recorded.kind !== kind || recorded.name !== key) {
        const err = new NonDeterministicWorkflowError(
          this.run.id,
          recorded.seq,
          `state ${recorded.kind === "STATE_SET" ? "set" : "update"}("${recorded.name}")`,
          `state ${kind === "STATE_SET" ? "set" : "update"}("${key}")`,
        );
        this.hold(err);
        throw err;
      }
      const v = fromText(this.consume(recorded).data);
      this.stateValues[key] = v;
      return v;
    }
    const v = roundTrip(value());
    this.stateValues[key] = v;
    this.stateDirty = true;
    this.push(kind, key, toText(v) ?? "null", this.host.now());
    return v;
  }

  private async step<T>(
    name: string,
    fn: (a: { attempt: number; signal: AbortSignal }) => T | Promise<T>,
    opts: StepOptions = {},
  ): Promise<Awaited<T>> {
    if (this.stopped) return NEVER;
    const events = this.recorded("step", name);
    if (events) {
      const done = this.find(events, "STEP_COMPLETED");
      if (done) return fromText(done.data) as Awaited<T>;
      const failed = this.find(events, "STEP_FAILED")!;
      throw rebuildError(JSON.parse(failed.data!) as { name: string; message: string });
    }
    const maxRetries = opts.maxRetries ?? 0;
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    for (let attempt = 1; ; attempt++) {
      outcome = await this.attempt(fn, attempt, opts.timeoutMs);
      if (outcome.ok || attempt > maxRetries || this.abort.aborted) break;
    }
    if (this.stopped) return NEVER;
    let recordedValue: unknown;
    if (outcome.ok) {
      try {
        recordedValue = roundTrip(outcome.value);
        this.push("STEP_COMPLETED", name, toText(recordedValue), this.host.now());
      } catch (err) {
        outcome = { ok: false, error: err };
      }
    }
    if (!outcome.ok) {
      this.push("STEP_FAILED", name, JSON.stringify(errorData(outcome.error)), this.host.now());
    }
    // A step returns only after its result is saved.
    const ok = await this.write({
      status: "running",
      waitingFor: null,
      wakeAt: null,
      tasks: [],
      children: [],
    });
    if (ok === null) {
      this.end({ kind: "conflict" });
      return NEVER;
    }
    if (!outcome.ok) throw rebuildError(errorData(outcome.error));
    return recordedValue as Awaited<T>;
  }

  private async attempt<T>(
    fn: (a: { attempt: number; signal: AbortSignal }) => T | Promise<T>,
    attempt: number,
    timeoutMs: number | undefined,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
    if (timeoutMs === undefined) {
      // No timeout: the run's own signal (aborted on cancel) is the step's; no allocation.
      try {
        return { ok: true, value: await fn({ attempt, signal: this.abort }) };
      } catch (error) {
        return { ok: false, error };
      }
    }
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.abort]);
    let timer: { cancel(): void } | null = null;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.host.setTimer(() => {
        const err = new Error(`step timed out after ${timeoutMs} ms`);
        err.name = "StepTimeoutError";
        controller.abort(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      const value = await Promise.race([
        Promise.resolve().then(() => fn({ attempt, signal })),
        timedOut,
      ]);
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error };
    } finally {
      (timer as { cancel(): void } | null)?.cancel();
    }
  }

  private async activity<T>(type: string, input: unknown, opts: ActivityOptions = {}): Promise<T> {
    if (this.stopped) return NEVER;
    const events = this.recorded("activity", type);
    if (!events) {
      const task = await this.host.activityTask(this.run, type, input, opts);
      this.push("ACTIVITY_SCHEDULED", type, JSON.stringify({ taskId: task.id }), this.host.now());
      return this.suspend({ kind: "activity", name: type }, null, { tasks: [task] });
    }
    const scheduled = this.find(events, "ACTIVITY_SCHEDULED")!;
    const taskId = (JSON.parse(scheduled.data!) as { taskId: string }).taskId;
    const done = this.find(events, "ACTIVITY_COMPLETED");
    if (done) return fromText(done.data) as T;
    const failed = this.find(events, "ACTIVITY_FAILED");
    if (failed) {
      throw new ActivityFailedError(
        type,
        taskId,
        (JSON.parse(failed.data!) as { error: string }).error,
      );
    }
    const task = await this.host.taskOutcome(taskId);
    if (this.stopped) return NEVER;
    if (task?.status === "completed") {
      this.push("ACTIVITY_COMPLETED", type, toText(task.result), this.host.now());
      return roundTrip(task.result) as T;
    }
    if (
      !task ||
      task.status === "failed" ||
      task.status === "failed_crash" ||
      task.status === "cancelled"
    ) {
      const error = task
        ? `${task.status}: ${task.error ?? "no error recorded"}`
        : "the task no longer exists";
      this.push(
        "ACTIVITY_FAILED",
        type,
        JSON.stringify({ error, status: task?.status ?? null }),
        this.host.now(),
      );
      throw new ActivityFailedError(type, taskId, error);
    }
    return this.suspend({ kind: "activity", name: type }, null);
  }

  private async sleep(name: string, duration: number | Date): Promise<void> {
    if (this.stopped) return NEVER;
    const events = this.recorded("sleep", name);
    let until: number;
    if (!events) {
      until =
        duration instanceof Date ? duration.getTime() : this.host.now() + Math.max(0, duration);
      this.push("TIMER_STARTED", name, JSON.stringify({ until }), this.host.now());
    } else {
      if (this.find(events, "TIMER_FIRED")) return;
      until = (JSON.parse(this.find(events, "TIMER_STARTED")!.data!) as { until: number }).until;
    }
    if (this.host.now() >= until) {
      this.push("TIMER_FIRED", name, null, this.host.now());
      return;
    }
    return this.suspend({ kind: "timer", name, until: new Date(until) }, until);
  }

  private async waitForSignal<T>(name: string, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.stopped) return NEVER;
    const events = this.recorded("signal", name);
    let until: number | null = null;
    if (events) {
      const got = this.find(events, "SIGNAL_RECEIVED");
      if (got) {
        this.consumed.set(name, (this.consumed.get(name) ?? 0) + 1);
        return fromText(got.data) as T;
      }
      if (this.find(events, "TIMER_FIRED")) {
        throw new WaitTimeoutError(`${this.run.id} signal ${name}`, opts.timeoutMs ?? 0);
      }
      const started = this.find(events, "TIMER_STARTED");
      if (started) until = (JSON.parse(started.data!) as { until: number }).until;
    } else if (opts.timeoutMs !== undefined) {
      until = this.host.now() + Math.max(0, opts.timeoutMs);
      this.push("TIMER_STARTED", name, JSON.stringify({ until, signal: true }), this.host.now());
    }
    // The k-th wait for a name takes the k-th signal of that name.
    const k = this.consumed.get(name) ?? 0;
    const signal = this.signals.get(name)?.[k];
    if (signal) {
      this.consumed.set(name, k + 1);
      this.push("SIGNAL_RECEIVED", name, signal.data, Math.max(signal.at, this.host.now()));
      return fromText(signal.data) as T;
    }
    if (until !== null && this.host.now() >= until) {
      this.push("TIMER_FIRED", name, JSON.stringify({ signal: true }), this.host.now());
      throw new WaitTimeoutError(`${this.run.id} signal ${name}`, opts.timeoutMs ?? 0);
    }
    return this.suspend(
      { kind: "signal", name, ...(until !== null ? { until: new Date(until) } : {}) },
      until,
    );
  }

  private async child(
    workflow: WorkflowDefinition<unknown, unknown> | string,
    input: unknown,
  ): Promise<unknown> {
    if (this.stopped) return NEVER;
    const name = typeof workflow === "string" ? workflow : workflow.name;
    const events = this.recorded("child", name);
    const childId = `${this.run.id}:${this.seq}`;
    if (!events) {
      const child = await this.host.childRun(this.run, childId, workflow, input);
      this.push("CHILD_STARTED", name, JSON.stringify({ id: childId }), this.host.now());
      return this.suspend({ kind: "child", name }, null, { children: [child] });
    }
    this.find(events, "CHILD_STARTED");
    const done = this.find(events, "CHILD_COMPLETED");
    let outcome: { status: string; result: unknown; error: string | null };
    if (done) {
      outcome = JSON.parse(done.data!) as typeof outcome;
    } else {
      const run = await this.host.runOutcome(childId);
      if (this.stopped) return NEVER;
      if (
        !run ||
        (run.status !== "completed" && run.status !== "failed" && run.status !== "cancelled")
      ) {
        return this.suspend({ kind: "child", name }, null);
      }
      outcome = { status: run.status, result: fromText(run.result) ?? null, error: run.error };
      this.push("CHILD_COMPLETED", name, JSON.stringify(outcome), this.host.now());
    }
    if (outcome.status === "completed") return outcome.result;
    throw new WorkflowExecutionError(childId, `${outcome.status}: ${outcome.error ?? ""}`);
  }
}

export { toText, fromText };
