import type { Meter } from "@opentelemetry/api";
import type { Clock } from "./clock.js";
import { LaneBusyError, ValidationError } from "./errors.js";
import type { Logger } from "./logger.js";
import { assertName, assertNonNegativeInt } from "./task-request.js";
import type { NewTask, Store } from "../store/store.js";
import type { LaneDef, LaneFairness, LanePreemption, LaneSnapshot } from "../store/lanes.js";

/** `engine.lane(name, opts)`: settings written to the store (the last writer wins). */
export interface EngineLaneOptions {
  /** Most tasks of the lane running at once, across every process on the store. */
  concurrency: number;
  /** `"caller"` (default): fair share per task `caller`; `"none"`: plain priority order. */
  fairness?: LaneFairness;
  /**
   * Default `{ enabled: true, minRuntimeMs: 30_000 }`; `false` turns it off. Only attempts of
   * types registered with `preemptible: true` are ever preempted (docs/lanes.md).
   */
  preemption?: { enabled?: boolean; minRuntimeMs?: number } | false;
  /** Most ready tasks the lane queues: a submit past it rejects with `LaneBusyError`. */
  maxQueue?: number | null;
}

/** A lane's state read across processes from the store. */
export interface EngineLaneStats {
  name: string;
  concurrency: number;
  running: number;
  queued: number;
  oldestQueuedAt: Date | null;
  /** Tasks of the lane completed in the last minute (by any process). */
  throughput1m: number;
  /** Expected wait before a new caller's first task starts, in ms. */
  etaMs: number;
  perCaller: { caller: string; running: number; queued: number }[];
}

/** The handle `engine.lane()` returns. */
export interface EngineLane {
  readonly name: string;
  /** Change the limit for every process; takes effect at the next claim. */
  setConcurrency(n: number): Promise<void>;
  stats(): Promise<EngineLaneStats>;
}

export interface EngineLanesHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly meter: Meter;
  whenReady(): Promise<void>;
  /** Something changed that may free a claim (e.g. a higher concurrency): look for work. */
  wake(): void;
}

/** How long a lane's stored settings are trusted by submit-time checks in this process. */
const DEF_TTL_MS = 1_000;

export function assertConcurrency(n: unknown, field = "concurrency"): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
    throw new ValidationError("must be a positive integer", field);
  return n;
}

export function laneDefFrom(name: unknown, opts: EngineLaneOptions): Omit<LaneDef, "updatedAt"> {
  const laneName = assertName(name, "name");
  if (opts === null || typeof opts !== "object")
    throw new ValidationError("must be an object", "options");
  const fairness = opts.fairness ?? "caller";
  if (fairness !== "caller" && fairness !== "none")
    throw new ValidationError(`must be "caller" or "none"`, "fairness");
  // As for the in-memory Lane: on by default (30 s), yet only types registered `preemptible`
  // can ever be preempted.
  let preemption: LanePreemption | null = null;
  if (opts.preemption !== false) {
    const p = opts.preemption ?? {};
    if (p === null || typeof p !== "object")
      throw new ValidationError("must be an object or false", "preemption");
    preemption = {
      enabled: p.enabled ?? true,
      minRuntimeMs:
        p.minRuntimeMs === undefined
          ? 30_000
          : assertNonNegativeInt(p.minRuntimeMs, "preemption.minRuntimeMs"),
    };
  }
  const maxQueue =
    opts.maxQueue === undefined || opts.maxQueue === null
      ? null
      : assertNonNegativeInt(opts.maxQueue, "maxQueue");
  return {
    name: laneName,
    concurrency: assertConcurrency(opts.concurrency),
    fairness,
    preemption,
    maxQueue,
  };
}

/**
 * Expected wait (ms) before the `position`-th queued task of a lane starts. Slots free at a rate
 * of `concurrency / runTime`, where runTime is the mean run time of the lane's tasks completed in
 * the last minute (before any completed: how long its oldest running task has run, a lower
 * bound; 0 with nothing running). Free slots take the first positions at once; after a lowered
 * concurrency, the first `running - concurrency` completions open no slot; the first slot frees
 * on average half a run time from now.
 */
