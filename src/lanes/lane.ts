import {
  CancelledError,
  LaneBusyError,
  LaneClosedError,
  NotQueuedError,
  ValidationError,
} from "../core/errors.js";
import { FairSharePicker, type FairShareCaller } from "./fair-share.js";
import { BandedQueue, type Queueable } from "./priority-queue.js";
import { RunTimeEstimator, ThroughputWindow } from "./throughput.js";

/** `"caller"`: fair share between callers (the default). `"none"`: one queue, priority then FIFO. */
export type LaneFairness = "caller" | "none";

export interface LanePreemptionOptions {
  /** Default true. */
  enabled?: boolean;
  /** A running job becomes preemptible only after running this long. Default 30 000. */
  minRuntimeMs?: number;
}

export interface LaneOptions {
  name: string;
  /** Jobs that may run at once; an integer ≥ 1. */
  concurrency: number;
  fairness?: LaneFairness;
  preemption?: LanePreemptionOptions;
  /** Milliseconds since the epoch; injectable for tests. Default `Date.now`. */
  now?: () => number;
}

export interface LaneJob<T = unknown> {
  /** Unique among the lane's queued and running jobs; generated when absent. */
  id?: string;
  /** Fair-share identity. Jobs without one share the caller `""`. */
  caller?: string;
  /** Integer, higher first; default 1. */
  priority?: number;
  /** Whether a higher-priority arrival may abort and re-queue this job. Default false. */
  preemptible?: boolean;
  /**
   * The work. `signal` aborts when the job is preempted (reason: a `CancelledError` whose reason
   * starts with "preempted"), when the lane closes (`LaneClosedError`) or when the `signal` given
   * to `submitAndWait` aborts while it runs (`CancelledError`).
   */
  run(signal: AbortSignal): T | PromiseLike<T>;
}

export interface LaneSubmitOptions {
  /** Refuse the job (`LaneBusyError`, nothing enqueued) when its estimated wait exceeds this. */
  maxWaitMs?: number;
}

export interface LaneSubmitAndWaitOptions extends LaneSubmitOptions {
  /** Aborting removes the job while it is queued; while it runs, the job's own signal aborts. */
  signal?: AbortSignal;
}

export interface LaneSubmitResult {
  id: string;
  /** 0: started now. Otherwise the job's place in the start order, from 1. */
  position: number;
  /** Estimated milliseconds until the job starts (0 when it started now). */
  etaMs: number;
}

export interface LaneCallerStats {
  running: number;
  queued: number;
}

export interface LaneStats {
  name: string;
  concurrency: number;
  running: number;
  queued: number;
  /** When the longest-waiting queued job was submitted; null when nothing is queued. */
  oldestQueuedAt: Date | null;
  /** Jobs that finished (either way) in the last minute, at one-second granularity. */
  throughput1m: number;
  /** Estimated wait of a job submitted now with no caller and the default priority. */
  etaMs: number;
  /** Callers with running or queued jobs. */
  perCaller: Record<string, LaneCallerStats>;
}

const WAITING = 0;
const RUNNING = 1;
const DONE = 2;

class CallerState implements FairShareCaller {
  running = 0;
  /** Queued jobs of this caller, including any waiting for a slot they preempted. */
  queued = 0;
  heapIndex = -1;
  /** This caller's queue under fair share (null with fairness "none"). */
  readonly queue: BandedQueue<Entry> | null;

  constructor(
    readonly key: string,
    public lastServed: number,
    fair: boolean,
  ) {
    this.queue = fair ? new BandedQueue<Entry>() : null;
  }
}

class Entry implements Queueable {
  queued = false;
  state = WAITING;
  startedAt = 0;
  /** Own controller while running, for jobs that may be aborted alone (else the lane's). */
  controller: AbortController | null = null;
  /** Aborted for a higher-priority arrival; re-queued when its run settles. */
  preempted = false;
  /** Put back at the front of its band (so it may be older than the items behind it). */
  requeued = false;
  /** Waiting in the hand-off queue for the slot it preempted. */
  urgent = false;
  onAbort: (() => void) | null = null;

