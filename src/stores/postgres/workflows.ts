import type pg from "pg";
import type { Page } from "../../core/types.js";
import { decodeCursor, encodeCursor } from "../../store/filter.js";
import type { NewTask } from "../../store/store.js";
import { runFilterParts, workflowPageSize } from "../../store/workflow-rows.js";
import type {
  Checkpoint,
  HistoryRow,
  LoadedWorkflow,
  NewWorkflowRun,
  SignalRow,
  WorkflowRunFilter,
  WorkflowRunRow,
  WorkflowStatus,
  WorkflowStore,
} from "../../store/workflows.js";

interface CreateRow {
  created: number;
  notified: number;
  existing: WorkflowRunRow | null;
}

interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

/** What the workflow operations borrow from the PostgreSQL store. */
export interface PgPlumbing {
  /** Quoted schema name. */
  s: string;
  tx<T>(what: string, fn: (c: Queryable) => Promise<T>): Promise<T>;
  run<R extends pg.QueryResultRow>(
    c: Queryable,
    text: string,
    values?: unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>>;
  q<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>>;
  insertTasks(c: Queryable, tasks: NewTask[]): Promise<unknown>;
  notify(c: Queryable): Promise<void>;
  /** The NOTIFY channel and payload of this store, for statements that notify themselves. */
  channel: string;
  token: string;
}

const TERMINAL = `('completed', 'failed', 'cancelled')`;
const RUN_COLUMNS = `id, name, version, status, input, result, error, state, tenant, project,
  parent_id AS "parentId", waiting_for AS "waitingFor", history_len AS "historyLen",
  created_at AS "createdAt", updated_at AS "updatedAt", completed_at AS "completedAt"`;

/**
 * The PostgreSQL side of workflows. Activities wake their run through a trigger on tasks
 * (migration 004), so the exchange function stays as it is.
 */
export class PgWorkflows implements WorkflowStore {
  constructor(private readonly p: PgPlumbing) {}

  private wake(c: Queryable, id: string, at: number, now: number) {
    return this.p.run(c, `SELECT ${this.p.s}.wake_workflow($1, $2, $3)`, [id, at, now], "wf_wake");
  }

  async createWorkflowRun(run: NewWorkflowRun) {
    return this.createWith(
      (text, values, name) => this.p.q<CreateRow>("workflow start", text, values, name),
      run,
    );
  }

  private createIn(c: Queryable, run: NewWorkflowRun) {
    return this.createWith(
      (text, values, name) => this.p.run<CreateRow>(c, text, values, name),
      run,
    );
  }

  /**
   * One statement: the run, its WORKFLOW_STARTED event, its first wake-up task and a NOTIFY —
   * or, for an id that exists, that run as it was.
   */
  private async createWith(
    query: (text: string, values: unknown[], name: string) => Promise<pg.QueryResult<CreateRow>>,
    run: NewWorkflowRun,
  ): Promise<{ run: WorkflowRunRow; created: boolean }> {
    const s = this.p.s;
    const now = Math.round(run.now);
    const res = await query(
      `WITH st AS (
         SELECT $1::text AS id, $2::text AS name, $3::text AS version, $4::text AS input,
                $5::text AS tenant, $6::text AS project, $7::text AS parent_id,
                $8::bigint AS lease_ms, $9::bigint AS now, $12::text AS task_id,
                $13::text AS attempt_id, $14::text AS engine_name
       ), ${startCtes(s)}, n AS (
         -- A wake-up claimed by the starting process needs nobody else woken.
         SELECT pg_notify($10, $11) FROM started WHERE task_id IS NULL
       )
       SELECT (SELECT count(*) FROM ins)::integer AS created,
              (SELECT count(*) FROM n)::integer AS notified,
              (SELECT row_to_json(r) FROM (SELECT ${RUN_COLUMNS} FROM ${s}.workflows WHERE id = $1) r)
                AS existing`,
      [
        run.id,
        run.name,
        run.version,
        run.input,
        run.tenant,
        run.project,
        run.parentId,
        Math.round(run.leaseMs),
        now,
        this.p.channel,
        this.p.token,
        run.claim?.taskId ?? null,
        run.claim?.attemptId ?? null,
        run.claim?.engineName ?? null,
      ],
      "wf_create",
    );
    const row = res.rows[0]!;
    if (row.created === 0)
      return { run: await this.existing(run.id, row.existing), created: false };
    return { created: true, run: createdRow(run) };
  }