export function laneEta(snap: LaneSnapshot, position: number, now: number): number {
  const c = snap.def.concurrency;
  const free = Math.max(0, c - snap.running);
  const behind = position - free;
  if (behind <= 0) return 0;
  const runTime =
    snap.meanRunMs ??
    (snap.oldestRunningStartedAt === null ? 0 : Math.max(0, now - snap.oldestRunningStartedAt));
  const excess = Math.max(0, snap.running - c);
  return Math.max(0, Math.round(((behind + excess - 0.5) * runTime) / c));
}

/**
 * 1-based position in fair-share order of a caller's task that has `aheadInCaller` of its own
 * caller's tasks before it: each other caller with queued work is served until its running
 * count passes the one this caller will have when the task's turn comes (ties to the less
 * recently served), so it contributes up to that many of its queued tasks.
 */
export function fairPosition(
  snap: LaneSnapshot,
  caller: string,
  aheadInCaller: number,
  aheadInLane: number,
): number {
  if (snap.def.fairness === "none") return aheadInLane + 1;
  const me = snap.perCaller.find((c) => c.caller === caller);
  const target = (me?.running ?? 0) + aheadInCaller;
  const mySeq = me?.servedSeq ?? 0;
  let ahead = aheadInCaller;
  for (const d of snap.perCaller) {
    if (d.caller === caller || d.queued === 0) continue;
    const tieFirst = d.servedSeq < mySeq || (d.servedSeq === mySeq && d.caller < caller);
    ahead += Math.min(d.queued, Math.max(0, target - d.running + (tieFirst ? 1 : 0)));
  }
  return ahead + 1;
}

export function toStats(snap: LaneSnapshot, now: number): EngineLaneStats {
  return {
    name: snap.def.name,
    concurrency: snap.def.concurrency,
    running: snap.running,
    queued: snap.queued,
    oldestQueuedAt: snap.oldestQueuedAt === null ? null : new Date(snap.oldestQueuedAt),
    throughput1m: snap.completed1m,
    // A new caller's first task: fair share puts it first among equals.
    etaMs: laneEta(snap, fairPosition(snap, "\u0000new", 0, snap.queued), now),
    perCaller: snap.perCaller.map((c) => ({
      caller: c.caller,
      running: c.running,
      queued: c.queued,
    })),
  };
}

/** The engine's side of lanes: declarations, stats, positions, admission at submit, gauges. */
export class EngineLanes {
  private readonly defs = new Map<string, { def: LaneDef | null; readAt: number }>();
  /** Latest counts per lane this process watches, for the OpenTelemetry gauges. */
  private readonly gauges = new Map<string, { running: number; queued: number }>();
  private readonly watched = new Set<string>();

  constructor(private readonly host: EngineLanesHost) {
    const running = host.meter.createObservableGauge("loom.lane.running", {
      description: "Tasks running in a lane (all processes)",
    });
    const queued = host.meter.createObservableGauge("loom.lane.queued", {
      description: "Ready tasks waiting in a lane (all processes)",
    });
    running.addCallback((o) => {
      for (const [lane, g] of this.gauges) o.observe(g.running, { lane });
    });
    queued.addCallback((o) => {
      for (const [lane, g] of this.gauges) o.observe(g.queued, { lane });
    });
  }

  /** Start reporting a lane's gauges (a lane declared or used by a registered type). */
  watch(name: string): void {
    this.watched.add(name);
  }

  async declare(name: string, opts: EngineLaneOptions): Promise<EngineLane> {
    const def = laneDefFrom(name, opts);
    await this.host.whenReady();
    const saved = await this.host.store.saveLane(def, this.host.clock.now());
    this.defs.set(saved.name, { def: saved, readAt: this.host.clock.now() });
    this.watch(saved.name);
    this.host.wake();
    return this.handle(saved.name);
  }

  handle(name: string): EngineLane {
    return {
      name,
      setConcurrency: (n) => this.setConcurrency(name, n),
      stats: () => this.stats(name),
    };
  }

