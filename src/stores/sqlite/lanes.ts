import type Database from "better-sqlite3";
import {
  fairOrder,
  pickFair,
  laneRowToDef as toDef,
  rankKey,
  type LaneClaim,
  type LaneDef,
  type LaneRank,
  type LaneRow,
  type LaneSnapshot,
  type RankRow,
  type RankTarget,
} from "../../store/lanes.js";

const READY = `status IN ('pending', 'retrying') AND deps_left = 0`;
const ACTIVE = `status IN ('claimed', 'running')`;
const TYPES = `type IN (SELECT value FROM json_each(?))`;

/**
 * Lane claims and lane reads on SQLite. Every method runs inside a transaction the store opened
 * (or is a single read), and SQLite has one writer, so the lane's counts cannot change between
 * reading them and marking the picked rows.
 */
export class SqliteLanes {
  private readonly s;

  constructor(
    private readonly db: Database.Database,
    /** The claim's columns (the store's HOT_COLUMNS), read as raw rows. */
    hotColumns: string,
  ) {
    this.s = {
      save: db.prepare(`INSERT INTO loom_lanes (name, concurrency, fairness, preemption, max_queue, updated_at)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
        fairness = excluded.fairness, preemption = excluded.preemption, max_queue = excluded.max_queue,
        updated_at = excluded.updated_at RETURNING *`),
      setConcurrency: db.prepare(
        `UPDATE loom_lanes SET concurrency = ?, updated_at = ? WHERE name = ?`,
      ),
      lane: db.prepare(`SELECT * FROM loom_lanes WHERE name = ?`),
      lanes: db.prepare(`SELECT * FROM loom_lanes ORDER BY name`),
      withFree: db
        .prepare(
          `SELECT l.name FROM loom_lanes l WHERE l.concurrency >
           (SELECT count(*) FROM loom_tasks t WHERE t.lane = l.name AND t.status IN ('claimed', 'running'))`,
        )
        .pluck(),
      runningByCaller: db.prepare(
        `SELECT caller, count(*) AS n FROM loom_tasks WHERE lane = ? AND ${ACTIVE} GROUP BY caller`,
      ),
      seqs: db.prepare(`SELECT caller, served_seq FROM loom_lane_callers WHERE lane = ?`),
      // Distinct callers with claimable work, one index seek each (a skip scan).
      readyCallers: db.prepare(`WITH RECURSIVE c(caller) AS (
          SELECT (SELECT min(caller) FROM loom_tasks WHERE lane = @lane AND ${READY} AND run_at <= @now
            AND type IN (SELECT value FROM json_each(@types)))
          UNION ALL
          SELECT (SELECT min(caller) FROM loom_tasks WHERE lane = @lane AND ${READY} AND run_at <= @now
            AND type IN (SELECT value FROM json_each(@types)) AND caller > c.caller)
          FROM c WHERE c.caller IS NOT NULL)
        SELECT caller FROM c WHERE caller IS NOT NULL`),
      readyOfCaller: db
        .prepare(
          `SELECT ${hotColumns} FROM loom_tasks WHERE lane = ? AND caller = ? AND ${READY}
           AND run_at <= ? AND ${TYPES} ORDER BY priority DESC, run_at, id LIMIT ?`,
        )
        .raw(),
      readyOfLane: db
        .prepare(
          `SELECT ${hotColumns} FROM loom_tasks WHERE lane = ? AND ${READY} AND run_at <= ?
           AND ${TYPES} ORDER BY priority DESC, run_at, id LIMIT ?`,
        )
        .raw(),
      served: db.prepare(`INSERT INTO loom_lane_callers (lane, caller, served_seq) VALUES (?, ?, ?)
        ON CONFLICT (lane, caller) DO UPDATE SET served_seq = excluded.served_seq`),
      bumpSeq: db.prepare(`UPDATE loom_lanes SET serve_seq = ? WHERE name = ?`),
      queuedByCaller:
        db.prepare(`SELECT caller, count(*) AS n, min(run_at) AS oldest FROM loom_tasks
        WHERE lane = ? AND ${READY} AND run_at <= ? GROUP BY caller`),
      done1m:
        db.prepare(`SELECT count(*) AS n, avg(completed_at - started_at) AS mean FROM loom_tasks
        WHERE lane = ? AND status = 'completed' AND completed_at >= ?`),
      oldestRunning: db.prepare(
        `SELECT min(started_at) AS at FROM loom_tasks WHERE lane = ? AND ${ACTIVE}`,
      ),
      bestWaiting: db
        .prepare(
          `SELECT max(priority) FROM loom_tasks WHERE lane = ? AND ${READY} AND run_at <= ? AND ${TYPES}`,
        )
        .pluck(),
      outstanding: db
        .prepare(
          `SELECT count(*) FROM loom_tasks WHERE lane = ? AND status = 'running' AND preempt_at IS NOT NULL`,
        )
        .pluck(),
      preempt: db.prepare(`UPDATE loom_tasks SET preempt_at = ? WHERE id = (
          SELECT id FROM loom_tasks WHERE lane = ? AND status = 'running' AND preemptible = 1
             AND preempt_at IS NULL AND started_at <= ? AND priority < ?
           ORDER BY started_at, id LIMIT 1)`),
      markPreemptible: db.prepare(`UPDATE loom_tasks
          SET preemptible = (type IN (SELECT value FROM json_each(?))), preempt_at = NULL
        WHERE id IN (SELECT value FROM json_each(?))`),
      preemptions: db.prepare(`SELECT id, attempt_id AS attemptId FROM loom_tasks
        WHERE engine_name = ? AND preempt_at IS NOT NULL AND status = 'running'`),
      task: db.prepare(`SELECT lane, caller, priority, run_at, id, status, deps_left FROM loom_tasks
        WHERE id = ?`),
      aheadInCaller: db.prepare(`SELECT count(*) AS n FROM loom_tasks WHERE lane = ? AND caller = ?
        AND ${READY} AND run_at <= ? AND (priority > ? OR (priority = ? AND (run_at < ? OR (run_at = ? AND id < ?))))`),
      aheadInLane: db.prepare(`SELECT count(*) AS n FROM loom_tasks WHERE lane = ?
        AND ${READY} AND run_at <= ? AND (priority > ? OR (priority = ? AND (run_at < ? OR (run_at = ? AND id < ?))))`),
    };
  }