  /**
   * The run an existing id names. A statement's snapshot may predate a concurrent start of the
   * same id that its ON CONFLICT waited for; then the row is read again.
   */
  private async existing(id: string, row: WorkflowRunRow | null | undefined) {
    if (row) return fixRun(row);
    const again = await this.getWorkflowRun(id);
    if (!again) throw new Error(`workflow run ${id} conflicted on start but cannot be read`);
    return again;
  }

  async getWorkflowRun(id: string) {
    const res = await this.p.q<WorkflowRunRow>(
      "workflow read",
      `SELECT ${RUN_COLUMNS} FROM ${this.p.s}.workflows WHERE id = $1`,
      [id],
      "wf_get",
    );
    return res.rows[0] ?? null;
  }

  async loadWorkflow(id: string) {
    const s = this.p.s;
    // One round trip: the run, its history and its signals as JSON arrays.
    const res = await this.p.q<LoadRow>(
      "workflow load",
      `SELECT ${loadColumns(s, "$1")}`,
      [id],
      "wf_load",
    );
    return loaded(res.rows[0]!);
  }

  /**
   * Many loads in one round trip: the runs a claim just handed to this process. Each part is
   * looked up by key per id, as `loadWorkflow` does for one.
   */
  async loadWorkflows(ids: string[]): Promise<(LoadedWorkflow | null)[]> {
    if (ids.length === 1) return [await this.loadWorkflow(ids[0]!)];
    const s = this.p.s;
    const res = await this.p.q<{ i: number } & LoadRow>(
      "workflow load",
      `SELECT want.i::integer AS i, ${loadColumns(s, "want.id")}
         FROM unnest($1::text[]) WITH ORDINALITY AS want(id, i)`,
      [ids],
      "wf_load_many",
    );
    const out: (LoadedWorkflow | null)[] = ids.map(() => null);
    for (const row of res.rows) out[row.i - 1] = loaded(row);
    return out;
  }

  async listWorkflowRuns(filter: WorkflowRunFilter): Promise<Page<WorkflowRunRow>> {
    const limit = workflowPageSize(filter);
    const params: unknown[] = [];
    const param = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const where = runFilterParts(filter, param);
    if (filter.cursor) where.push(`id < ${param(decodeCursor(filter.cursor))}`);
    const sql = `SELECT ${RUN_COLUMNS} FROM ${this.p.s}.workflows
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ${limit + 1}`;
    const rows = (await this.p.q<WorkflowRunRow>("workflow list", sql, params)).rows;
    const more = rows.length > limit;
    const items = more ? rows.slice(0, limit) : rows;
    return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null };
  }

  async appendCheckpoints(checkpoints: Checkpoint[]): Promise<boolean[]> {
    const only = checkpoints.length === 1 ? checkpoints[0]! : null;
    if (only && only.tasks.length === 0 && only.children.length === 0) {
      // The common case (a step's checkpoint, a wait, an end): one autocommitted statement.
      const res = await this.p.q<{ ok: number }>(
        "workflow checkpoint",
        this.checkpointSql(),
        this.checkpointParams(only),
        "wf_checkpoint",
      );
      return [res.rows[0]!.ok === 1];
    }
    if (
      checkpoints.every((cp) => cp.tasks.length === 0 && cp.children.length === 0) &&
      new Set(checkpoints.map((cp) => cp.workflowId)).size === checkpoints.length
    ) {
      // Group commit of many runs' plain checkpoints: one statement, one commit. (Two of one
      // run in a batch take the path below, which applies them in order.)
      const res = await this.p.q<{ ok: number[] | null }>(
        "workflow checkpoints",
        this.batchSql(),
        this.batchParams(checkpoints),
        "wf_checkpoints",
      );
      const ok = new Set(res.rows[0]!.ok ?? []);
      return checkpoints.map((_, i) => ok.has(i + 1));
    }
    return this.p.tx("workflow checkpoint", async (c) => {
      const out: boolean[] = [];
      for (const cp of checkpoints) out.push(await this.applyCheckpoint(c, cp));
      return out;
    });
  }

