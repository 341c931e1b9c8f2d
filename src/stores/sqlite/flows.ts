import type Database from "better-sqlite3";
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

/** What the flow and schedule stores need of the SQLite store. */
export interface SqliteHost {
  readonly db: Database.Database;
  insertTasksNow(tasks: NewTask[], tx?: unknown): InsertOutcome[];
}

const q = () => "?";

const HEAD_SELECT = `SELECT f.id, f.name, f.tenant, f.project, f.created_at,
    ${FLOW_STATUS_SQL} AS status, ${FLOW_COMPLETED_AT_SQL} AS completed_at
  FROM FLOWS f
  JOIN loom_flow_tasks ft ON ft.flow_id = f.id
  LEFT JOIN loom_tasks t ON t.id = ft.task_id`;
const GROUP = `GROUP BY f.id, f.name, f.tenant, f.project, f.created_at`;

/** Flows on SQLite: see `FlowStore`. Synchronous underneath, like the rest of the store. */
export class SqliteFlows implements FlowStore {
  constructor(private readonly host: SqliteHost) {}

  async insertFlow(flow: NewFlow, tasks: NewTask[]): Promise<InsertOutcome[]> {
    const db = this.host.db;
    const run = () => {
      db.prepare(
        `INSERT INTO loom_flows (id, name, tenant, project, created_at) VALUES (?, ?, ?, ?, ?)`,
      ).run(flow.id, flow.name, flow.tenant, flow.project, flow.createdAt);
      const link = db.prepare(
        `INSERT INTO loom_flow_tasks (flow_id, key, position, task_id, type, depends_on)
         VALUES (?, ?, ?, ?, ?, ?)`,
      );
      flow.tasks.forEach((t, i) =>
        link.run(flow.id, t.key, i, t.taskId, t.type, JSON.stringify(t.dependsOn)),
      );
      // Nested in our transaction (as a savepoint): the flow and its tasks commit together.
      return this.host.insertTasksNow(tasks, db);
    };
    return db.transaction(run).immediate();
  }

  async getFlow(id: string): Promise<FlowRow | null> {
    const heads = this.host.db
      .prepare(`${HEAD_SELECT.replace("FLOWS", "loom_flows")} WHERE f.id = ? ${GROUP}`)
      .all(id) as FlowHeadRow[];
    return this.withTasks(heads)[0] ?? null;
  }

  async listFlows(filter: FlowFilter): Promise<Page<FlowRow>> {
    const limit = filter.limit ?? 100;
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.tenant !== undefined) {
      where.push("f.tenant = ?");
      params.push(filter.tenant);
    }
    if (filter.project !== undefined) {
      where.push("f.project = ?");
      params.push(filter.project);
    }
    if (filter.cursor !== undefined) {
      where.push("f.id < ?");
      params.push(filter.cursor);
    }
    const cond = where.length ? `WHERE ${where.join(" AND ")}` : "";
    let sql: string;
    if (filter.status === undefined) {
      // Page the flows first, then derive the status of that page only.
      sql = `${HEAD_SELECT.replace(
        "FLOWS",
        `(SELECT * FROM loom_flows f ${cond} ORDER BY f.id DESC LIMIT ${limit + 1})`,
      )} ${GROUP} ORDER BY f.id DESC`;
    } else {
      sql = `${HEAD_SELECT.replace("FLOWS", "loom_flows")} ${cond} ${GROUP}
        HAVING (${FLOW_STATUS_SQL}) = ? ORDER BY f.id DESC LIMIT ${limit + 1}`;
      params.push(filter.status);
    }
    const heads = this.host.db.prepare(sql).all(...params) as FlowHeadRow[];
    const more = heads.length > limit;
    const page = more ? heads.slice(0, limit) : heads;
    return { items: this.withTasks(page), nextCursor: more ? page.at(-1)!.id : null };
  }

  async flowOfTask(taskId: string): Promise<string | null> {
    const row = this.host.db
      .prepare(`SELECT flow_id FROM loom_flow_tasks WHERE task_id = ?`)
      .get(taskId) as { flow_id: string } | undefined;
    return row?.flow_id ?? null;
  }

  private withTasks(heads: FlowHeadRow[]): FlowRow[] {
    if (heads.length === 0) return [];
    const tasks = this.host.db
      .prepare(
        `SELECT ft.flow_id, ft.key, ft.task_id, ft.type, ft.depends_on, t.status
         FROM loom_flow_tasks ft LEFT JOIN loom_tasks t ON t.id = ft.task_id
         WHERE ft.flow_id IN (${heads.map(q).join(", ")})
         ORDER BY ft.flow_id, ft.position`,
      )
      .all(...heads.map((h) => h.id)) as FlowTaskRow[];
    return toFlows(heads, tasks);
  }
}

/** Schedules on SQLite: see `ScheduleStore`. */
export class SqliteSchedules implements ScheduleStore {
  constructor(private readonly host: SqliteHost) {}

  async upsertSchedule(s: NewSchedule, now: number): Promise<ScheduleRow> {
    const row = this.host.db
      .prepare(upsertScheduleSql("loom_schedules", q))
      .get(
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
        now,
      ) as ScheduleDbRow;
    return toSchedule(row);
  }

  async getSchedule(name: string): Promise<ScheduleRow | null> {
    const row = this.host.db.prepare(`SELECT * FROM loom_schedules WHERE name = ?`).get(name) as
      ScheduleDbRow | undefined;
    return row ? toSchedule(row) : null;
  }

  async listSchedules(filter: { tenant?: string; project?: string }): Promise<ScheduleRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.tenant !== undefined) {
      where.push("tenant = ?");
      params.push(filter.tenant);
    }
    if (filter.project !== undefined) {
      where.push("project = ?");
      params.push(filter.project);
    }
    const rows = this.host.db
      .prepare(
        `SELECT * FROM loom_schedules ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY name`,
      )
      .all(...params) as ScheduleDbRow[];
    return rows.map(toSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.host.db.prepare(`DELETE FROM loom_schedules WHERE name = ?`).run(name).changes > 0;
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRow[]> {
    const rows = this.host.db
      .prepare(
        `SELECT * FROM loom_schedules WHERE next_run_at <= ? ORDER BY next_run_at, name LIMIT ?`,
      )
      .all(now, limit) as ScheduleDbRow[];
    return rows.map(toSchedule);
  }

  async nextScheduleAt(): Promise<number | null> {
    const row = this.host.db.prepare(`SELECT MIN(next_run_at) AS at FROM loom_schedules`).get() as {
      at: number | null;
    };
    return row.at;
  }

  async fireSchedule(
    f: ScheduleFiring,
  ): Promise<{ fired: boolean; outcome: InsertOutcome | null }> {
    const db = this.host.db;
    const run = () => {
      const cas = db
        .prepare(fireScheduleSql("loom_schedules", q))
        .run(f.next, f.tick, f.task?.id ?? null, f.now, f.name, f.expected);
      if (cas.changes === 0) return { fired: false, outcome: null };
      if (!f.task) return { fired: true, outcome: null };
      const [outcome] = this.host.insertTasksNow([f.task], db);
      if (outcome!.id !== f.task.id) {
        db.prepare(`UPDATE loom_schedules SET last_task_id = ? WHERE name = ?`).run(
          outcome!.id,
          f.name,
        );
      }
      return { fired: true, outcome: outcome! };
    };
    return db.transaction(run).immediate();
  }
}