  async setConcurrency(name: string, n: number): Promise<void> {
    assertConcurrency(n);
    await this.host.whenReady();
    if (!(await this.host.store.setLaneConcurrency(name, n, this.host.clock.now())))
      throw new ValidationError(`unknown lane ${name}`, "name");
    this.defs.delete(name);
    this.host.wake();
  }

  /** Stats of one lane, or `null` for a lane no process declared. */
  async find(name: string): Promise<EngineLaneStats | null> {
    await this.host.whenReady();
    const now = this.host.clock.now();
    const snap = await this.host.store.laneSnapshot(name, now);
    if (!snap) return null;
    this.gauges.set(name, { running: snap.running, queued: snap.queued });
    return toStats(snap, now);
  }

  async stats(name: string): Promise<EngineLaneStats> {
    const s = await this.find(name);
    if (!s) throw new ValidationError(`unknown lane ${name}`, "name");
    return s;
  }

  async list(): Promise<EngineLaneStats[]> {
    await this.host.whenReady();
    const out: EngineLaneStats[] = [];
    for (const def of await this.host.store.listLanes()) {
      const s = await this.find(def.name);
      if (s) out.push(s);
    }
    return out;
  }

  /** `{ position, etaMs }` of a queued laned task, or `null` when it is not one. */
  async position(id: string): Promise<{ position: number; etaMs: number } | null> {
    const now = this.host.clock.now();
    const rank = await this.host.store.laneRank({ id }, now);
    if (!rank) return null;
    const snap = await this.host.store.laneSnapshot(rank.lane, now);
    if (!snap) return null;
    const position = fairPosition(snap, rank.caller, rank.aheadInCaller, rank.aheadInLane);
    return { position, etaMs: laneEta(snap, position, now) };
  }

  /**
   * Admission of a laned task at submit: `LaneBusyError` (nothing persisted) when the lane's
   * queue is at `maxQueue`, or when the task's expected wait exceeds `maxWaitMs`.
   */
  async admit(row: NewTask, maxWaitMs: number | undefined): Promise<void> {
    if (row.lane === null) return;
    const def = await this.def(row.lane);
    if (maxWaitMs === undefined && (def === null || def.maxQueue === null)) return;
    const now = this.host.clock.now();
    const snap = await this.host.store.laneSnapshot(row.lane, now);
    if (!snap) return;
    if (snap.def.maxQueue !== null && snap.queued >= snap.def.maxQueue) {
      throw new LaneBusyError(row.lane, laneEta(snap, snap.queued + 1, now), maxWaitMs ?? 0, {
        reason: `queue is full (maxQueue ${snap.def.maxQueue})`,
      });
    }
    if (maxWaitMs === undefined || row.runAt > now) return;
    const rank = await this.host.store.laneRank(
      { lane: row.lane, caller: row.caller ?? row.tenant, priority: row.priority },
      now,
    );
    if (!rank) return;
    const position = fairPosition(snap, rank.caller, rank.aheadInCaller, rank.aheadInLane);
    const etaMs = laneEta(snap, position, now);
    if (etaMs > maxWaitMs) throw new LaneBusyError(row.lane, etaMs, maxWaitMs);
  }

  private async def(name: string): Promise<LaneDef | null> {
    const now = this.host.clock.now();
    const cached = this.defs.get(name);
    if (cached && now - cached.readAt < DEF_TTL_MS) return cached.def;
    const snap = await this.host.store.laneSnapshot(name, now);
    const def = snap?.def ?? null;
    this.defs.set(name, { def, readAt: now });
    return def;
  }

  private refreshedAt = -Infinity;

  /** Refresh the gauges of the watched lanes (the maintenance loop calls this; at most every 5 s). */
  async refresh(): Promise<void> {
    const now = this.host.clock.now();
    if (this.watched.size === 0 || now - this.refreshedAt < 5_000) return;
    this.refreshedAt = now;
    for (const name of this.watched) {
      try {
        await this.find(name);
      } catch (err) {
        this.host.logger.warn({ err, lane: name }, "could not read lane counts");
      }
    }
  }
}