  async writeWorkflows(starts: NewWorkflowRun[], checkpoints: Checkpoint[]) {
    if (starts.length === 0)
      return { starts: [], checkpoints: await this.appendCheckpoints(checkpoints) };
    if (checkpoints.length === 0 && starts.length === 1) {
      return { starts: [await this.createWorkflowRun(starts[0]!)], checkpoints: [] };
    }
    const ids = new Set(starts.map((r) => r.id));
    const plain =
      ids.size === starts.length &&
      checkpoints.every(
        (cp) => cp.tasks.length === 0 && cp.children.length === 0 && !ids.has(cp.workflowId),
      ) &&
      new Set(checkpoints.map((cp) => cp.workflowId)).size === checkpoints.length;
    if (!plain) {
      // A start repeated in the batch (an idempotent retry), or a checkpoint that inserts tasks
      // or children: one transaction, a statement each, in order.
      return this.p.tx("workflow write", async (c) => {
        const out = {
          starts: [] as { run: WorkflowRunRow; created: boolean }[],
          checkpoints: [] as boolean[],
        };
        for (const run of starts) out.starts.push(await this.createIn(c, run));
        for (const cp of checkpoints) out.checkpoints.push(await this.applyCheckpoint(c, cp));
        return out;
      });
    }
    // Starts of concurrent callers and the checkpoints of running runs: one statement, one commit.
    const res = await this.p.q<{
      ok: number[] | null;
      created: string[] | null;
    }>(
      "workflow write",
      this.batchSql(true),
      [...this.batchParams(checkpoints), ...this.startParams(starts)],
      "wf_write",
    );
    const row = res.rows[0]!;
    const ok = new Set(row.ok ?? []);
    const created = new Set(row.created ?? []);
    return {
      starts: await Promise.all(
        starts.map(async (run) =>
          created.has(run.id)
            ? { run: createdRow(run), created: true }
            : // An id that exists (an idempotent start again): read as it is, off the hot path.
              { run: await this.existing(run.id, null), created: false },
        ),
      ),
      checkpoints: checkpoints.map((_, i) => ok.has(i + 1)),
    };
  }

  private startParams(starts: NewWorkflowRun[]): unknown[] {
    return [
      starts.map((r) => r.id),
      starts.map((r) => r.name),
      starts.map((r) => r.version),
      starts.map((r) => r.input),
      starts.map((r) => r.tenant),
      starts.map((r) => r.project),
      starts.map((r) => r.parentId),
      starts.map((r) => Math.round(r.leaseMs)),
      starts.map((r) => Math.round(r.now)),
      starts.map((r) => r.claim?.taskId ?? null),
      starts.map((r) => r.claim?.attemptId ?? null),
      starts.map((r) => r.claim?.engineName ?? null),
    ];
  }