  constructor(
    readonly id: string,
    /** Sequence number of a generated id (0 for an id the caller chose). */
    readonly num: number,
    readonly job: LaneJob<unknown>,
    readonly caller: CallerState,
    readonly priority: number,
    readonly preemptible: boolean,
    readonly enqueuedAt: number,
    readonly resolve: ((value: unknown) => void) | null,
    readonly reject: ((reason: unknown) => void) | null,
    readonly signal: AbortSignal | null,
  ) {}
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  if (typeof reason === "string") return reason;
  try {
    return JSON.stringify(reason) ?? "aborted";
  } catch {
    return "aborted";
  }
}

function checkConcurrency(n: unknown, field: string): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new ValidationError("must be an integer ≥ 1", field);
  }
  return n;
}

/**
 * A bounded in-memory pool with fair share between callers, priorities, queue positions and
 * ETAs, preemption and a maximum wait. See docs/lanes.md.
 *
 * Cost per job is O(1) in the queue length: callers' queues are banded ring buffers, the next
 * caller comes from a heap of waiting callers, and jobs that cannot be aborted alone share one
 * AbortSignal. Only `submit` on a full lane with several waiting callers does O(waiting callers)
 * work, to estimate the new job's position.
 */
export class Lane {
  readonly name: string;
  readonly fairness: LaneFairness;
  private limit: number;
  private readonly preemptionEnabled: boolean;
  private readonly minRuntimeMs: number;
  private readonly now: () => number;

  private running = 0;
  /** Every waiting job, including hand-offs. */
  private queuedCount = 0;
  private readonly callers = new Map<string, CallerState>();
  /** Fairness "caller": callers with queued jobs. */
  private readonly picker = new FairSharePicker<CallerState>();
  /** Fairness "none": the one queue. */
  private readonly global: BandedQueue<Entry> | null;
  /** Jobs waiting for the slot of a job they preempted; they start before anything else. */
  private readonly handoffs = new BandedQueue<Entry>();
  /**
   * Queued and running jobs by id: generated ids (`<name>-<n>`) by their number, which is much
   * cheaper to hash than a string, and ids chosen by callers by the string.
   */
  private readonly byNum = new Map<number, Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly idPrefix: string;
  /** Running jobs with their own controller, in start order (the preemption candidates). */
  private readonly ownRunning = new Set<Entry>();
  private readonly shared = new AbortController();
  private tick = 0;
  private nextId = 0;
  private firstStartAt = -1;
  private readonly throughput = new ThroughputWindow();
  private readonly runTime = new RunTimeEstimator();
  private closed = false;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(opts: LaneOptions) {
    if (opts === null || typeof opts !== "object") throw new ValidationError("options required");
    if (typeof opts.name !== "string" || opts.name === "") {
      throw new ValidationError("must be a non-empty string", "name");
    }
    this.name = opts.name;
    this.idPrefix = `${opts.name}-`;
    this.limit = checkConcurrency(opts.concurrency, "concurrency");
    const fairness = opts.fairness ?? "caller";
    if (fairness !== "caller" && fairness !== "none") {
      throw new ValidationError('must be "caller" or "none"', "fairness");
    }
    this.fairness = fairness;
    this.global = fairness === "none" ? new BandedQueue<Entry>() : null;
    const pre = opts.preemption ?? {};
    if (pre === null || typeof pre !== "object") {
      throw new ValidationError("must be an object", "preemption");
    }
    if (pre.enabled !== undefined && typeof pre.enabled !== "boolean") {
      throw new ValidationError("must be a boolean", "preemption.enabled");
    }
    this.preemptionEnabled = pre.enabled ?? true;
    const minRuntimeMs = pre.minRuntimeMs ?? 30_000;
    if (typeof minRuntimeMs !== "number" || !(minRuntimeMs >= 0) || minRuntimeMs === Infinity) {
      throw new ValidationError("must be a finite number ≥ 0", "preemption.minRuntimeMs");
    }
    this.minRuntimeMs = minRuntimeMs;
    if (opts.now !== undefined && typeof opts.now !== "function") {
      throw new ValidationError("must be a function", "now");
    }
    this.now = opts.now ?? Date.now;
  }

