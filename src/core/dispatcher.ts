import { SpanStatusCode } from "@opentelemetry/api";
import { Attempt, type AttemptHost } from "./attempt.js";
import { retryAt } from "./backoff.js";
import type { Clock, TimerHandle } from "./clock.js";
import { CancelledError, StaleAttemptError, TaskTimeoutError, ValidationError } from "./errors.js";
import { errorText } from "./redact.js";
import { assertProgress } from "./task-request.js";
import { runWithRequestId } from "./request-context.js";
import { contextFrom, type Instruments } from "./telemetry.js";
import type { Logger } from "./logger.js";
import type { LaneClaim } from "../store/lanes.js";
import type {
  ClaimRequest,
  ClaimedTask,
  SettleOutcome,
  Settlement,
  Store,
  TaskChange,
} from "../store/store.js";
import type {
  BackoffOptions,
  GateCheck,
  GateDecision,
  HandlerFn,
  LoomEventType,
  TaskStatus,
} from "./types.js";

export interface RegisteredType {
  type: string;
  run: HandlerFn;
  gate: GateCheck | null;
}

/** What the dispatcher needs from its engine. */
export interface DispatcherHost {
  readonly name: string;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly instruments: Instruments;
  readonly concurrency: number;
  /** Most retry-policy tasks kept claimed in the local buffer beyond the running ones. */
  readonly prefetch: number;
  readonly pollMs: number;
  readonly heartbeatMs: number;
  handlerFor(type: string): RegisteredType | undefined;
  registeredTypes(): string[];
  /** Registered types outside lanes: the plain claim. */
  plainTypes(): string[];
  /** Registered laned types by lane: claimed through the store's lane claim. */
  laneClaims(): LaneClaim[];
  emitChange(
    type: LoomEventType,
    ref: ClaimedTask | TaskChange,
    status: TaskStatus,
    error?: string | null,
  ): void;
  emitProgress(attempt: Attempt, pct: number, note?: string): void;
  /** A task reached a terminal state in this process (for waiters). */
  settledLocally(id: string): void;
  /** Run a gate on a result (recording the decision); `null` when there is no gate. */
  judge(
    gate: GateCheck | null,
    task: { id: string; type: string; attempt: number },
    result: unknown,
  ): GateDecision | null;
  forgetResults(id: string): void;
}

interface Finished {
  attempt: Attempt;
  settlement: Settlement;
  /** Event to emit once the write commits. */
  event: LoomEventType | null;
  reason?: string;
}

const PARSED_BACKOFF = new Map<string, BackoffOptions>();
function parseBackoff(raw: string | null): BackoffOptions | undefined {
  if (raw === null) return undefined;
  let b = PARSED_BACKOFF.get(raw);
  if (!b) {
    b = JSON.parse(raw) as BackoffOptions;
    if (PARSED_BACKOFF.size < 1000) PARSED_BACKOFF.set(raw, b);
  }
  return b;
}

/**
 * The dispatch loop. One store round trip per tick settles every attempt that finished since the
 * last tick and claims tasks for the slots that freed up; ticks never overlap, and a tick is
 * scheduled only when there is something to settle or a free slot and a reason to look.
 */
export class Dispatcher implements AttemptHost {
  readonly running = new Map<string, Attempt>();
  /**
   * Prefetched retry-policy tasks: claimed in the store (lease held), started here without
   * another write as slots free up (DESIGN §3). Released back to `pending` on close.
   */
  private buffer: ClaimedTask[] = [];
  private startingBuffered = false;
  /**
   * Handlers whose promise has not settled yet. An attempt that timed out or was cancelled frees
   * its slot at once (a handler that ignores its signal must not block the lane), but `close()`
   * still waits for its handler to return, up to the deadline.
   */
  private readonly inHandler = new Set<Attempt>();
  private finished: Finished[] = [];
  private tickQueued = false;
  /** Exchanges in flight, and the slots and buffer places their claims may still fill. */
  private inFlight = 0;
  private claimInFlight = false;
  private accepting = false;
  private pollTimer: TimerHandle | null = null;
  private dueTimer: { at: number; handle: TimerHandle } | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  private unwatch: (() => void) | null = null;
  private storeErrors = 0;
  private idleListeners: (() => void)[] = [];
  /** Slots held for tasks this process claims itself outside the exchange (a workflow it starts). */
  private reserved = 0;
  /** Bumped by every `wake()`: a claim that comes back short with it unchanged saw an empty queue. */
  private wakes = 0;
  /** The last claim found fewer ready tasks than it asked for, and nothing woke us since. */
  private drained = false;
  /**
   * A tick could not claim because an exchange was in flight. That exchange's claim may have read
   * the queue before the news that woke us, so look again when it returns.
   */
  private deferred = false;
  private armAfterClaim = false;

