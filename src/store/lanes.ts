// The store side of engine lanes (DESIGN §5 "Lane claims"). A lane is a row of settings; who is
// running in it is read from the task rows themselves (claimed/running tasks carrying the lane)
// under the lane's lock at claim time, so there is no counter to drift or leak: completion,
// failure, cancellation and crash rescue free a slot by the very write that changes the task.

export type LaneFairness = "caller" | "none";

export interface LanePreemption {
  enabled: boolean;
  minRuntimeMs: number;
}

/** A lane's settings as stored (the last writer wins). */
export interface LaneDef {
  name: string;
  concurrency: number;
  fairness: LaneFairness;
  preemption: LanePreemption | null;
  /** Most ready tasks the lane queues; a submit past it gets `LaneBusyError`. `null`: no limit. */
  maxQueue: number | null;
  updatedAt: number;
}

/** A lane row as both SQL stores read it. */
export interface LaneRow {
  name: string;
  concurrency: number;
  fairness: LaneFairness;
  preemption: string | null;
  max_queue: number | null;
  serve_seq: number;
  updated_at: number;
}

export const laneRowToDef = (r: LaneRow): LaneDef => ({
  name: r.name,
  concurrency: r.concurrency,
  fairness: r.fairness,
  preemption: r.preemption === null ? null : (JSON.parse(r.preemption) as LaneDef["preemption"]),
  maxQueue: r.max_queue,
  updatedAt: r.updated_at,
});

/** The row fields a rank needs, and whether that task is queued in a lane at `now`. */
export interface RankRow {
  lane: string | null;
  caller: string | null;
  priority: number;
  run_at: number;
  id: string;
  status: string;
  deps_left: number;
}

/** What a rank counts from: the task's place, or the back of its priority band for a new task. */
export interface RankKey {
  lane: string;
  caller: string;
  priority: number;
  runAt: number;
  id: string;
}

export type RankTarget = { id: string } | { lane: string; caller: string; priority: number };

/**
 * The rank key of a target: for `{ id }`, from its row (null unless it is a laned task queued at
 * `now`); for a task about to be submitted, behind every queued task of at least its priority.
 */
export function rankKey(target: RankTarget, row: RankRow | undefined, now: number): RankKey | null {
  if (!("id" in target)) {
    return { ...target, runAt: Number.MAX_SAFE_INTEGER, id: "\uffff" };
  }
  if (!row || row.lane === null || row.caller === null) return null;
  if (
    (row.status !== "pending" && row.status !== "retrying") ||
    row.deps_left > 0 ||
    row.run_at > now
  )
    return null;
  return {
    lane: row.lane,
    caller: row.caller,
    priority: row.priority,
    runAt: row.run_at,
    id: row.id,
  };
}

/** Which of an engine's types it claims through one lane. */
export interface LaneClaim {
  lane: string;
  types: string[];
  /** Of `types`, those this engine lets a higher-priority arrival preempt. */
  preemptible?: string[];
}

export interface LaneCallerCounts {
  caller: string;
  running: number;
  queued: number;
}

/** Everything the engine needs to report a lane's stats and estimate waits, read in one go. */
export interface LaneSnapshot {
  def: LaneDef;
  /** Per caller with running or queued work, sorted by caller. */
  perCaller: (LaneCallerCounts & { servedSeq: number })[];
  running: number;
  queued: number;
  /** Earliest `runAt` of a queued task (when it became ready), or null. */
  oldestQueuedAt: number | null;
  /** Tasks of the lane that completed in the 60 s before `now`. */
  completed1m: number;
  /** Mean run time (start to completion) of those, or null when none completed. */
  meanRunMs: number | null;
  /** Start of the longest-running attempt in the lane, or null. */
  oldestRunningStartedAt: number | null;
}

/** Where one queued task (or a task about to be submitted) stands in its lane. */
export interface LaneRank {
  lane: string;
  caller: string;
  /** Ready tasks of the same caller that start before it (priority, then age). */
  aheadInCaller: number;
  /** Ready tasks of the whole lane that start before it in plain priority order. */
  aheadInLane: number;
}

export interface LaneStore {
  /** Create or replace a lane's settings (the last writer wins); returns what was stored. */
  saveLane(def: Omit<LaneDef, "updatedAt">, now: number): Promise<LaneDef>;
  /** Change one lane's concurrency for every process; false when the lane does not exist. */
  setLaneConcurrency(name: string, concurrency: number, now: number): Promise<boolean>;
  /** Declared lanes, by name. */
  listLanes(): Promise<LaneDef[]>;
  /** A lane's settings and live counts read from the task rows, or null for an unknown lane. */
  laneSnapshot(name: string, now: number): Promise<LaneSnapshot | null>;
  /**
   * A queued laned task's rank (`{ id }`: null when it is unknown, not laned or not queued), or
   * the rank a new task of `caller` and `priority` would get at the back of its priority band.
   */
  laneRank(target: RankTarget, now: number): Promise<LaneRank | null>;
  /**
   * Running attempts of `engineName` that a lane claim chose to preempt (a higher-priority task
   * waits at their full lane): the engine aborts each and releases it to `pending`.
   */
  preemptionsOf(engineName: string): Promise<{ id: string; attemptId: string }[]>;
  /**
   * Put ready tasks of `types` that carry no lane into `lane` (caller defaulting to the tenant).
   * A process that submits a type it never registered (an HTTP server, `loom submit`) writes no
   * lane; the workers that registered the type with a lane adopt such rows, so they run through
   * the lane instead of waiting for good. Returns how many rows were adopted.
   */
  adoptIntoLane(lane: string, types: string[], now: number): Promise<number>;
}

/**
 * The fair-share pick, shared by the stores: `free` slots go one at a time to the caller with the
 * least running work (ties: least recently served, then name), each taking its own best task.
 * `candidates` holds each caller's ready tasks best first; returns the picks in order, and the
 * callers' new served sequence numbers (`nextSeq` counts on from the lane's last one).
 */
export function pickFair<T>(
  callers: { caller: string; running: number; servedSeq: number; candidates: T[] }[],
  free: number,
  nextSeq: number,
): { picked: T[]; served: Map<string, number>; nextSeq: number } {
  const picked: T[] = [];
  const served = new Map<string, number>();
  const state = callers.map((c) => ({ ...c, next: 0 }));
  while (picked.length < free) {
    let best: (typeof state)[number] | null = null;
    for (const c of state) {
      if (c.next >= c.candidates.length) continue;
      if (
        !best ||
        c.running < best.running ||
        (c.running === best.running &&
          (c.servedSeq < best.servedSeq ||
            (c.servedSeq === best.servedSeq && c.caller < best.caller)))
      ) {
        best = c;
      }
    }
    if (!best) break;
    picked.push(best.candidates[best.next++]!);
    best.running++;
    best.servedSeq = ++nextSeq;
    served.set(best.caller, best.servedSeq);
  }
  return { picked, served, nextSeq };
}

/**
 * Which callers can receive one of `free` slots: the first `free` in fair-share order. A caller
 * further back would need every caller before it to be served past it first, which takes more
 * than `free` picks.
 */
export function fairOrder<C extends { caller: string; running: number; servedSeq: number }>(
  callers: C[],
): C[] {
  return callers.sort(
    (a, b) =>
      a.running - b.running ||
      a.servedSeq - b.servedSeq ||
      (a.caller < b.caller ? -1 : a.caller > b.caller ? 1 : 0),
  );
}
