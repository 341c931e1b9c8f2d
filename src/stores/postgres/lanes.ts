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

/** The claim's output columns: the same positions as an `ExchangeRow` (see rows.ts). */
const HOT = `2 AS k, NULL::int AS ord, id, NULL::boolean AS ok, status, type, tenant, project,
  request_id, workflow_id, attempt, attempt_id, input, caller, priority, labels, metadata,
  timeout_ms, max_retries, crash_count, backoff, lease_ms, run_at, trace_context, error`;

/** Runs one statement on the transaction's connection; rows as objects, or arrays with `array`. */
export type Run = <R>(text: string, values: unknown[], rowMode?: "array") => Promise<R[]>;

/** Lane claims and reads on PostgreSQL; each method runs on one connection the store gives it. */
export class PostgresLanes {
  constructor(private readonly s: string) {}

  async save(run: Run, def: Omit<LaneDef, "updatedAt">, now: number): Promise<LaneDef> {
    const rows = await run<LaneRow>(
      `INSERT INTO ${this.s}.lanes (name, concurrency, fairness, preemption, max_queue, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET
         concurrency = excluded.concurrency, fairness = excluded.fairness,
         preemption = excluded.preemption, max_queue = excluded.max_queue, updated_at = excluded.updated_at
       RETURNING *`,
      [
        def.name,
        def.concurrency,
        def.fairness,
        def.preemption ? JSON.stringify(def.preemption) : null,
        def.maxQueue,
        now,
      ],
    );
    return toDef(rows[0]!);
  }

  async setConcurrency(run: Run, name: string, n: number, now: number): Promise<boolean> {
    const rows = await run(
      `UPDATE ${this.s}.lanes SET concurrency = $1, updated_at = $2 WHERE name = $3 RETURNING name`,
      [n, now, name],
    );
    return rows.length === 1;
  }

  async list(run: Run): Promise<LaneDef[]> {
    return (await run<LaneRow>(`SELECT * FROM ${this.s}.lanes ORDER BY name`, [])).map(toDef);
  }

  /**
   * Inside a transaction: lock every lane row, then return the lanes with a free slot (agent
   * claims take one task at a time; holding the locks until commit keeps the count true).
   */
  async lockFree(run: Run): Promise<string[] | null> {
    const all = await run<{ name: string }>(
      `SELECT name FROM ${this.s}.lanes ORDER BY name FOR UPDATE`,
      [],
    );
    if (all.length === 0) return null;
    const rows = await run<{ name: string }>(
      `SELECT l.name FROM ${this.s}.lanes l WHERE l.concurrency >
         (SELECT count(*) FROM ${this.s}.tasks t WHERE t.lane = l.name AND t.status IN ('claimed', 'running'))`,
      [],
    );
    return rows.map((r) => r.name);
  }

  /**
   * Claim up to `limit` ready rows across `lanes` into `running`, inside the caller's
   * transaction. Rows come back as `ExchangeRow` arrays (k = 2).
   */
  async claim<Row>(
    run: Run,
    lanes: LaneClaim[],
    limit: number,
    now: number,
    engineName: string,
    nonce: string,
  ): Promise<Row[]> {
    const out: Row[] = [];
    // Lane rows are locked in name order (as agent claims do), so two claims cannot deadlock.
    const order = [...lanes].sort((a, b) => (a.lane < b.lane ? -1 : a.lane > b.lane ? 1 : 0));
    for (let i = 0; i < order.length && out.length < limit; i++) {
      out.push(
        ...(await this.claimLane<Row>(run, order[i]!, limit - out.length, now, engineName, nonce)),
      );
    }
    return out;
  }