  constructor(private readonly host: DispatcherHost) {}

  get logger(): Logger {
    return this.host.logger;
  }

  start(): void {
    if (this.accepting) return;
    this.accepting = true;
    this.unwatch = this.host.store.onExternalChange(() => this.wake());
    this.schedulePoll();
    this.scheduleHeartbeat();
    // The due timer is armed once the first claim is back: on PostgreSQL a read now would open a
    // connection of its own while that claim waits for another.
    this.armAfterClaim = true;
    this.wake();
  }

  /** Stop claiming; attempts in flight go on and are settled as they finish. */
  stopClaiming(): void {
    this.accepting = false;
    this.giveBack(this.buffer.splice(0), this.host.clock.now());
    if (this.finished.length) this.wake();
    this.unwatch?.();
    this.unwatch = null;
    this.pollTimer?.cancel();
    this.pollTimer = null;
    this.dueTimer?.handle.cancel();
    this.dueTimer = null;
  }

  stopHeartbeats(): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = null;
  }

  get isIdle(): boolean {
    return (
      this.running.size === 0 &&
      this.buffer.length === 0 &&
      this.inHandler.size === 0 &&
      this.finished.length === 0 &&
      this.inFlight === 0 &&
      this.reserved === 0 &&
      !this.tickQueued
    );
  }

  /** Resolves when nothing is running and nothing waits to be written. */
  whenIdle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleListeners.push(resolve));
  }

  /** Something may be ready: look soon. */
  wake(): void {
    this.wakes++;
    this.drained = false;
    if (this.tickQueued) return;
    if (!this.accepting && this.finished.length === 0) return;
    this.tickQueued = true;
    setImmediate(() => this.tick());
  }

  /** A task becomes due at `at` (a delay or a retry's backoff): look then. */
  wakeAt(at: number): void {
    if (!this.accepting) return;
    const delay = at - this.host.clock.now();
    if (delay <= 0) return this.wake();
    if (this.dueTimer && this.dueTimer.at <= at) return;
    this.dueTimer?.handle.cancel();
    this.dueTimer = {
      at,
      handle: this.host.clock.setTimer(() => {
        this.dueTimer = null;
        // Timers may fire a little early; a claim before `at` would find nothing and sleep till the poll.
        if (this.host.clock.now() < at) this.wakeAt(at);
        else this.wake();
      }, delay),
    };
  }

  private schedulePoll(): void {
    if (!this.accepting) return;
    this.pollTimer = this.host.clock.setTimer(() => {
      this.wake();
      void this.armDueTimer();
      this.schedulePoll();
    }, this.host.pollMs);
  }

  /** Ask the store when the next waiting task of ours falls due (tasks delayed by other processes). */
  private async armDueTimer(): Promise<void> {
    try {
      const at = await this.host.store.nextRunAt(
        this.host.registeredTypes(),
        this.host.clock.now(),
      );
      if (at !== null) this.wakeAt(at);
    } catch (err) {
      this.logger.warn({ err }, "could not read the next due time");
    }
  }

  private freeSlots(): number {
    return this.accepting ? this.host.concurrency - this.running.size - this.reserved : 0;
  }

  /**
   * Hold a free slot for a task this process is about to claim in its own write (a workflow run
   * it starts and executes inline). False when no slot is free: the task goes through the queue.
   * Every reservation ends with `adopt` or `unreserve`.
   */
  reserveSlot(): boolean {
    if (this.freeSlots() <= 0) return false;
    this.reserved++;
    return true;
  }

  unreserve(): void {
    this.reserved--;
    this.wake();
    this.maybeIdle();
  }

  /** Start a task claimed (into `running`, for this engine) outside the exchange, in a reserved slot. */
  adopt(c: ClaimedTask): void {
    this.reserved--;
    this.startAttempt(c, this.host.clock.now(), true);
  }

  private tick(): void {
    this.tickQueued = false;
    // A store that takes concurrent writes (PostgreSQL) may have several exchanges in flight:
    // the settling of one batch then overlaps the claiming of the next. At most one claims.
    const maxInFlight = this.host.store.capabilities.concurrentExchanges ?? 1;
    if (this.inFlight >= maxInFlight) {
      this.deferred = true;
      return;
    }
    this.startBuffered();
    const types = this.host.plainTypes();
    const lanes = this.host.laneClaims();
    const canClaim = (types.length > 0 || lanes.length > 0) && !this.claimInFlight;
    if (this.claimInFlight) this.deferred = true;
    const limit = canClaim ? Math.max(0, this.freeSlots()) : 0;
    const prefetch =
      canClaim && this.accepting ? Math.max(0, this.host.prefetch - this.buffer.length) : 0;
    const claim: ClaimRequest | null =
      limit > 0 || prefetch > 0
        ? { engineName: this.host.name, types, limit, prefetch, ...(lanes.length ? { lanes } : {}) }
        : null;
    const finished = this.finished;
    this.finished = [];
    if (finished.length === 0 && !claim) return this.maybeIdle();
    // Not with lanes: their slots free only once the settlements commit, so settle, then claim.
    if (claim && !claim.lanes && finished.length > 0 && maxInFlight - this.inFlight >= 2) {
      // Two round trips at once: the settlements, and the claim for what comes next.
      void this.runExchange(finished, null);
      void this.runExchange([], claim);
    } else {
      void this.runExchange(finished, claim);
    }
  }

  private async runExchange(finished: Finished[], claim: ClaimRequest | null): Promise<void> {
    this.inFlight++;
    if (claim) this.claimInFlight = true;
    const release = () => {
      this.inFlight--;
      if (claim) this.claimInFlight = false;
    };
    const now = this.host.clock.now();
    const wakes = this.wakes;
    let settled: SettleOutcome[] = [];
    let claimed: ClaimedTask[] = [];
    let prefetched: ClaimedTask[] | undefined;
    try {
      ({ settled, claimed, prefetched } = await this.host.store.exchange({
        now,
        settle: finished.map((f) => f.settlement),
        claim,
      }));
      this.storeErrors = 0;
    } catch (err) {
      release();
      // Nothing was written: keep the settlements and try again with backoff.
      this.finished = finished.concat(this.finished);
      this.storeErrors++;
      const delay = Math.min(5_000, 50 * 2 ** Math.min(this.storeErrors, 7));
      this.logger.error({ err, retryInMs: delay }, "store write failed; retrying");
      this.host.clock.setTimer(() => this.wake(), delay);
      return;
    }
    release();
    for (let i = 0; i < finished.length; i++) this.afterSettle(finished[i]!, settled[i]!);
    for (const c of claimed) this.startAttempt(c, now, true);
    if (prefetched?.length) {
      for (const c of prefetched) this.host.emitChange("task.claimed", c, "claimed");
      if (this.accepting) {
        this.buffer.push(...prefetched);
        this.startBuffered();
      } else {
        // Closed while the claim was in flight: give them straight back.
        this.giveBack(prefetched, now);
      }
    }
    const limit = claim?.limit ?? 0;
    const fullBatch = limit > 0 && claimed.length === limit;
    const fullPrefetch = (claim?.prefetch ?? 0) > 0 && prefetched?.length === claim?.prefetch;
    if (claim) this.drained = !fullBatch && !fullPrefetch && wakes === this.wakes;
    if (claim && this.armAfterClaim) {
      this.armAfterClaim = false;
      void this.armDueTimer();
    }
    const deferred = this.deferred;
    this.deferred = false;
    if (
      deferred ||
      this.finished.length > 0 ||
      (fullBatch && this.freeSlots() > 0) ||
      (fullPrefetch && this.buffer.length < this.host.prefetch)
    ) {
      this.wake();
    }
    this.maybeIdle();
  }

  /** Start prefetched tasks in free slots: no store write, they are claimed already. */
  private startBuffered(): void {
    // A loop, not recursion: a synchronous handler finishing would otherwise start the next one
    // from inside its own completion, one stack frame per buffered task.
    if (this.startingBuffered) return;
    this.startingBuffered = true;
    try {
      while (this.accepting && this.buffer.length > 0 && this.freeSlots() > 0) {
        this.startAttempt(this.buffer.shift()!, this.host.clock.now(), false);
      }
    } finally {
      this.startingBuffered = false;
    }
  }

  private maybeIdle(): void {
    if (!this.isIdle || this.idleListeners.length === 0) return;
    const listeners = this.idleListeners;
    this.idleListeners = [];
    for (const l of listeners) l();
  }

  private afterSettle(f: Finished, outcome: SettleOutcome): void {
    const c = f.attempt.claimed;
    this.host.instruments.runTime.record(this.host.clock.now() - f.attempt.startedAt, {
      type: c.type,
    });
    if (!outcome.ok) {
      this.logger.warn(
        { taskId: c.id, attemptId: c.attemptId, status: outcome.status },
        "attempt no longer owned the task; its outcome was discarded",
      );
      if (outcome.status && outcome.status !== "claimed" && outcome.status !== "running")
        this.host.settledLocally(c.id);
      return;
    }
    if (f.event === null) return;
    const error = f.settlement.kind === "fail" ? f.settlement.error : null;
    this.host.emitChange(f.event, c, outcome.status!, error);
    switch (f.event) {
      case "task.completed":
        this.host.instruments.completed.add(1, { type: c.type });
        break;
      case "task.failed":
        this.host.instruments.failed.add(1, { type: c.type });
        break;
      case "task.retrying":
        this.host.instruments.retried.add(1, { type: c.type });
        if (f.settlement.kind === "fail" && f.settlement.retryAt !== null)
          this.wakeAt(f.settlement.retryAt);
        break;
    }
    if (f.event !== "task.retrying") {
      this.host.forgetResults(c.id);
      this.host.settledLocally(c.id);
    }
    for (const change of outcome.cascade) {
      this.host.emitChange("task.cancelled", change, "cancelled", change.error);
      this.host.settledLocally(change.id);
    }
  }

  private startAttempt(c: ClaimedTask, now: number, justClaimed: boolean): void {
    const reg = this.host.handlerFor(c.type);
    const attempt = new Attempt(c, this, now);
    this.running.set(c.id, attempt);
    this.host.instruments.queueWait.record(Math.max(0, now - c.runAt), { type: c.type });
    if (justClaimed) this.host.emitChange("task.claimed", c, "claimed");
    this.host.emitChange("task.running", c, "running");
    if (!reg) {
      // Registered types only are claimed; this is a type unregistered since.
      this.finish(attempt, { kind: "release", id: c.id, attemptId: c.attemptId }, null);
      return;
    }
    if (c.timeoutMs !== null) {
      attempt.timeoutTimer = this.host.clock.setTimer(() => this.timeOut(attempt), c.timeoutMs);
    }
    const span = this.host.instruments.tracer.startSpan(
      `loom.task ${c.type}`,
      { attributes: { "loom.task.id": c.id, "loom.task.attempt": c.attempt } },
      c.traceContext
        ? contextFrom(JSON.parse(c.traceContext) as Record<string, string>)
        : undefined,
    );
    let out: unknown;
    try {
      out = runWithRequestId(c.requestId, () => reg.run(attempt.task, attempt));
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      return this.failed(attempt, err, isRetryable(err));
    }
    if (
      out !== null &&
      typeof out === "object" &&
      typeof (out as Promise<unknown>).then === "function"
    ) {
      this.inHandler.add(attempt);
      const returned = () => {
        this.inHandler.delete(attempt);
        if (attempt.done) this.maybeIdle();
      };
      Promise.resolve(out)
        .finally(returned)
        .catch(() => {});
      (out as Promise<unknown>).then(
        (result) => {
          span.end();
          this.succeeded(attempt, reg, result);
        },
        (err: unknown) => {
          span.recordException(err as Error);
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
          this.failed(attempt, err, isRetryable(err));
        },
      );
    } else {
      span.end();
      this.succeeded(attempt, reg, out);
    }
  }

  /**
   * The handler completed its own task in its last store write: free the slot and tell, no
   * write. Look for more work only if the last claim did not already find the queue empty.
   */
  private completedInStore(attempt: Attempt): void {
    const c = attempt.claimed;
    this.retire(attempt);
    this.host.instruments.runTime.record(this.host.clock.now() - attempt.startedAt, {
      type: c.type,
    });
    this.host.emitChange("task.completed", c, "completed");
    this.host.instruments.completed.add(1, { type: c.type });
    this.host.forgetResults(c.id);
    this.host.settledLocally(c.id);
    this.startBuffered();
    if (this.drained) this.maybeIdle();
    else this.wake();
  }

  private succeeded(attempt: Attempt, reg: RegisteredType, result: unknown): void {
    if (attempt.done) return;
    if (attempt.completedInStore) return this.completedInStore(attempt);
    const c = attempt.claimed;
    let json: string | null;
    try {
      json = result === undefined ? null : JSON.stringify(result);
    } catch (err) {
      return this.failed(
        attempt,
        new ValidationError(
          `handler result is not JSON-serialisable: ${(err as Error).message}`,
          "result",
        ),
      );
    }
    const decision = this.host.judge(reg.gate, c, result);
    if (decision && !decision.accept) {
      return this.failed(attempt, new Error(`quality gate: ${decision.reason}`), decision.retry);
    }
    this.finish(
      attempt,
      { kind: "complete", id: c.id, attemptId: c.attemptId, result: json },
      "task.completed",
    );
  }

  private failed(attempt: Attempt, err: unknown, retryable = true): void {
    if (attempt.done) return;
    if (attempt.completedInStore) return this.completedInStore(attempt);
    const c = attempt.claimed;
    const error = errorText(err);
    const at = retryAt(c, retryable, this.host.clock.now(), parseBackoff(c.backoff));
    this.finish(
      attempt,
      { kind: "fail", id: c.id, attemptId: c.attemptId, error, retryAt: at },
      at !== null ? "task.retrying" : "task.failed",
    );
  }

  private timeOut(attempt: Attempt): void {
    if (attempt.done) return;
    const err = new TaskTimeoutError(attempt.claimed.id, attempt.claimed.timeoutMs ?? 0);
    attempt.abort(err);
    this.failed(attempt, err);
  }

  /** The attempt's outcome is decided: free its slot (its handler may still be returning). */
  private retire(attempt: Attempt): void {
    attempt.done = true;
    attempt.timeoutTimer?.cancel();
    this.running.delete(attempt.claimed.id);
  }

  /** Queue prefetched tasks to be released to `pending`: they never started here. */
  private giveBack(tasks: ClaimedTask[], now: number): void {
    for (const c of tasks) {
      this.finished.push({
        attempt: new Attempt(c, this, now),
        settlement: { kind: "release", id: c.id, attemptId: c.attemptId },
        event: null,
      });
    }
  }

  private finish(attempt: Attempt, settlement: Settlement, event: LoomEventType | null): void {
    this.retire(attempt);
    this.finished.push({ attempt, settlement, event });
    this.startBuffered();
    this.wake();
  }

  /** The task was cancelled (here or elsewhere): abort the handler and free its slot. */
  cancelRunning(id: string, reason: string): void {
    const buffered = this.buffer.findIndex((c) => c.id === id);
    if (buffered >= 0) this.buffer.splice(buffered, 1);
    const attempt = this.running.get(id);
    if (!attempt || attempt.done) return;
    this.retire(attempt);
    attempt.abort(new CancelledError(id, reason));
    this.host.forgetResults(id);
    this.wake();
  }

  /**
   * A lane claim chose this attempt to make room for higher-priority work: abort its handler
   * and give the task back to `pending` (no retry used; the release frees the lane slot).
   */
  preempt(id: string, attemptId: string): void {
    const attempt = this.running.get(id);
    if (!attempt || attempt.done || attempt.claimed.attemptId !== attemptId) return;
    attempt.abort(new CancelledError(id, "preempted by higher-priority work in its lane"));
    this.finish(attempt, { kind: "release", id, attemptId }, null);
  }

  /** The attempt lost its lease (the store says another attempt or state owns the task). */
  private lose(attempt: Attempt, status: TaskStatus | null): void {
    if (attempt.done) return;
    this.retire(attempt);
    attempt.abort(
      status === "cancelled"
        ? new CancelledError(attempt.claimed.id)
        : new StaleAttemptError(attempt.claimed.id, attempt.claimed.attemptId, status ?? undefined),
    );
    this.wake();
  }

  /** Abort every running handler (close past its deadline); leases take care of the rows. */
  abortAll(reason: unknown): void {
    for (const attempt of this.running.values()) attempt.abort(reason);
    for (const attempt of this.inHandler) attempt.abort(reason);
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = this.host.clock.setTimer(() => {
      void this.heartbeatAll().finally(() => {
        if (this.heartbeatTimer) this.scheduleHeartbeat();
      });
    }, this.host.heartbeatMs);
  }

  private async heartbeatAll(): Promise<void> {
    const attempts = [...this.running.values()].filter((a) => !a.done);
    const buffered = [...this.buffer];
    if (attempts.length === 0 && buffered.length === 0) return;
    try {
      const lost = new Set(
        await this.host.store.heartbeatMany(
          [
            ...attempts.map((a) => ({ id: a.claimed.id, attemptId: a.claimed.attemptId })),
            ...buffered.map((c) => ({ id: c.id, attemptId: c.attemptId })),
          ],
          this.host.clock.now(),
        ),
      );
      if (lost.size) this.buffer = this.buffer.filter((c) => !lost.has(c.id));
      for (const a of attempts) {
        if (!lost.has(a.claimed.id)) continue;
        const task = await this.host.store.getTask(a.claimed.id);
        this.lose(a, task?.status ?? null);
      }
    } catch (err) {
      this.logger.error({ err }, "heartbeat failed; leases may expire if this persists");
    }
  }

  async reportProgress(attempt: Attempt, pct: number, note?: string): Promise<void> {
    assertProgress(pct);
    const c = attempt.claimed;
    const out = await this.host.store.touch({
      id: c.id,
      attemptId: c.attemptId,
      now: this.host.clock.now(),
      progress: pct,
      note: note ?? null,
    });
    if (!out.ok) {
      this.lose(attempt, out.status);
      throw new StaleAttemptError(c.id, c.attemptId, out.status ?? undefined);
    }
    this.host.emitProgress(attempt, pct, note);
  }

  async renewLease(attempt: Attempt): Promise<void> {
    const c = attempt.claimed;
    const out = await this.host.store.touch({
      id: c.id,
      attemptId: c.attemptId,
      now: this.host.clock.now(),
    });
    if (!out.ok) {
      this.lose(attempt, out.status);
      throw new StaleAttemptError(c.id, c.attemptId, out.status ?? undefined);
    }
  }
}

/** A handler opts out of retries by throwing an error with `retryable: false` (e.g. an HTTP 404). */
function isRetryable(err: unknown): boolean {
  return !(
    err !== null &&
    typeof err === "object" &&
    (err as { retryable?: unknown }).retryable === false
  );
}