  /**
   * One checkpoint as one statement: the fenced run update, its events, its own wake-up, its
   * parent's wake-up when it ended, and a NOTIFY when something became due. (The wake-ups only
   * touch rows that existed before the statement, so the functions see what they need.)
   */
  private checkpointSql(): string {
    const s = this.p.s;
    return `WITH u AS (
         UPDATE ${s}.workflows SET status = $3, result = coalesce($4, result), error = $5,
           state = coalesce($6, state), waiting_for = $7, history_len = $8, updated_at = $9,
           completed_at = $10
         WHERE id = $1 AND history_len = $2 AND status NOT IN ${TERMINAL}
         RETURNING parent_id
       ), ev AS (
         INSERT INTO ${s}.workflow_history (workflow_id, pos, seq, kind, name, data, at)
         SELECT $1, $2 + e.o - 1, e.seq, e.kind, e.name, e.data, e.at
           FROM unnest($11::integer[], $12::text[], $13::text[], $14::text[], $15::bigint[])
                WITH ORDINALITY AS e(seq, kind, name, data, at, o)
          WHERE EXISTS (SELECT 1 FROM u)
       ), done AS (
         UPDATE ${s}.tasks SET status = 'completed', result = NULL, error = NULL,
           completed_at = $9, updated_at = $9, lease_expires_at = NULL
          WHERE id = $19::text AND attempt_id = $20::text AND status IN ('claimed', 'running')
            AND EXISTS (SELECT 1 FROM u)
       ), own AS (
         SELECT ${s}.wake_workflow($1, $16::bigint, $9) FROM u WHERE $16::bigint IS NOT NULL
       ), parent AS (
         SELECT ${s}.wake_workflow(u.parent_id, $9, $9) FROM u
          WHERE $10::bigint IS NOT NULL AND u.parent_id IS NOT NULL
       ), woke AS (
         SELECT 1 FROM own UNION ALL SELECT 1 FROM parent
       )
       SELECT (SELECT count(*) FROM u)::integer AS ok,
              (SELECT count(*) FROM (SELECT pg_notify($17, $18) FROM woke LIMIT 1) n)::integer AS notified`;
  }

  /**
   * `checkpointSql` for many checkpoints of distinct runs at once (none inserting tasks or
   * children). Each applies only if its own fence holds; the answer names the ones that did, by
   * their 1-based place in the batch.
   */
  private batchSql(withStarts = false): string {
    const s = this.p.s;
    // Starts (writeWorkflows), as createWith does one; an id that exists inserts nothing, and
    // its row is read afterwards.
    const starts = `, st AS (
         SELECT * FROM unnest($23::text[], $24::text[], $25::text[], $26::text[], $27::text[],
                              $28::text[], $29::text[], $30::bigint[], $31::bigint[], $32::text[],
                              $33::text[], $34::text[])
           AS st(id, name, version, input, tenant, project, parent_id, lease_ms, now, task_id,
                 attempt_id, engine_name)
       ), ${startCtes(s)}`;
    return `WITH cp AS (
         SELECT * FROM unnest($1::text[], $2::integer[], $3::integer[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
                              $11::bigint[], $21::text[], $22::text[])
           WITH ORDINALITY AS cp(id, expected, n, status, result, error, state, waiting_for, now,
                                 completed_at, wake_at, task_id, attempt_id, o)
         -- Changes nothing (it is the batch's length), but the cached generic plan then expects
         -- one row here and looks runs up by primary key. Without it, a plan made while the
         -- table was young scanned the whole table on every batch (until autovacuum analyzed
         -- it): ~0.25 ms per statement at 3,000 runs.
         LIMIT cardinality($1::text[])
       ), u AS (
         UPDATE ${s}.workflows w SET status = cp.status, result = coalesce(cp.result, w.result),
           error = cp.error, state = coalesce(cp.state, w.state), waiting_for = cp.waiting_for,
           history_len = cp.expected + cp.n, updated_at = cp.now, completed_at = cp.completed_at
         FROM cp
         WHERE w.id = cp.id AND w.history_len = cp.expected AND w.status NOT IN ${TERMINAL}
         RETURNING cp.o, cp.id, cp.expected, cp.now, cp.completed_at, cp.wake_at, w.parent_id,
                   cp.task_id, cp.attempt_id
       ), done AS (
         UPDATE ${s}.tasks t SET status = 'completed', result = NULL, error = NULL,
           completed_at = u.now, updated_at = u.now, lease_expires_at = NULL
           FROM u
          WHERE t.id = u.task_id AND t.attempt_id = u.attempt_id
            AND t.status IN ('claimed', 'running')
       ), ev AS (
         INSERT INTO ${s}.workflow_history (workflow_id, pos, seq, kind, name, data, at)
         SELECT u.id, u.expected + e.i, e.seq, e.kind, e.name, e.data, e.at
           FROM unnest($12::bigint[], $13::integer[], $14::integer[], $15::text[], $16::text[],
                       $17::text[], $18::bigint[]) AS e(o, i, seq, kind, name, data, at)
           JOIN u ON u.o = e.o
       ), own AS (
         SELECT ${s}.wake_workflow(u.id, u.wake_at, u.now) FROM u WHERE u.wake_at IS NOT NULL
       ), parent AS (
         SELECT ${s}.wake_workflow(u.parent_id, u.now, u.now) FROM u
          WHERE u.completed_at IS NOT NULL AND u.parent_id IS NOT NULL
       )${withStarts ? starts : ""}, woke AS (
         -- count(*) runs every wake-up (a SELECT CTE is only evaluated as far as it is read).
         -- A start whose wake-up nobody here claimed needs a dispatcher woken too.
         SELECT (SELECT count(*) FROM own) + (SELECT count(*) FROM parent)${
           withStarts ? " + (SELECT count(*) FROM started WHERE task_id IS NULL)" : ""
         } AS n
       )
       SELECT (SELECT array_agg(o::integer) FROM u) AS ok,
              (SELECT count(*) FROM (SELECT pg_notify($19, $20) FROM woke WHERE n > 0) x)::integer
                AS notified${withStarts ? `, (SELECT array_agg(id) FROM ins) AS created` : ""}`;
  }