  /**
   * One lane, three statements: lock the lane row; read (one statement, after the lock, so its
   * snapshot holds every claim committed before) the running counts, the first `free` callers
   * with ready work in fair-share order and each one's best ready tasks (locked, skipping others'
   * locks); then mark the picks and record who was served.
   */
  private async claimLane<Row>(
    run: Run,
    claim: LaneClaim,
    limit: number,
    now: number,
    engineName: string,
    nonce: string,
  ): Promise<Row[]> {
    if (claim.types.length === 0) return [];
    const lane = (
      await run<LaneRow>(`SELECT * FROM ${this.s}.lanes WHERE name = $1 FOR UPDATE`, [claim.lane])
    )[0];
    if (!lane) return [];
    let ids: string[];
    let served = new Map<string, number>();
    let nextSeq = lane.serve_seq;
    const freeSql = `(SELECT greatest(0, least($4::int, $5::int - coalesce(sum(n), 0)::int)) FROM r)`;
    const running = `r AS (SELECT caller, count(*)::int AS n FROM ${this.s}.tasks
                            WHERE lane = $1 AND ${ACTIVE} GROUP BY caller)`;
    if (lane.fairness === "none") {
      const rows = await run<{ id: string }>(
        `WITH ${running}
         SELECT id FROM ${this.s}.tasks WHERE lane = $1 AND ${READY} AND run_at <= $2
            AND type = ANY($3::text[]) ORDER BY priority DESC, run_at, id LIMIT ${freeSql}
            FOR UPDATE SKIP LOCKED`,
        [claim.lane, now, claim.types, limit, lane.concurrency],
      );
      ids = rows.map((r) => r.id);
    } else {
      const rows = await run<{
        caller: string;
        running: number;
        seq: number;
        id: string;
        total: number;
      }>(
        `WITH RECURSIVE ${running},
         c(caller) AS (
           (SELECT caller FROM ${this.s}.tasks WHERE lane = $1 AND ${READY} AND run_at <= $2
              AND type = ANY($3::text[]) ORDER BY caller LIMIT 1)
           UNION ALL
           SELECT (SELECT t.caller FROM ${this.s}.tasks t
                    WHERE t.lane = $1 AND t.status IN ('pending', 'retrying') AND t.deps_left = 0
                      AND t.run_at <= $2 AND t.type = ANY($3::text[]) AND t.caller > c.caller
                    ORDER BY t.caller LIMIT 1)
           FROM c WHERE c.caller IS NOT NULL),
         k AS (
           SELECT c.caller, coalesce(r.n, 0) AS running, coalesce(lc.served_seq, 0) AS seq
             FROM c LEFT JOIN r ON r.caller = c.caller
             LEFT JOIN ${this.s}.lane_callers lc ON lc.lane = $1 AND lc.caller = c.caller
            WHERE c.caller IS NOT NULL
            ORDER BY 2, 3, 1 LIMIT ${freeSql})
         SELECT k.caller, k.running, k.seq, b.id, (SELECT coalesce(sum(n), 0)::int FROM r) AS total
           FROM k
         CROSS JOIN LATERAL (
           SELECT id, priority, run_at FROM ${this.s}.tasks WHERE lane = $1 AND caller = k.caller
              AND ${READY} AND run_at <= $2 AND type = ANY($3::text[])
            ORDER BY priority DESC, run_at, id LIMIT ${freeSql} FOR UPDATE SKIP LOCKED) b
         ORDER BY k.caller, b.priority DESC, b.run_at, b.id`,
        [claim.lane, now, claim.types, limit, lane.concurrency],
      );
      const callers = new Map<
        string,
        { caller: string; running: number; servedSeq: number; candidates: string[] }
      >();
      for (const r of rows) {
        let c = callers.get(r.caller);
        if (!c) {
          c = { caller: r.caller, running: r.running, servedSeq: r.seq, candidates: [] };
          callers.set(r.caller, c);
        }
        c.candidates.push(r.id);
      }
      // Rows exist only when there are free slots; every row carries the lane's running total.
      const free = rows.length ? Math.min(limit, lane.concurrency - rows[0]!.total) : 0;
      const pick = pickFair(fairOrder([...callers.values()]), free, lane.serve_seq);
      ids = pick.picked;
      served = pick.served;
      nextSeq = pick.nextSeq;
    }
    if (ids.length === 0) {
      await this.maybePreempt(run, lane, claim, now);
      return [];
    }
    return run<Row>(
      `WITH u AS (
         UPDATE ${this.s}.tasks SET status = 'running', attempt = attempt + 1,
           attempt_id = $2 || '.' || (attempt + 1), engine_name = $3,
           lease_expires_at = $4 + lease_ms, started_at = $4, updated_at = $4,
           progress = NULL, progress_note = NULL,
           preemptible = (type = ANY($9::text[])), preempt_at = NULL
         WHERE id = ANY($1::text[]) AND ${READY}
         RETURNING *),
       s AS (
         INSERT INTO ${this.s}.lane_callers (lane, caller, served_seq)
         SELECT $5, x.caller, x.seq FROM unnest($6::text[], $7::bigint[]) AS x(caller, seq)
         ON CONFLICT (lane, caller) DO UPDATE SET served_seq = excluded.served_seq),
       l AS (UPDATE ${this.s}.lanes SET serve_seq = $8 WHERE name = $5 AND $8 <> serve_seq)
       SELECT ${HOT} FROM u ORDER BY array_position($1::text[], u.id::text)`,
      [
        ids,
        nonce,
        engineName,
        now,
        claim.lane,
        [...served.keys()],
        [...served.values()],
        nextSeq,
        claim.preemptible ?? [],
      ],
      "array",
    );
  }

