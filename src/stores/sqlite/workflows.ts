import type Database from "better-sqlite3";
import { timeOrderedIds } from "../../core/ids.js";
import type { Page } from "../../core/types.js";
import { decodeCursor, encodeCursor } from "../../store/filter.js";
import type { NewTask } from "../../store/store.js";
import {
  WORKFLOW_TASK_TYPE,
  type Checkpoint,
  type HistoryRow,
  type LoadedWorkflow,
  type NewWorkflowRun,
  type SignalRow,
  type WorkflowRunFilter,
  type WorkflowRunRow,
  type WorkflowStatus,
  type WorkflowStore,
} from "../../store/workflows.js";
import { runFilterParts, workflowPageSize } from "../../store/workflow-rows.js";

const TERMINAL = `('completed', 'failed', 'cancelled')`;
const RUN_COLUMNS = `id, name, version, status, input, result, error, state, tenant, project,
  parent_id AS parentId, waiting_for AS waitingFor, history_len AS historyLen, created_at AS createdAt,
  updated_at AS updatedAt, completed_at AS completedAt`;

/**
 * The SQLite side of workflows. Every method runs synchronously inside one transaction (better-
 * sqlite3), so the wake-up a write implies commits with it.
 */
export class SqliteWorkflows implements WorkflowStore {
  private readonly ids = timeOrderedIds();
  private readonly s: ReturnType<SqliteWorkflows["prepare"]>;

