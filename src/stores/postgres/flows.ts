import type pg from "pg";
import type { Page } from "../../core/types.js";
import type {
  FlowFilter,
  FlowRow,
  FlowStore,
  NewFlow,
  NewSchedule,
  ScheduleFiring,
  ScheduleRow,
  ScheduleStore,
} from "../../store/flows.js";
import type { InsertOutcome, NewTask } from "../../store/store.js";
import {
  FLOW_COMPLETED_AT_SQL,
  FLOW_STATUS_SQL,
  fireScheduleSql,
  toFlows,
  toSchedule,
  upsertScheduleSql,
  type FlowHeadRow,
  type FlowTaskRow,
  type ScheduleDbRow,
} from "../flows-shared.js";

/**
 * What the flow and schedule stores need of the PostgreSQL store: its schema, its insert, and its
 * own statement and transaction runners (error wrapping, deadlock retries, int8 parsing).
 */
export interface PostgresHost {
  readonly schema: string;
  /** With a client inside BEGIN: inserts in that transaction (a savepoint). */
  insertTasks(tasks: NewTask[], tx?: unknown): Promise<InsertOutcome[]>;
  /** One statement on the pool; its rows. */
  rows<R extends pg.QueryResultRow>(what: string, text: string, values?: unknown[]): Promise<R[]>;
  /** `fn` in a transaction on one pooled connection. */
  tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
}

const p = (i: number) => `$${i}`;

class PostgresPart {
  constructor(protected readonly host: PostgresHost) {}

  protected get s(): string {
    return `"${this.host.schema}"`;
  }

  protected q<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[] = []) {
    return this.host.rows<R>(what, text, values);
  }

  protected tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.host.tx(what, fn);
  }
}

/** Flows on PostgreSQL: see `FlowStore`. */
export class PostgresFlows extends PostgresPart implements FlowStore {
  private head(from: string): string {
    return `SELECT f.id, f.name, f.tenant, f.project, f.created_at,
        ${FLOW_STATUS_SQL} AS status, ${FLOW_COMPLETED_AT_SQL} AS completed_at
      FROM ${from} f
      JOIN ${this.s}.flow_tasks ft ON ft.flow_id = f.id
      LEFT JOIN ${this.s}.tasks t ON t.id = ft.task_id`;
  }

  async insertFlow(flow: NewFlow, tasks: NewTask[]): Promise<InsertOutcome[]> {
    return this.tx("flow insert", async (c) => {
      await c.query(
        `INSERT INTO ${this.s}.flows (id, name, tenant, project, created_at) VALUES ($1, $2, $3, $4, $5)`,
        [flow.id, flow.name, flow.tenant, flow.project, flow.createdAt],
      );
      await c.query(
        `INSERT INTO ${this.s}.flow_tasks (flow_id, key, position, task_id, type, depends_on)
         SELECT $1, k, pos - 1, tid, ty, dep
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
           AS x(k, tid, ty, dep, pos)`,
        [
          flow.id,
          flow.tasks.map((t) => t.key),
          flow.tasks.map((t) => t.taskId),
          flow.tasks.map((t) => t.type),
          flow.tasks.map((t) => JSON.stringify(t.dependsOn)),
        ],
      );
      // In our transaction (as a savepoint): the flow and its tasks commit together.
      return this.host.insertTasks(tasks, c);
    });
  }

  async getFlow(id: string): Promise<FlowRow | null> {
    const heads = await this.q<FlowHeadRow>(
      "flow read",
      `${this.head(`${this.s}.flows`)} WHERE f.id = $1
       GROUP BY f.id, f.name, f.tenant, f.project, f.created_at`,
      [id],
    );
    return (await this.withTasks(heads))[0] ?? null;
  }

  async listFlows(filter: FlowFilter): Promise<Page<FlowRow>> {
    const limit = filter.limit ?? 100;
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (cond: string, v: unknown) => {
      params.push(v);
      where.push(cond.replace("?", `$${params.length}`));
    };
    if (filter.tenant !== undefined) add("f.tenant = ?", filter.tenant);
    if (filter.project !== undefined) add("f.project = ?", filter.project);
    if (filter.cursor !== undefined) add("f.id < ?", filter.cursor);
    const cond = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const group = `GROUP BY f.id, f.name, f.tenant, f.project, f.created_at`;
    let sql: string;
    if (filter.status === undefined) {
      // Page the flows first, then derive the status of that page only.
      sql = `${this.head(
        `(SELECT * FROM ${this.s}.flows f ${cond} ORDER BY f.id DESC LIMIT ${limit + 1})`,
      )} ${group} ORDER BY f.id DESC`;
    } else {
      params.push(filter.status);
      sql = `${this.head(`${this.s}.flows`)} ${cond} ${group}
        HAVING (${FLOW_STATUS_SQL}) = $${params.length} ORDER BY f.id DESC LIMIT ${limit + 1}`;
    }
    const heads = await this.q<FlowHeadRow>("flow list", sql, params);
    const more = heads.length > limit;
    const page = more ? heads.slice(0, limit) : heads;
    return { items: await this.withTasks(page), nextCursor: more ? page.at(-1)!.id : null };
  }