  /**
   * Nothing claimed: if the lane is full and a ready task outranks a preemptible running one that
   * has run at least `minRuntimeMs`, mark the oldest such one for its engine to abort and release.
   * One victim at a time per lane (the lane row is locked).
   */
  private async maybePreempt(
    run: Run,
    lane: LaneRow,
    claim: LaneClaim,
    now: number,
  ): Promise<void> {
    if (lane.preemption === null) return;
    const p = JSON.parse(lane.preemption) as { enabled: boolean; minRuntimeMs: number };
    if (!p.enabled) return;
    await run(
      `UPDATE ${this.s}.tasks SET preempt_at = $2 WHERE id = (
         SELECT id FROM ${this.s}.tasks WHERE lane = $1 AND status = 'running' AND preemptible
            AND preempt_at IS NULL AND started_at <= $4
            AND priority < (SELECT max(priority) FROM ${this.s}.tasks WHERE lane = $1 AND ${READY}
                              AND run_at <= $2 AND type = ANY($3::text[]))
          ORDER BY started_at, id LIMIT 1)
         AND (SELECT count(*) FROM ${this.s}.tasks WHERE lane = $1 AND ${ACTIVE}) >= $5
         AND NOT EXISTS (SELECT 1 FROM ${this.s}.tasks WHERE lane = $1 AND status = 'running'
                           AND preempt_at IS NOT NULL)`,
      [lane.name, now, claim.types, now - p.minRuntimeMs, lane.concurrency],
    );
  }

  async preemptions(run: Run, engineName: string): Promise<{ id: string; attemptId: string }[]> {
    return run<{ id: string; attemptId: string }>(
      `SELECT id, attempt_id AS "attemptId" FROM ${this.s}.tasks
        WHERE engine_name = $1 AND preempt_at IS NOT NULL AND status = 'running'`,
      [engineName],
    );
  }

  async snapshot(run: Run, name: string, now: number): Promise<LaneSnapshot | null> {
    const lane = (await run<LaneRow>(`SELECT * FROM ${this.s}.lanes WHERE name = $1`, [name]))[0];
    if (!lane) return null;
    const rows = await run<{
      caller: string;
      running: number;
      queued: number;
      oldest: number | null;
      served_seq: number | null;
    }>(
      `WITH r AS (SELECT caller, count(*)::int AS n FROM ${this.s}.tasks
                   WHERE lane = $1 AND ${ACTIVE} GROUP BY caller),
            q AS (SELECT caller, count(*)::int AS n, min(run_at) AS oldest FROM ${this.s}.tasks
                   WHERE lane = $1 AND ${READY} AND run_at <= $2 GROUP BY caller)
       SELECT coalesce(r.caller, q.caller) AS caller, coalesce(r.n, 0) AS running,
              coalesce(q.n, 0) AS queued, q.oldest, lc.served_seq
         FROM r FULL JOIN q ON q.caller = r.caller
         LEFT JOIN ${this.s}.lane_callers lc ON lc.lane = $1 AND lc.caller = coalesce(r.caller, q.caller)
        ORDER BY 1`,
      [name, now],
    );
    const stats = (
      await run<{ n: number; mean: number | null; started: number | null }>(
        `SELECT (SELECT count(*)::int FROM ${this.s}.tasks WHERE lane = $1 AND status = 'completed'
                   AND completed_at >= $2) AS n,
                (SELECT avg(completed_at - started_at)::float8 FROM ${this.s}.tasks WHERE lane = $1
                   AND status = 'completed' AND completed_at >= $2) AS mean,
                (SELECT min(started_at) FROM ${this.s}.tasks WHERE lane = $1 AND ${ACTIVE}) AS started`,
        [name, now - 60_000],
      )
    )[0]!;
    let running = 0;
    let queued = 0;
    let oldest: number | null = null;
    for (const r of rows) {
      running += r.running;
      queued += r.queued;
      if (r.oldest !== null && (oldest === null || r.oldest < oldest)) oldest = r.oldest;
    }
    return {
      def: toDef(lane),
      perCaller: rows.map((r) => ({
        caller: r.caller,
        running: r.running,
        queued: r.queued,
        servedSeq: r.served_seq ?? 0,
      })),
      running,
      queued,
      oldestQueuedAt: oldest,
      completed1m: stats.n,
      meanRunMs: stats.mean,
      oldestRunningStartedAt: stats.started,
    };
  }

  async rank(run: Run, target: RankTarget, now: number): Promise<LaneRank | null> {
    const row =
      "id" in target
        ? (
            await run<RankRow>(
              `SELECT lane, caller, priority, run_at, id, status, deps_left FROM ${this.s}.tasks WHERE id = $1`,
              [target.id],
            )
          )[0]
        : undefined;
    const key = rankKey(target, row, now);
    if (!key) return null;
    const { lane, caller, priority, runAt, id } = key;
    const before = `(priority > $3 OR (priority = $3 AND (run_at < $4 OR (run_at = $4 AND id < $5))))`;
    const r = (
      await run<{ in_caller: number; in_lane: number }>(
        `SELECT (SELECT count(*)::int FROM ${this.s}.tasks WHERE lane = $1 AND caller = $6 AND ${READY}
                   AND run_at <= $2 AND ${before}) AS in_caller,
                (SELECT count(*)::int FROM ${this.s}.tasks WHERE lane = $1 AND ${READY}
                   AND run_at <= $2 AND ${before}) AS in_lane`,
        [lane, now, priority, runAt, id, caller],
      )
    )[0]!;
    return { lane, caller, aheadInCaller: r.in_caller, aheadInLane: r.in_lane };
  }
}