  save(def: Omit<LaneDef, "updatedAt">, now: number): LaneDef {
    return toDef(
      this.s.save.get(
        def.name,
        def.concurrency,
        def.fairness,
        def.preemption ? JSON.stringify(def.preemption) : null,
        def.maxQueue,
        now,
      ) as LaneRow,
    );
  }

  setConcurrency(name: string, concurrency: number, now: number): boolean {
    return this.s.setConcurrency.run(concurrency, now, name).changes === 1;
  }

  /** Names of the lanes with a free slot now (for agent claims, one task at a time). */
  withFreeSlots(): string[] {
    return this.s.withFree.all() as string[];
  }

  list(): LaneDef[] {
    return (this.s.lanes.all() as LaneRow[]).map(toDef);
  }

  /**
   * Pick up to `limit` ready rows across `lanes` for this engine (the store marks them). Runs in
   * the store's IMMEDIATE transaction. Lanes are visited from a rotating start so one busy lane
   * does not always take an engine's free slots first.
   */
  pick<Row>(lanes: LaneClaim[], limit: number, now: number, rotate: number): Row[] {
    const out: Row[] = [];
    for (let i = 0; i < lanes.length && out.length < limit; i++) {
      const claim = lanes[(i + rotate) % lanes.length]!;
      out.push(...this.pickLane<Row>(claim, limit - out.length, now));
    }
    return out;
  }

  private pickLane<Row>(claim: LaneClaim, limit: number, now: number): Row[] {
    const lane = this.s.lane.get(claim.lane) as LaneRow | undefined;
    // An undeclared lane runs nothing: its limit is unknown until some process declares it.
    if (!lane || claim.types.length === 0) return [];
    const running = new Map<string, number>();
    let total = 0;
    for (const r of this.s.runningByCaller.all(claim.lane) as { caller: string; n: number }[]) {
      running.set(r.caller, r.n);
      total += r.n;
    }
    const free = Math.min(limit, lane.concurrency - total);
    const types = JSON.stringify(claim.types);
    if (free <= 0) {
      this.maybePreempt(lane, types, now);
      return [];
    }
    if (lane.fairness === "none") {
      return this.s.readyOfLane.all(claim.lane, now, types, free) as Row[];
    }
    const seqs = new Map<string, number>();
    for (const r of this.s.seqs.all(claim.lane) as { caller: string; served_seq: number }[])
      seqs.set(r.caller, r.served_seq);
    const callers = fairOrder(
      (this.s.readyCallers.all({ lane: claim.lane, now, types }) as { caller: string }[]).map(
        (r) => ({
          caller: r.caller,
          running: running.get(r.caller) ?? 0,
          servedSeq: seqs.get(r.caller) ?? 0,
        }),
      ),
    ).slice(0, free);
    if (callers.length === 0) return [];
    const withCandidates = callers.map((c) => ({
      ...c,
      candidates: this.s.readyOfCaller.all(claim.lane, c.caller, now, types, free) as Row[],
    }));
    const { picked, served, nextSeq } = pickFair(withCandidates, free, lane.serve_seq);
    for (const [caller, seq] of served) this.s.served.run(claim.lane, caller, seq);
    this.s.bumpSeq.run(nextSeq, claim.lane);
    return picked;
  }