  get concurrency(): number {
    return this.limit;
  }

  /**
   * Queue `job` (or start it now) and return at once. Its outcome is not reported: use
   * `submitAndWait`, or handle errors inside `run`.
   */
  submit<T>(job: LaneJob<T>, opts?: LaneSubmitOptions): LaneSubmitResult {
    return this.admit(job, opts?.maxWaitMs, null, null, null);
  }

  /** Submit `job` and settle with its final run's result or error. */
  submitAndWait<T>(job: LaneJob<T>, opts?: LaneSubmitAndWaitOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.admit(
        job,
        opts?.maxWaitMs,
        resolve as (value: unknown) => void,
        reject,
        opts?.signal ?? null,
      );
    });
  }

  /** Remove a queued job; its `submitAndWait` rejects with `CancelledError`. */
  cancel(id: string): void {
    const e = this.lookup(id);
    if (e === undefined) throw new NotQueuedError(id);
    if (e.state !== WAITING) throw new NotQueuedError(id, "running");
    this.dequeue(e);
    this.finish(e, false, new CancelledError(id));
  }

  /** Change the number of slots. Raising it starts queued jobs now; lowering it stops none. */
  setConcurrency(n: number): void {
    this.limit = checkConcurrency(n, "concurrency");
    if (!this.closed) this.pump(this.now());
  }

  stats(): LaneStats {
    const t = this.now();
    const perCaller: Record<string, LaneCallerStats> = {};
    for (const c of this.callers.values()) {
      // defineProperty: a caller may be called "__proto__".
      Object.defineProperty(perCaller, c.key, {
        value: { running: c.running, queued: c.queued },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    let oldest = Infinity;
    const consider = (q: BandedQueue<Entry>) => {
      for (const e of q.heads((x) => x.requeued)) if (e.enqueuedAt < oldest) oldest = e.enqueuedAt;
    };
    consider(this.handoffs);
    if (this.global !== null) consider(this.global);
    else for (const c of this.picker.items) consider(c.queue!);
    let etaMs = 0;
    if (!this.closed && (this.running >= this.limit || this.queuedCount > 0)) {
      etaMs = this.eta(this.positionOf(this.callers.get(""), 1), t);
    }
    return {
      name: this.name,
      concurrency: this.limit,
      running: this.running,
      queued: this.queuedCount,
      oldestQueuedAt: oldest === Infinity ? null : new Date(oldest),
      throughput1m: this.throughput.count(t),
      etaMs,
      perCaller,
    };
  }

  /**
   * Stop: later submits throw `LaneClosedError`, queued jobs reject with it, running jobs' signals
   * abort with it (their `submitAndWait` settles with what `run` then does). Resolves once every
   * running job has settled. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.closing =
      this.running === 0 ? Promise.resolve() : new Promise<void>((r) => (this.drained = r));
    const reason = new LaneClosedError(this.name);
    const waiting = this.handoffs.clear();
    if (this.global !== null) waiting.push(...this.global.clear());
    for (const c of this.picker.clear()) waiting.push(...c.queue!.clear());
    this.queuedCount = 0;
    for (const e of waiting) {
      e.caller.queued--;
      e.urgent = false;
      this.finish(e, false, reason);
    }
    this.shared.abort(reason);
    for (const e of [...this.ownRunning]) e.controller?.abort(reason);
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------

  private admit(
    job: LaneJob<unknown>,
    maxWaitMs: number | undefined,
    resolve: ((value: unknown) => void) | null,
    reject: ((reason: unknown) => void) | null,
    signal: AbortSignal | null,
  ): LaneSubmitResult {
    if (this.closed) throw new LaneClosedError(this.name);
    if (job === null || typeof job !== "object" || typeof job.run !== "function") {
      throw new ValidationError("a job needs a run(signal) function", "run");
    }
    const priority = job.priority ?? 1;
    if (!Number.isSafeInteger(priority))
      throw new ValidationError("must be an integer", "priority");
    const key = job.caller ?? "";
    if (typeof key !== "string") throw new ValidationError("must be a string", "caller");
    let id = job.id;
    let num = 0;
    if (id === undefined) {
      do id = this.idPrefix + String((num = ++this.nextId));
      while (this.byId.size > 0 && this.byId.has(id));
    } else if (typeof id !== "string" || id === "") {
      throw new ValidationError("must be a non-empty string", "id");
    } else if (this.lookup(id) !== undefined) {
      throw new ValidationError(`${id} is already queued or running in lane ${this.name}`, "id");
    }
    if (maxWaitMs !== undefined && !(typeof maxWaitMs === "number" && maxWaitMs >= 0)) {
      throw new ValidationError("must be a number ≥ 0", "maxWaitMs");
    }
    if (signal !== null && signal.aborted) throw new CancelledError(id, reasonText(signal.reason));
    const preemptible = job.preemptible === true;
    const t = this.now();
    let caller = this.callers.get(key);

    if (this.running < this.limit && this.queuedCount === 0) {
      caller ??= this.addCaller(key);
      const e = new Entry(id, num, job, caller, priority, preemptible, t, resolve, reject, signal);
      this.index(e);
      if (signal !== null) this.listen(e, signal);
      this.start(e, t);
      return { id, position: 0, etaMs: 0 };
    }

    const victim =
      this.preemptionEnabled && this.ownRunning.size > 0 ? this.findVictim(priority, t) : null;
    let position: number;
    let etaMs = 0;
    if (victim !== null) {
      position = this.handoffs.countAtLeast(priority) + 1;
    } else {
      position = this.positionOf(caller, priority);
      etaMs = this.eta(position, t);
      if (maxWaitMs !== undefined && etaMs > maxWaitMs) {
        throw new LaneBusyError(this.name, etaMs, maxWaitMs);
      }
    }
    caller ??= this.addCaller(key);
    const e = new Entry(id, num, job, caller, priority, preemptible, t, resolve, reject, signal);
    this.index(e);
    if (victim !== null) {
      e.urgent = true;
      this.handoffs.push(e);
    } else {
      this.enqueue(e, false);
    }
    caller.queued++;
    this.queuedCount++;
    if (signal !== null) this.listen(e, signal);
    if (this.running < this.limit) this.pump(t); // only when re-entered from a starting run
    if (victim !== null) {
      victim.preempted = true;
      victim.controller!.abort(
        new CancelledError(
          victim.id,
          `preempted by ${id} (priority ${priority} > ${victim.priority})`,
        ),
      );
    }
    return { id, position, etaMs };
  }

  private index(e: Entry): void {
    if (e.num !== 0) this.byNum.set(e.num, e);
    else this.byId.set(e.id, e);
  }

  private lookup(id: string): Entry | undefined {
    if (typeof id !== "string") return undefined;
    const e = this.byId.get(id);
    if (e !== undefined) return e;
    if (!id.startsWith(this.idPrefix)) return undefined;
    const n = Number(id.slice(this.idPrefix.length));
    const g = Number.isSafeInteger(n) && n > 0 ? this.byNum.get(n) : undefined;
    return g !== undefined && g.id === id ? g : undefined;
  }

  private addCaller(key: string): CallerState {
    const c = new CallerState(key, ++this.tick, this.global === null);
    this.callers.set(key, c);
    return c;
  }

  private enqueue(e: Entry, front: boolean): void {
    const q = this.global ?? e.caller.queue!;
    if (front) q.unshift(e);
    else q.push(e);
    if (this.global === null && e.caller.heapIndex < 0) this.picker.add(e.caller);
  }

  /** Take a waiting job out of whatever queue holds it. */
  private dequeue(e: Entry): void {
    if (e.urgent) {
      this.handoffs.remove(e);
      e.urgent = false;
    } else if (this.global !== null) {
      this.global.remove(e);
    } else {
      const q = e.caller.queue!;
      q.remove(e);
      if (q.size === 0) this.picker.remove(e.caller);
    }
    this.queuedCount--;
    e.caller.queued--;
  }

  /** The next job to start: hand-offs first, then fair share (or the global queue). */
  private take(): Entry | undefined {
    let e: Entry | undefined;
    if (this.handoffs.size > 0) {
      e = this.handoffs.shift();
      if (e !== undefined) e.urgent = false;
    } else if (this.global !== null) {
      e = this.global.shift();
    } else {
      const c = this.picker.peek();
      if (c === undefined) return undefined;
      const q = c.queue!;
      e = q.shift();
      if (q.size === 0) this.picker.remove(c);
    }
    if (e !== undefined) {
      this.queuedCount--;
      e.caller.queued--;
    }
    return e;
  }

  private pump(t: number): void {
    while (this.running < this.limit && this.queuedCount > 0 && !this.closed) {
      const e = this.take();
      if (e === undefined) break;
      this.start(e, t);
    }
  }

  private start(e: Entry, t: number): void {
    e.state = RUNNING;
    e.requeued = false;
    e.startedAt = t;
    this.running++;
    const c = e.caller;
    c.running++;
    c.lastServed = ++this.tick;
    if (c.heapIndex >= 0) this.picker.update(c);
    if (this.firstStartAt < 0) this.firstStartAt = t;
    let signal: AbortSignal;
    if (e.preemptible || e.signal !== null) {
      const controller = new AbortController();
      e.controller = controller;
      this.ownRunning.add(e);
      signal = controller.signal;
    } else {
      signal = this.shared.signal;
    }
    void this.execute(e, signal);
  }

  private async execute(e: Entry, signal: AbortSignal): Promise<void> {
    let ok = true;
    let value: unknown;
    try {
      value = await e.job.run(signal);
    } catch (err) {
      ok = false;
      value = err;
    }
    this.settle(e, ok, value);
  }

  private settle(e: Entry, ok: boolean, value: unknown): void {
    const t = this.now();
    this.running--;
    const c = e.caller;
    c.running--;
    if (c.heapIndex >= 0) this.picker.update(c);
    if (e.controller !== null) {
      this.ownRunning.delete(e);
      e.controller = null;
    }
    if (e.preempted) {
      e.preempted = false;
      if (this.closed) {
        this.finish(e, false, new LaneClosedError(this.name));
      } else if (e.signal !== null && e.signal.aborted) {
        this.finish(e, false, new CancelledError(e.id, reasonText(e.signal.reason)));
      } else {
        e.state = WAITING;
        e.requeued = true;
        this.enqueue(e, true);
        c.queued++;
        this.queuedCount++;
      }
    } else {
      this.throughput.record(t);
      this.runTime.observe(t - e.startedAt);
      this.finish(e, ok, value);
    }
    if (!this.closed) this.pump(t);
    else if (this.running === 0 && this.drained !== null) {
      this.drained();
      this.drained = null;
    }
  }

  /** Mark `e` done and settle its waiter. `e` must be out of every queue. */
  private finish(e: Entry, ok: boolean, value: unknown): void {
    e.state = DONE;
    if (e.num !== 0) this.byNum.delete(e.num);
    else this.byId.delete(e.id);
    if (e.onAbort !== null) {
      e.signal!.removeEventListener("abort", e.onAbort);
      e.onAbort = null;
    }
    const c = e.caller;
    if (c.running === 0 && c.queued === 0 && this.callers.get(c.key) === c) {
      this.callers.delete(c.key);
    }
    if (ok) e.resolve?.(value);
    else e.reject?.(value);
  }

  private listen(e: Entry, signal: AbortSignal): void {
    const onAbort = () => {
      e.onAbort = null;
      const why = reasonText(signal.reason);
      if (e.state === WAITING) {
        this.dequeue(e);
        this.finish(e, false, new CancelledError(e.id, why));
      } else if (e.state === RUNNING && e.controller !== null && !e.controller.signal.aborted) {
        e.controller.abort(new CancelledError(e.id, why));
      }
    };
    e.onAbort = onAbort;
    signal.addEventListener("abort", onAbort, { once: true });
  }

  /** The oldest preemptible running job that has run long enough and has a lower priority. */
  private findVictim(priority: number, t: number): Entry | null {
    const cutoff = t - this.minRuntimeMs;
    for (const e of this.ownRunning) {
      if (e.startedAt > cutoff) break; // start order: the rest are younger still
      if (e.preemptible && !e.preempted && e.priority < priority) return e;
    }
    return null;
  }

  /**
   * Where a job of `caller` (undefined: a caller with nothing in the lane) and `priority` would
   * start if submitted now and nothing else arrived: hand-offs first; then, with fairness
   * "none", every queued job of the same or higher priority; with fair share, a water-filling of
   * the waiting callers. Fair share serves the caller with the fewest running jobs, so if
   * finishing jobs free slots evenly, a caller D with `eD` running and `qD` queued takes its
   * queued jobs at "levels" eD, eD+1, …, eD+qD-1, and the start order is by level; at one level,
   * callers with more running jobs go first (they were served longest ago), then the least
   * recently served. The new job sits at level eC + j, j being its caller's queued jobs of the
   * same or higher priority. With concurrency 1 nothing is running when a slot is handed out, so
   * every level starts at 0 (pure round robin by least recently served). Exact with concurrency
   * 1, with one waiting caller and with fairness "none"; otherwise an estimate, since which slot
   * frees next is not known in advance.
   */
  private positionOf(caller: CallerState | undefined, priority: number): number {
    let ahead = this.handoffs.size;
    if (this.global !== null) return ahead + this.global.countAtLeast(priority) + 1;
    const flat = this.limit === 1;
    const eC = caller === undefined || flat ? 0 : caller.running;
    const j = caller === undefined ? 0 : caller.queue!.countAtLeast(priority);
    const lsC = caller === undefined ? this.tick + 1 : caller.lastServed;
    const level = eC + j;
    ahead += j;
    const items = this.picker.items;
    for (let i = 0; i < items.length; i++) {
      const d = items[i]!;
      if (d === caller) continue;
      const eD = flat ? 0 : d.running;
      if (eD > level) continue;
      const qD = d.queue!.size;
      const below = level - eD;
      if (below >= qD) {
        ahead += qD;
        continue;
      }
      ahead += below;
      if (eD > eC || (eD === eC && d.lastServed < lsC)) ahead++;
    }
    return ahead + 1;
  }

  /**
   * ETA of the `position`-th start: slots free at a rate of `concurrency / runTime` (runTime from
   * `RunTimeEstimator`), the first `running - concurrency` frees (after lowering concurrency)
   * open no slot, and the first free is on average half a run away.
   */
  private eta(position: number, t: number): number {
    const runTime = this.runTime.estimate(this.firstStartAt < 0 ? 0 : t - this.firstStartAt);
    const excess = this.running > this.limit ? this.running - this.limit : 0;
    return Math.max(0, Math.round(((position + excess - 0.5) * runTime) / this.limit));
  }
}