  async flowOfTask(taskId: string): Promise<string | null> {
    const rows = await this.q<{ flow_id: string }>(
      "flow lookup",
      `SELECT flow_id FROM ${this.s}.flow_tasks WHERE task_id = $1`,
      [taskId],
    );
    return rows[0]?.flow_id ?? null;
  }

  private async withTasks(heads: FlowHeadRow[]): Promise<FlowRow[]> {
    if (heads.length === 0) return [];
    const tasks = await this.q<FlowTaskRow>(
      "flow read",
      `SELECT ft.flow_id, ft.key, ft.task_id, ft.type, ft.depends_on, t.status
       FROM ${this.s}.flow_tasks ft LEFT JOIN ${this.s}.tasks t ON t.id = ft.task_id
       WHERE ft.flow_id = ANY($1::text[])
       ORDER BY ft.flow_id, ft.position`,
      [heads.map((h) => h.id)],
    );
    return toFlows(heads, tasks);
  }
}

/** Schedules on PostgreSQL: see `ScheduleStore`. */
export class PostgresSchedules extends PostgresPart implements ScheduleStore {
  async upsertSchedule(s: NewSchedule, now: number): Promise<ScheduleRow> {
    const rows = await this.q<ScheduleDbRow>(
      "schedule upsert",
      upsertScheduleSql(`${this.s}.schedules`, p),
      [
        s.name,
        s.cron,
        s.timezone,
        s.type,
        s.workflow,
        s.input,
        s.catchUp,
        s.tenant,
        s.project,
        s.nextRunAt,
        now,
      ],
    );
    return toSchedule(rows[0]!);
  }

  async getSchedule(name: string): Promise<ScheduleRow | null> {
    const rows = await this.q<ScheduleDbRow>(
      "schedule read",
      `SELECT * FROM ${this.s}.schedules WHERE name = $1`,
      [name],
    );
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  async listSchedules(filter: { tenant?: string; project?: string }): Promise<ScheduleRow[]> {
    const rows = await this.q<ScheduleDbRow>(
      "schedule list",
      `SELECT * FROM ${this.s}.schedules
       WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR project = $2)
       ORDER BY name`,
      [filter.tenant ?? null, filter.project ?? null],
    );
    return rows.map(toSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    const rows = await this.q<{ name: string }>(
      "schedule remove",
      `DELETE FROM ${this.s}.schedules WHERE name = $1 RETURNING name`,
      [name],
    );
    return rows.length > 0;
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRow[]> {
    const rows = await this.q<ScheduleDbRow>(
      "schedule due",
      `SELECT * FROM ${this.s}.schedules WHERE next_run_at <= $1
       ORDER BY next_run_at, name LIMIT $2`,
      [Math.floor(now), limit],
    );
    return rows.map(toSchedule);
  }

  async nextScheduleAt(): Promise<number | null> {
    const rows = await this.q<{ at: string | null }>(
      "schedule next",
      `SELECT MIN(next_run_at) AS at FROM ${this.s}.schedules`,
    );
    return rows[0]?.at == null ? null : Number(rows[0].at);
  }

  async fireSchedule(
    f: ScheduleFiring,
  ): Promise<{ fired: boolean; outcome: InsertOutcome | null }> {
    return this.tx("schedule fire", async (c) => {
      const cas = await c.query(fireScheduleSql(`${this.s}.schedules`, p), [
        f.next,
        f.tick,
        f.task?.id ?? null,
        Math.floor(f.now),
        f.name,
        f.expected,
      ]);
      if (cas.rowCount === 0) return { fired: false, outcome: null };
      if (!f.task) return { fired: true, outcome: null };
      const [outcome] = await this.host.insertTasks([f.task], c);
      if (outcome!.id !== f.task.id) {
        await c.query(`UPDATE ${this.s}.schedules SET last_task_id = $1 WHERE name = $2`, [
          outcome!.id,
          f.name,
        ]);
      }
      return { fired: true, outcome: outcome! };
    });
  }
}