  /**
   * The lane is full: when a ready task outranks a preemptible running one that has run at least
   * `minRuntimeMs`, mark the oldest such one for its engine to abort and release. One victim at a
   * time per lane, so a burst of arrivals does not empty the lane.
   */
  private maybePreempt(lane: LaneRow, types: string, now: number): void {
    if (lane.preemption === null) return;
    const p = JSON.parse(lane.preemption) as { enabled: boolean; minRuntimeMs: number };
    if (!p.enabled) return;
    const best = this.s.bestWaiting.get(lane.name, now, types) as number | null;
    if (best === null) return;
    if ((this.s.outstanding.get(lane.name) as number) > 0) return;
    this.s.preempt.run(now, lane.name, now - p.minRuntimeMs, best);
  }

  /** After a lane claim marked `ids` running: which of them may be preempted; no stale mark. */
  markPreemptible(ids: string[], preemptibleTypes: string[]): void {
    this.s.markPreemptible.run(JSON.stringify(preemptibleTypes), JSON.stringify(ids));
  }

  preemptions(engineName: string): { id: string; attemptId: string }[] {
    return this.s.preemptions.all(engineName) as { id: string; attemptId: string }[];
  }

  snapshot(name: string, now: number): LaneSnapshot | null {
    const lane = this.s.lane.get(name) as LaneRow | undefined;
    if (!lane) return null;
    const callers = new Map<
      string,
      { caller: string; running: number; queued: number; servedSeq: number }
    >();
    const entry = (caller: string) => {
      let e = callers.get(caller);
      if (!e) callers.set(caller, (e = { caller, running: 0, queued: 0, servedSeq: 0 }));
      return e;
    };
    let running = 0;
    let queued = 0;
    let oldest: number | null = null;
    for (const r of this.s.runningByCaller.all(name) as { caller: string; n: number }[]) {
      entry(r.caller).running = r.n;
      running += r.n;
    }
    for (const r of this.s.queuedByCaller.all(name, now) as {
      caller: string;
      n: number;
      oldest: number;
    }[]) {
      entry(r.caller).queued = r.n;
      queued += r.n;
      if (oldest === null || r.oldest < oldest) oldest = r.oldest;
    }
    for (const r of this.s.seqs.all(name) as { caller: string; served_seq: number }[]) {
      const e = callers.get(r.caller);
      if (e) e.servedSeq = r.served_seq;
    }
    const done = this.s.done1m.get(name, now - 60_000) as { n: number; mean: number | null };
    const started = this.s.oldestRunning.get(name) as { at: number | null };
    return {
      def: toDef(lane),
      perCaller: [...callers.values()].sort((a, b) => (a.caller < b.caller ? -1 : 1)),
      running,
      queued,
      oldestQueuedAt: oldest,
      completed1m: done.n,
      meanRunMs: done.mean,
      oldestRunningStartedAt: started.at,
    };
  }

  rank(target: RankTarget, now: number): LaneRank | null {
    const row = "id" in target ? (this.s.task.get(target.id) as RankRow | undefined) : undefined;
    const key = rankKey(target, row, now);
    if (!key) return null;
    const { lane, caller, priority, runAt, id } = key;
    const inCaller = this.s.aheadInCaller.get(
      lane,
      caller,
      now,
      priority,
      priority,
      runAt,
      runAt,
      id,
    ) as {
      n: number;
    };
    const inLane = this.s.aheadInLane.get(lane, now, priority, priority, runAt, runAt, id) as {
      n: number;
    };
    return { lane, caller, aheadInCaller: inCaller.n, aheadInLane: inLane.n };
  }
}