  constructor(
    private readonly db: Database.Database,
    private readonly insertTasks: (tasks: NewTask[]) => void,
  ) {
    this.s = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      pullWake: db.prepare(`UPDATE loom_tasks SET run_at = min(run_at, ?), updated_at = ?
        WHERE workflow_id = ? AND type = '${WORKFLOW_TASK_TYPE}' AND status IN ('pending', 'retrying')`),
      // The wake-up task: retry crash policy, many retries and crashes (a replay is idempotent).
      insertWake: db.prepare(`INSERT INTO loom_tasks (id, type, status, input, tenant, project,
        priority, max_retries, crash_policy, max_crashes, lease_ms, run_at, workflow_id, created_at, updated_at)
        SELECT ?, '${WORKFLOW_TASK_TYPE}', 'pending', json_object('workflowId', id), tenant, project,
          1, 1000, 'retry', 1000, lease_ms, ?, id, ?, ?
        FROM loom_workflows WHERE id = ? AND status NOT IN ${TERMINAL}`),
      // A new run's first wake-up, claimed at once by the process that starts the run (attempt 1).
      insertClaimedWake: db.prepare(`INSERT INTO loom_tasks (id, type, status, input, tenant,
        project, priority, max_retries, crash_policy, max_crashes, lease_ms, run_at, workflow_id,
        attempt, attempt_id, engine_name, lease_expires_at, started_at, created_at, updated_at)
        VALUES (?, '${WORKFLOW_TASK_TYPE}', 'running', json_object('workflowId', ?), ?, ?, 1, 1000,
          'retry', 1000, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`),
      completeWake: db.prepare(`UPDATE loom_tasks SET status = 'completed', result = NULL,
        error = NULL, completed_at = ?, updated_at = ?, lease_expires_at = NULL
        WHERE id = ? AND attempt_id = ? AND status IN ('claimed', 'running')`),
      insertRun: db.prepare(`INSERT INTO loom_workflows (id, name, version, status, input, tenant,
        project, parent_id, history_len, lease_ms, created_at, updated_at)
        VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING`),
      getRun: db.prepare(`SELECT ${RUN_COLUMNS} FROM loom_workflows WHERE id = ?`),
      history: db.prepare(`SELECT seq, kind, name, data, at FROM loom_workflow_history
        WHERE workflow_id = ? ORDER BY pos`),
      signals: db.prepare(`SELECT name, data, at FROM loom_workflow_signals
        WHERE workflow_id = ? ORDER BY pos`),
      insertEvent:
        db.prepare(`INSERT INTO loom_workflow_history (workflow_id, pos, seq, kind, name, data, at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      checkpoint: db.prepare(`UPDATE loom_workflows SET status = ?, result = coalesce(?, result),
        error = ?, state = coalesce(?, state), waiting_for = ?, history_len = ?, updated_at = ?,
        completed_at = ? WHERE id = ? AND history_len = ? AND status NOT IN ${TERMINAL}`),
      // Read only when a run ended (RETURNING on every step's update measured ~2× its cost).
      parentOf: db.prepare(`SELECT parent_id FROM loom_workflows WHERE id = ?`).pluck(),
      insertSignal: db.prepare(`INSERT INTO loom_workflow_signals (workflow_id, pos, name, data, at)
        VALUES (?, (SELECT coalesce(max(pos), -1) + 1 FROM loom_workflow_signals WHERE workflow_id = ?), ?, ?, ?)`),
      statusOf: db.prepare(`SELECT status FROM loom_workflows WHERE id = ?`).pluck(),
      openChildren: db
        .prepare(`SELECT id FROM loom_workflows WHERE parent_id = ? AND status NOT IN ${TERMINAL}`)
        .pluck(),
      cancelRun: db.prepare(`UPDATE loom_workflows SET status = 'cancelled', error = ?,
        waiting_for = NULL, history_len = history_len + 1, updated_at = ?, completed_at = ?
        WHERE id = ? AND status NOT IN ${TERMINAL} RETURNING history_len, parent_id`),
    };
  }

  /** Make sure one wake-up of the run is pending, due no later than `at`. */
  wake(workflowId: string, at: number, now: number): void {
    if (this.s.pullWake.run(at, now, workflowId).changes > 0) return;
    this.s.insertWake.run(this.ids(), at, now, now, workflowId);
  }

  async createWorkflowRun(run: NewWorkflowRun) {
    return this.db.transaction(() => this.startNow(run)).immediate();
  }

  /** Create the run (or find it by id) and answer with its row as stored. */
  private startNow(run: NewWorkflowRun): { run: WorkflowRunRow; created: boolean } {
    const created = this.createNow(run);
    return { run: this.s.getRun.get(run.id) as WorkflowRunRow, created };
  }

  private createNow(run: NewWorkflowRun): boolean {
    const s = this.s;
    const n = s.insertRun.run(
      run.id,
      run.name,
      run.version,
      run.input,
      run.tenant,
      run.project,
      run.parentId,
      run.leaseMs,
      run.now,
      run.now,
    ).changes;
    if (n === 0) return false;
    s.insertEvent.run(run.id, 0, 0, "WORKFLOW_STARTED", run.name, run.input, run.now);
    const c = run.claim;
    if (c) {
      s.insertClaimedWake.run(
        c.taskId,
        run.id,
        run.tenant,
        run.project,
        run.leaseMs,
        run.now,
        run.id,
        c.attemptId,
        c.engineName,
        run.now + run.leaseMs,
        run.now,
        run.now,
        run.now,
      );
    } else this.wake(run.id, run.now, run.now);
    return true;
  }

  async getWorkflowRun(id: string) {
    return (this.s.getRun.get(id) as WorkflowRunRow | undefined) ?? null;
  }

  async loadWorkflow(id: string) {
    return this.db.transaction(() => this.loadNow(id))();
  }

  async loadWorkflows(ids: string[]) {
    return this.db.transaction(() => ids.map((id) => this.loadNow(id)))();
  }

  private loadNow(id: string): LoadedWorkflow | null {
    const run = this.s.getRun.get(id) as WorkflowRunRow | undefined;
    if (!run) return null;
    return {
      run,
      history: this.s.history.all(id) as HistoryRow[],
      signals: this.s.signals.all(id) as SignalRow[],
    };
  }

  async listWorkflowRuns(filter: WorkflowRunFilter): Promise<Page<WorkflowRunRow>> {
    const limit = workflowPageSize(filter);
    const params: unknown[] = [];
    const where = runFilterParts(filter, (v) => {
      params.push(v);
      return "?";
    });
    if (filter.cursor) {
      where.push("id < ?");
      params.push(decodeCursor(filter.cursor));
    }
    const sql = `SELECT ${RUN_COLUMNS} FROM loom_workflows
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ${limit + 1}`;
    const rows = this.db.prepare(sql).all(...params) as WorkflowRunRow[];
    const more = rows.length > limit;
    const items = more ? rows.slice(0, limit) : rows;
    return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null };
  }

  async appendCheckpoints(checkpoints: Checkpoint[]): Promise<boolean[]> {
    return this.db.transaction(() => checkpoints.map((cp) => this.applyCheckpoint(cp))).immediate();
  }

  async writeWorkflows(starts: NewWorkflowRun[], checkpoints: Checkpoint[]) {
    return this.db
      .transaction(() => ({
        starts: starts.map((run) => this.startNow(run)),
        checkpoints: checkpoints.map((cp) => this.applyCheckpoint(cp)),
      }))
      .immediate();
  }

  private applyCheckpoint(cp: Checkpoint): boolean {
    const s = this.s;
    const terminal =
      cp.status === "completed" || cp.status === "failed" || cp.status === "cancelled";
    const changed = s.checkpoint.run(
      cp.status,
      cp.result ?? null,
      cp.error ?? null,
      cp.state ?? null,
      cp.waitingFor,
      cp.expectedLen + cp.events.length,
      cp.now,
      terminal ? cp.now : null,
      cp.workflowId,
      cp.expectedLen,
    ).changes;
    if (changed === 0) return false;
    let pos = cp.expectedLen;
    for (const e of cp.events) {
      s.insertEvent.run(cp.workflowId, pos++, e.seq, e.kind, e.name, e.data, e.at);
    }
    if (cp.settle) s.completeWake.run(cp.now, cp.now, cp.settle.taskId, cp.settle.attemptId);
    if (cp.tasks.length) this.insertTasks(cp.tasks);
    for (const child of cp.children) this.createNow(child);
    if (cp.wakeAt !== null) this.wake(cp.workflowId, cp.wakeAt, cp.now);
    if (terminal) {
      const parent = s.parentOf.get(cp.workflowId) as string | null;
      if (parent !== null) this.wake(parent, cp.now, cp.now);
    }
    return true;
  }

  async signalWorkflow(id: string, name: string, data: string | null, now: number) {
    return this.db
      .transaction((): WorkflowStatus | null => {
        const status = this.s.statusOf.get(id) as WorkflowStatus | undefined;
        if (status === undefined) return null;
        if (status === "completed" || status === "failed" || status === "cancelled") return status;
        this.s.insertSignal.run(id, id, name, data, now);
        this.wake(id, now, now);
        return status;
      })
      .immediate();
  }

  async cancelWorkflow(id: string, reason: string, now: number) {
    return this.db
      .transaction((): string[] | null => {
        if (this.s.statusOf.get(id) === undefined) return null;
        const cancelled: string[] = [];
        const visit = (runId: string, why: string) => {
          const row = this.s.cancelRun.get(why, now, now, runId) as
            { history_len: number; parent_id: string | null } | undefined;
          if (!row) return;
          cancelled.push(runId);
          this.s.insertEvent.run(
            runId,
            row.history_len - 1,
            -1,
            "WORKFLOW_CANCELLED",
            null,
            JSON.stringify({ reason: why }),
            now,
          );
          for (const child of this.s.openChildren.all(runId) as string[]) {
            visit(child, `parent ${runId} was cancelled`);
          }
        };
        visit(id, reason);
        // A parent waiting for this run learns it ended.
        const parent = (this.s.getRun.get(id) as WorkflowRunRow).parentId;
        if (cancelled.length && parent) this.wake(parent, now, now);
        return cancelled;
      })
      .immediate();
  }
}