  private batchParams(cps: Checkpoint[]): unknown[] {
    const cols: unknown[][] = Array.from({ length: 18 }, () => []);
    cps.forEach((cp, k) => {
      const terminal =
        cp.status === "completed" || cp.status === "failed" || cp.status === "cancelled";
      const now = Math.round(cp.now);
      const row = [
        cp.workflowId,
        cp.expectedLen,
        cp.events.length,
        cp.status,
        cp.result ?? null,
        cp.error ?? null,
        cp.state ?? null,
        cp.waitingFor,
        now,
        terminal ? now : null,
        cp.wakeAt === null ? null : Math.round(cp.wakeAt),
      ];
      row.forEach((v, i) => cols[i]!.push(v));
      cp.events.forEach((e, i) => {
        cols[11]!.push(k + 1);
        cols[12]!.push(i);
        cols[13]!.push(e.seq);
        cols[14]!.push(e.kind);
        cols[15]!.push(e.name);
        cols[16]!.push(e.data);
        cols[17]!.push(Math.round(e.at));
      });
    });
    return [
      ...cols,
      this.p.channel,
      this.p.token,
      cps.map((cp) => cp.settle?.taskId ?? null),
      cps.map((cp) => cp.settle?.attemptId ?? null),
    ];
  }

  private checkpointParams(cp: Checkpoint): unknown[] {
    const terminal =
      cp.status === "completed" || cp.status === "failed" || cp.status === "cancelled";
    const e = cp.events;
    return [
      cp.workflowId,
      cp.expectedLen,
      cp.status,
      cp.result ?? null,
      cp.error ?? null,
      cp.state ?? null,
      cp.waitingFor,
      cp.expectedLen + e.length,
      Math.round(cp.now),
      terminal ? Math.round(cp.now) : null,
      e.map((x) => x.seq),
      e.map((x) => x.kind),
      e.map((x) => x.name),
      e.map((x) => x.data),
      e.map((x) => Math.round(x.at)),
      cp.wakeAt === null ? null : Math.round(cp.wakeAt),
      this.p.channel,
      this.p.token,
      cp.settle?.taskId ?? null,
      cp.settle?.attemptId ?? null,
    ];
  }

