import {
  fairOrder,
  pickFair,
  type LaneClaim,
  type LaneDef,
  type LaneFairness,
  type LaneRank,
  type LaneSnapshot,
} from "../../store/lanes.js";

const READY = `status IN ('pending', 'retrying') AND deps_left = 0`;
const ACTIVE = `status IN ('claimed', 'running')`;

/** The claim's output columns: the same positions as an `ExchangeRow` (see rows.ts). */
const HOT = `2 AS k, NULL::int AS ord, id, NULL::boolean AS ok, status, type, tenant, project,
  request_id, workflow_id, attempt, attempt_id, input, caller, priority, labels, metadata,
  timeout_ms, max_retries, crash_count, backoff, lease_ms, run_at, trace_context, error`;

/** Runs one statement on the transaction's connection; rows as objects, or arrays with `array`. */
export type Run = <R>(text: string, values: unknown[], rowMode?: "array") => Promise<R[]>;

interface LaneRow {
  name: string;
  concurrency: number;
  fairness: LaneFairness;
  preemption: string | null;
  max_queue: number | null;
  serve_seq: number;
  updated_at: number;
}

const toDef = (r: LaneRow): LaneDef => ({
  name: r.name,
  concurrency: r.concurrency,
  fairness: r.fairness,
  preemption: r.preemption === null ? null : (JSON.parse(r.preemption) as LaneDef["preemption"]),
  maxQueue: r.max_queue,
  updatedAt: r.updated_at,
});

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
    rotate: number,
  ): Promise<Row[]> {
    const out: Row[] = [];
    // Lane rows are locked in name order (as agent claims do), so two claims cannot deadlock.
    // (`rotate` is unused here: a rotating start would break that order.)
    void rotate;
    const order = [...lanes].sort((a, b) => (a.lane < b.lane ? -1 : a.lane > b.lane ? 1 : 0));
    for (let i = 0; i < order.length && out.length < limit; i++) {
      const c = order[i]!;
      const ids = await this.pickLane(run, c, limit - out.length, now);
      if (ids.length === 0) continue;
      const rows = await run<Row>(
        `WITH u AS (
           UPDATE ${this.s}.tasks SET status = 'running', attempt = attempt + 1,
             attempt_id = $2 || '.' || (attempt + 1), engine_name = $3,
             lease_expires_at = $4 + lease_ms, started_at = $4, updated_at = $4,
             progress = NULL, progress_note = NULL
           WHERE id = ANY($1::text[]) AND ${READY}
           RETURNING *)
         SELECT ${HOT} FROM u ORDER BY array_position($1::text[], u.id::text)`,
        [ids, nonce, engineName, now],
        "array",
      );
      out.push(...rows);
    }
    return out;
  }

  private async pickLane(
    run: Run,
    claim: LaneClaim,
    limit: number,
    now: number,
  ): Promise<string[]> {
    if (claim.types.length === 0) return [];
    // The lane's lock: claims for this lane wait here for each other, and the counts read after it
    // include every claim committed before.
    const lanes = await run<LaneRow>(`SELECT * FROM ${this.s}.lanes WHERE name = $1 FOR UPDATE`, [
      claim.lane,
    ]);
    const lane = lanes[0];
    if (!lane) return [];
    const running = new Map<string, number>();
    let total = 0;
    for (const r of await run<{ caller: string; n: number }>(
      `SELECT caller, count(*)::int AS n FROM ${this.s}.tasks WHERE lane = $1 AND ${ACTIVE} GROUP BY caller`,
      [claim.lane],
    )) {
      running.set(r.caller, r.n);
      total += r.n;
    }
    const free = Math.min(limit, lane.concurrency - total);
    if (free <= 0) return [];
    if (lane.fairness === "none") {
      const rows = await run<{ id: string }>(
        `SELECT id FROM ${this.s}.tasks WHERE lane = $1 AND ${READY} AND run_at <= $2
           AND type = ANY($3::text[]) ORDER BY priority DESC, run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED`,
        [claim.lane, now, claim.types, free],
      );
      return rows.map((r) => r.id);
    }
    // Distinct callers with claimable work: one index seek per caller (a skip scan).
    const ready = await run<{ caller: string; served_seq: number | null }>(
      `WITH RECURSIVE c(caller) AS (
         (SELECT caller FROM ${this.s}.tasks WHERE lane = $1 AND ${READY} AND run_at <= $2
            AND type = ANY($3::text[]) ORDER BY caller LIMIT 1)
         UNION ALL
         SELECT (SELECT t.caller FROM ${this.s}.tasks t WHERE t.lane = $1 AND t.status IN ('pending', 'retrying') AND t.deps_left = 0
                   AND t.run_at <= $2 AND t.type = ANY($3::text[]) AND t.caller > c.caller
                 ORDER BY t.caller LIMIT 1)
         FROM c WHERE c.caller IS NOT NULL)
       SELECT c.caller, lc.served_seq FROM c
         LEFT JOIN ${this.s}.lane_callers lc ON lc.lane = $1 AND lc.caller = c.caller
        WHERE c.caller IS NOT NULL`,
      [claim.lane, now, claim.types],
    );
    const callers = fairOrder(
      ready.map((r) => ({
        caller: r.caller,
        running: running.get(r.caller) ?? 0,
        servedSeq: r.served_seq ?? 0,
      })),
    ).slice(0, free);
    if (callers.length === 0) return [];
    const candidates = await run<{ caller: string; id: string }>(
      `SELECT c.caller, b.id FROM unnest($4::text[]) AS c(caller)
       CROSS JOIN LATERAL (
         SELECT id, priority, run_at FROM ${this.s}.tasks WHERE lane = $1 AND caller = c.caller
           AND ${READY} AND run_at <= $2 AND type = ANY($3::text[])
         ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) b
       ORDER BY c.caller, b.priority DESC, b.run_at, b.id`,
      [claim.lane, now, claim.types, callers.map((c) => c.caller), free],
    );
    const byCaller = new Map<string, string[]>();
    for (const r of candidates) {
      let list = byCaller.get(r.caller);
      if (!list) byCaller.set(r.caller, (list = []));
      list.push(r.id);
    }
    const { picked, served, nextSeq } = pickFair(
      callers.map((c) => ({ ...c, candidates: byCaller.get(c.caller) ?? [] })),
      free,
      lane.serve_seq,
    );
    if (served.size > 0) {
      await run(
        `INSERT INTO ${this.s}.lane_callers (lane, caller, served_seq)
         SELECT $1, s.caller, s.seq FROM unnest($2::text[], $3::bigint[]) AS s(caller, seq)
         ON CONFLICT (lane, caller) DO UPDATE SET served_seq = excluded.served_seq`,
        [claim.lane, [...served.keys()], [...served.values()]],
      );
      await run(`UPDATE ${this.s}.lanes SET serve_seq = $1 WHERE name = $2`, [nextSeq, claim.lane]);
    }
    return picked;
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

  async rank(
    run: Run,
    target: { id: string } | { lane: string; caller: string; priority: number },
    now: number,
  ): Promise<LaneRank | null> {
    let lane: string;
    let caller: string;
    let priority: number;
    let runAt = Number.MAX_SAFE_INTEGER;
    let id = "\uffff";
    if ("id" in target) {
      const t = (
        await run<{
          lane: string | null;
          caller: string | null;
          priority: number;
          run_at: number;
          id: string;
          status: string;
          deps_left: number;
        }>(
          `SELECT lane, caller, priority, run_at, id, status, deps_left FROM ${this.s}.tasks WHERE id = $1`,
          [target.id],
        )
      )[0];
      if (!t || t.lane === null || t.caller === null) return null;
      if ((t.status !== "pending" && t.status !== "retrying") || t.deps_left > 0 || t.run_at > now)
        return null;
      ({ lane, caller, priority } = { lane: t.lane, caller: t.caller, priority: t.priority });
      runAt = t.run_at;
      id = t.id;
    } else {
      ({ lane, caller, priority } = target);
    }
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