  private async applyCheckpoint(c: Queryable, cp: Checkpoint): Promise<boolean> {
    const res = await this.p.run<{ ok: number }>(
      c,
      this.checkpointSql(),
      this.checkpointParams(cp),
      "wf_checkpoint",
    );
    if (res.rows[0]!.ok !== 1) return false;
    if (cp.tasks.length) await this.p.insertTasks(c, cp.tasks);
    for (const child of cp.children) await this.createIn(c, child);
    if (cp.tasks.length || cp.children.length) await this.p.notify(c);
    return true;
  }

  async signalWorkflow(id: string, name: string, data: string | null, now: number) {
    const s = this.p.s;
    return this.p.tx("workflow signal", async (c): Promise<WorkflowStatus | null> => {
      const res = await this.p.run<{ status: WorkflowStatus }>(
        c,
        `SELECT status FROM ${s}.workflows WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const status = res.rows[0]?.status;
      if (status === undefined) return null;
      if (status === "completed" || status === "failed" || status === "cancelled") return status;
      await this.p.run(
        c,
        `INSERT INTO ${s}.workflow_signals (workflow_id, pos, name, data, at)
         VALUES ($1, (SELECT coalesce(max(pos), -1) + 1 FROM ${s}.workflow_signals WHERE workflow_id = $1), $2, $3, $4)`,
        [id, name, data, Math.round(now)],
      );
      await this.wake(c, id, Math.round(now), Math.round(now));
      await this.p.notify(c);
      return status;
    });
  }

  async cancelWorkflow(id: string, reason: string, now: number) {
    const s = this.p.s;
    const at = Math.round(now);
    return this.p.tx("workflow cancel", async (c): Promise<string[] | null> => {
      const found = await this.p.run<{ parent_id: string | null }>(
        c,
        `SELECT parent_id FROM ${s}.workflows WHERE id = $1`,
        [id],
      );
      if (found.rowCount === 0) return null;
      const cancelled: string[] = [];
      const visit = async (runId: string, why: string): Promise<void> => {
        const res = await this.p.run<{ history_len: number }>(
          c,
          `UPDATE ${s}.workflows SET status = 'cancelled', error = $2, waiting_for = NULL,
             history_len = history_len + 1, updated_at = $3, completed_at = $3
           WHERE id = $1 AND status NOT IN ${TERMINAL} RETURNING history_len`,
          [runId, why, at],
        );
        const row = res.rows[0];
        if (!row) return;
        cancelled.push(runId);
        await this.p.run(
          c,
          `INSERT INTO ${s}.workflow_history (workflow_id, pos, seq, kind, name, data, at)
           VALUES ($1, $2, -1, 'WORKFLOW_CANCELLED', NULL, $3, $4)`,
          [runId, row.history_len - 1, JSON.stringify({ reason: why }), at],
        );
        const children = await this.p.run<{ id: string }>(
          c,
          `SELECT id FROM ${s}.workflows WHERE parent_id = $1 AND status NOT IN ${TERMINAL}`,
          [runId],
        );
        for (const ch of children.rows) await visit(ch.id, `parent ${runId} was cancelled`);
      };
      await visit(id, reason);
      const parent = found.rows[0]!.parent_id;
      if (cancelled.length && parent) await this.wake(c, parent, at, at);
      if (cancelled.length) await this.p.notify(c);
      return cancelled;
    });
  }
}

/**
 * The CTEs that start the runs of a CTE `st` (id, name, version, input, tenant, project,
 * parent_id, lease_ms, now, task_id, attempt_id, engine_name): `ins` the runs inserted (an id that
 * exists inserts nothing), `started` their `st` rows, then each run's WORKFLOW_STARTED event and
 * its first wake-up task, already claimed (running, leased) when `task_id` is given.
 */
function startCtes(s: string): string {
  return `ins AS (
         INSERT INTO ${s}.workflows (id, name, version, status, input, tenant, project, parent_id,
           history_len, lease_ms, created_at, updated_at)
         SELECT id, name, version, 'pending', input, tenant, project, parent_id, 1, lease_ms, now,
                now
           FROM st
         ON CONFLICT DO NOTHING
         RETURNING id
       ), started AS (
         SELECT st.* FROM st JOIN ins USING (id)
       ), sev AS (
         INSERT INTO ${s}.workflow_history (workflow_id, pos, seq, kind, name, data, at)
         SELECT id, 0, 0, 'WORKFLOW_STARTED', name, input, now FROM started
       ), swake AS (
         INSERT INTO ${s}.tasks (id, type, status, input, tenant, project, priority, max_retries,
           crash_policy, max_crashes, lease_ms, run_at, workflow_id, created_at, updated_at,
           attempt, attempt_id, engine_name, lease_expires_at, started_at)
         SELECT coalesce(task_id, 'w' || replace(gen_random_uuid()::text, '-', '')),
                'loom.workflow', CASE WHEN task_id IS NULL THEN 'pending' ELSE 'running' END,
                json_build_object('workflowId', id)::text, tenant, project, 1, 1000, 'retry', 1000,
                lease_ms, now, id, now, now, CASE WHEN task_id IS NULL THEN 0 ELSE 1 END,
                attempt_id, engine_name,
                CASE WHEN task_id IS NULL THEN NULL ELSE now + lease_ms END,
                CASE WHEN task_id IS NULL THEN NULL ELSE now END
           FROM started
       )`;
}

/** A load's columns for the run `id` names: the run, its history and its signals as JSON. */
function loadColumns(s: string, id: string): string {
  return `(SELECT row_to_json(r) FROM (SELECT ${RUN_COLUMNS} FROM ${s}.workflows
            WHERE id = ${id}) r) AS run,
         (SELECT json_agg(json_build_array(seq, kind, name, data, at) ORDER BY pos)
            FROM ${s}.workflow_history WHERE workflow_id = ${id}) AS history,
         (SELECT json_agg(json_build_array(name, data, at) ORDER BY pos)
            FROM ${s}.workflow_signals WHERE workflow_id = ${id}) AS signals`;
}

/** A load's row: the run, its history and its signals as JSON arrays. */
interface LoadRow {
  run: WorkflowRunRow | null;
  history: [number, string, string | null, string | null, number][] | null;
  signals: [string, string | null, number][] | null;
}

function loaded(row: LoadRow): LoadedWorkflow | null {
  if (!row.run) return null;
  const history: HistoryRow[] = (row.history ?? []).map(([seq, kind, name, data, at]) => ({
    seq,
    kind,
    name,
    data,
    at: Number(at),
  }));
  const signals: SignalRow[] = (row.signals ?? []).map(([name, data, at]) => ({
    name,
    data,
    at: Number(at),
  }));
  return { run: fixRun(row.run), history, signals };
}

/** The row a start just inserted, as `getWorkflowRun` would read it. */
function createdRow(run: NewWorkflowRun): WorkflowRunRow {
  const now = Math.round(run.now);
  return {
    id: run.id,
    name: run.name,
    version: run.version,
    status: "pending",
    input: run.input,
    result: null,
    error: null,
    state: null,
    tenant: run.tenant,
    project: run.project,
    parentId: run.parentId,
    waitingFor: null,
    historyLen: 1,
    createdAt: now,
    updatedAt: now,
    completedAt: null,
  };
}

/** bigint columns arrive parsed by the store's type parser; JSON-built rows need numbers made. */
function fixRun(r: WorkflowRunRow): WorkflowRunRow {
  return {
    ...r,
    historyLen: Number(r.historyLen),
    createdAt: Number(r.createdAt),
    updatedAt: Number(r.updatedAt),
    completedAt: r.completedAt === null ? null : Number(r.completedAt),
  };
}
