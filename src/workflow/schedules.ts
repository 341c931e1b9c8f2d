import type { TimerHandle } from "../core/clock.js";
import type { Engine } from "../core/engine.js";
import { ValidationError } from "../core/errors.js";
import { assertName, toJson } from "../core/task-request.js";
import type { RunningTask, TaskRequest } from "../core/types.js";
import { CATCH_UP_MODES, type CatchUp, type ScheduleRow } from "../store/flows.js";
import { compileCron, type CronTicker } from "./cron.js";
import { ScheduleNotFoundError } from "./errors.js";

export type { CatchUp } from "../store/flows.js";

export interface ScheduleOptions<I = unknown> {
  /** 5 fields (minute first) or 6 (seconds first); see croner for the syntax. */
  cron: string;
  /** IANA time zone the pattern is read in (DST-aware). Default `"UTC"`. */
  timezone?: string;
  /** Fire a task of this type… */
  type?: string;
  /** …or start a run of this workflow (one of `type` / `workflow`). */
  workflow?: string;
  input?: I;
  /**
   * Ticks missed while no engine ran: `"last"` (default) fires the latest missed tick once;
   * `"skip"` fires none (only a tick at most 60 s late still fires); `"all"` fires each missed
   * tick, oldest first, at most the 100 most recent.
   */
  catchUp?: CatchUp;
  tenant?: string;
  project?: string;
}

/** A schedule as read back. */
export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  type: string | null;
  workflow: string | null;
  input: unknown;
  catchUp: CatchUp;
  tenant: string;
  project: string;
  /** The next tick; `null` when the pattern never fires again. */
  nextRunAt: Date | null;
  /** The last tick fired. */
  lastRunAt: Date | null;
  /** The task the last tick created (for a workflow schedule: the task that starts the run). */
  lastTaskId: string | null;
}

/** The engine's own task type that starts a scheduled workflow run. */
export const SCHEDULED_WORKFLOW_TYPE = "loom.schedule.workflow";
/** `catchUp: "all"` fires at most this many missed ticks (the most recent ones). */
export const MAX_CATCH_UP = 100;
/** `catchUp: "skip"` still fires a tick this late (a slow maintenance pass is not an outage). */
export const SKIP_GRACE_MS = 60_000;
/** Ticks walked one by one before a long outage is handled by search instead. */
const WALK_LIMIT = 250;
/** Schedules fired per pass; the rest go in the next pass. */
const DUE_BATCH = 100;

interface ScheduledWorkflowInput {
  workflow: string;
  input: unknown;
  id: string;
  tenant: string;
  project: string;
}

interface WorkflowStarter {
  start(
    name: string,
    input: unknown,
    opts: { id: string; tenant: string; project: string },
  ): unknown;
}

/**
 * The one place a schedule starts a workflow run: `engine.workflows.start` with the tick's id,
 * so a retried start returns the same run. Runs as the handler of the engine's own
 * `loom.schedule.workflow` task, which the firing transaction inserts.
 */
export async function startScheduledWorkflow(
  engine: Engine,
  job: ScheduledWorkflowInput,
): Promise<{ workflowId: string }> {
  const workflows = (engine as unknown as { workflows?: Partial<WorkflowStarter> }).workflows;
  if (typeof workflows?.start !== "function") {
    throw new Error("workflow schedules require engine.workflows");
  }
  await workflows.start(job.workflow, job.input, {
    id: job.id,
    tenant: job.tenant,
    project: job.project,
  });
  return { workflowId: job.id };
}

const toDate = (ms: number | null) => (ms === null ? null : new Date(ms));

function toSchedule(r: ScheduleRow): Schedule {
  return {
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    type: r.type,
    workflow: r.workflow,
    input: r.input === null ? null : JSON.parse(r.input),
    catchUp: r.catchUp,
    tenant: r.tenant,
    project: r.project,
    nextRunAt: toDate(r.nextRunAt),
    lastRunAt: toDate(r.lastRunAt),
    lastTaskId: r.lastTaskId,
  };
}

/**
 * The latest tick at or before `now`, given a tick `from` ≤ `now`. A binary search over time
 * (croner only looks forward): `next(x - 1) <= now` holds exactly for x up to that tick.
 */
function latestTick(cron: CronTicker, from: number, now: number): number {
  const reaches = (x: number) => {
    const n = cron.next(x - 1);
    return n !== null && n <= now;
  };
  let lo = from;
  let hi = now;
  if (reaches(hi)) lo = hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (reaches(mid)) lo = mid;
    else hi = mid;
  }
  return cron.next(lo - 1)!;
}

/** Walk the ticks from `from` up to `now`, keeping the last `MAX_CATCH_UP`; stops at `WALK_LIMIT`. */
function walk(cron: CronTicker, from: number | null, now: number) {
  const due: number[] = [];
  let t = from;
  for (let walked = 0; t !== null && t <= now && walked < WALK_LIMIT; walked++) {
    due.push(t);
    if (due.length > MAX_CATCH_UP) due.shift();
    t = cron.next(t);
  }
  return { due, reachedNow: t === null || t > now };
}

/** The ticks to fire for a due schedule, and the next tick after them. */
export function plan(
  cron: CronTicker,
  catchUp: CatchUp,
  firstDue: number,
  now: number,
): { fire: number[]; next: number | null } {
  const walked = walk(cron, firstDue, now);
  let due = walked.due;
  if (!walked.reachedNow) {
    // A long outage: find the latest tick by search; for "all", walk the last stretch again,
    // starting about MAX_CATCH_UP periods back (a pattern with uneven gaps may give fewer).
    const period = Math.max(1, (due.at(-1)! - firstDue) / (WALK_LIMIT - 1));
    const latest = latestTick(cron, firstDue, now);
    due = [latest];
    if (catchUp === "all") {
      const start = Math.max(firstDue, latest - MAX_CATCH_UP * period);
      const tail = walk(cron, cron.next(start - 1), now);
      if (tail.reachedNow) due = tail.due;
    }
  }
  const next = cron.next(now);
  const latest = due.at(-1);
  if (latest === undefined) return { fire: [], next };
  if (catchUp === "all") return { fire: due, next };
  if (catchUp === "skip" && now - latest > SKIP_GRACE_MS) return { fire: [], next };
  return { fire: [latest], next };
}

/** `engine.schedules`: list, read and remove schedules. Declare them with `engine.schedule`. */
export class Schedules {
  private readonly tickers = new Map<string, CronTicker>();
  private timer: TimerHandle | null = null;
  private firing: Promise<number> | null = null;
  private stopped = false;

  constructor(private readonly engine: Engine) {
    engine.registerType<ScheduledWorkflowInput, { workflowId: string }>(
      SCHEDULED_WORKFLOW_TYPE,
      (task: RunningTask<ScheduledWorkflowInput>) => startScheduledWorkflow(engine, task.input),
      { crashPolicy: "retry", maxRetries: 5 },
    );
  }

  private ticker(cron: string, timezone: string): CronTicker {
    const key = `${timezone}\u0000${cron}`;
    let t = this.tickers.get(key);
    if (!t) {
      t = compileCron(cron, timezone);
      if (this.tickers.size > 1000) this.tickers.clear();
      this.tickers.set(key, t);
    }
    return t;
  }

  /** Declare or replace a schedule. Bad cron, time zone or target: `ValidationError`. */
  async declare(name: string, opts: ScheduleOptions): Promise<Schedule> {
    assertName(name, "name");
    if (opts === null || typeof opts !== "object")
      throw new ValidationError("must be an object", "options");
    const timezone = opts.timezone ?? "UTC";
    const cron = this.ticker(opts.cron, timezone);
    const catchUp = opts.catchUp ?? "last";
    if (!CATCH_UP_MODES.includes(catchUp))
      throw new ValidationError(`must be one of ${CATCH_UP_MODES.join(", ")}`, "catchUp");
    if ((opts.type === undefined) === (opts.workflow === undefined))
      throw new ValidationError("give exactly one of type and workflow", "type");
    const type = opts.type === undefined ? null : assertName(opts.type, "type");
    const workflow = opts.workflow === undefined ? null : assertName(opts.workflow, "workflow");
    const tenant = opts.tenant === undefined ? "default" : assertName(opts.tenant, "tenant");
    const project = opts.project === undefined ? "default" : assertName(opts.project, "project");
    const input = toJson(opts.input, "input");
    // A type target is checked like a submit now (reserved names, the type's input schema), so a
    // mistake surfaces here rather than at every tick.
    if (type !== null) {
      try {
        await this.engine.prepareTasks([{ type, input: opts.input, tenant, project }]);
      } catch (err) {
        if (err instanceof ValidationError && err.field?.startsWith("tasks[0].")) {
          const field = err.field.slice("tasks[0].".length);
          throw new ValidationError(err.message.slice(err.field.length + 2), field, err.issues);
        }
        throw err;
      }
    }
    const now = this.engine.clock.now();
    const store = await this.engine.storeReady();
    const row = await store.schedules.upsertSchedule(
      {
        name,
        cron: opts.cron,
        timezone,
        type,
        workflow,
        input,
        catchUp,
        tenant,
        project,
        nextRunAt: cron.next(now),
      },
      now,
    );
    return toSchedule(row);
  }

  /** Every schedule (of a tenant / project when given), by name. */
  async list(filter: { tenant?: string; project?: string } = {}): Promise<Schedule[]> {
    const store = await this.engine.storeReady();
    return (await store.schedules.listSchedules(filter)).map(toSchedule);
  }

  /** The schedule, or `ScheduleNotFoundError`. */
  async get(name: string): Promise<Schedule> {
    const store = await this.engine.storeReady();
    const row = await store.schedules.getSchedule(name);
    if (!row) throw new ScheduleNotFoundError(name);
    return toSchedule(row);
  }

  /** Delete a schedule; tasks it already fired are left alone. False when there was none. */
  async remove(name: string): Promise<boolean> {
    const store = await this.engine.storeReady();
    return store.schedules.removeSchedule(name);
  }

  /**
   * Fire every due tick (called by the engine's maintenance loop, and by a timer aligned to the
   * next tick). Returns the ticks this process fired. Never throws: failures are logged.
   */
  fireDue(): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    // One pass at a time per engine; a second caller shares the pass in flight.
    this.firing ??= this.pass().finally(() => {
      this.firing = null;
    });
    return this.firing;
  }

  /** Stop the aligned timer (the engine is closing). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  private async pass(): Promise<number> {
    let fired = 0;
    try {
      const store = await this.engine.storeReady();
      const now = this.engine.clock.now();
      for (const row of await store.schedules.dueSchedules(now, DUE_BATCH)) {
        try {
          fired += await this.fire(row, now);
        } catch (err) {
          this.engine.logger.error({ err, schedule: row.name }, "schedule could not fire");
        }
      }
      await this.arm();
    } catch (err) {
      this.engine.logger.error({ err }, "schedules check failed; will try again");
    }
    return fired;
  }

  /** A timer for the next tick, so a tick fires on time rather than at the next maintenance. */
  private async arm(): Promise<void> {
    const next = await this.engine.store.schedules.nextScheduleAt();
    this.timer?.cancel();
    this.timer = null;
    if (next === null || this.stopped) return;
    const delay = Math.max(0, next - this.engine.clock.now());
    if (delay > 60_000) return; // the maintenance loop will get closer first
    this.timer = this.engine.clock.setTimer(() => {
      this.timer = null;
      void this.fireDue();
    }, delay);
  }

  private async fire(row: ScheduleRow, now: number): Promise<number> {
    const ticker = this.ticker(row.cron, row.timezone);
    const { fire, next } = plan(ticker, row.catchUp, row.nextRunAt!, now);
    let expected = row.nextRunAt!;
    if (fire.length === 0) {
      await this.engine.store.schedules.fireSchedule({
        name: row.name,
        expected,
        next,
        tick: null,
        task: null,
        now,
      });
      this.engine.logger.info(
        { schedule: row.name, skippedUntil: next === null ? null : new Date(next).toISOString() },
        "schedule skipped missed ticks",
      );
      return 0;
    }
    let fired = 0;
    for (let i = 0; i < fire.length; i++) {
      const tick = fire[i]!;
      const after = fire[i + 1] ?? next;
      const task = await this.taskFor(row, tick);
      const out = await this.engine.store.schedules.fireSchedule({
        name: row.name,
        expected,
        next: after,
        tick: task ? tick : null,
        task,
        now,
      });
      // Another process fired this tick first: it owns the rest of this run of ticks too.
      if (!out.fired) return fired;
      expected = after!;
      if (task && out.outcome) {
        this.engine.tasksInserted([task], [out.outcome]);
        fired++;
        this.engine.logger.info(
          { schedule: row.name, tick: new Date(tick).toISOString(), taskId: out.outcome.id },
          "schedule fired",
        );
      }
    }
    return fired;
  }

  /** The task of one tick; `null` (the tick is skipped, logged) when it no longer validates. */
  private async taskFor(row: ScheduleRow, tick: number) {
    const iso = new Date(tick).toISOString();
    const input: unknown = row.input === null ? undefined : JSON.parse(row.input);
    const base = {
      tenant: row.tenant,
      project: row.project,
      idempotencyKey: `loom.schedule:${row.name}:${iso}`,
      labels: { "loom.schedule": row.name },
      metadata: { schedule: row.name, tick: iso },
    };
    const req: TaskRequest =
      row.workflow !== null
        ? {
            ...base,
            type: SCHEDULED_WORKFLOW_TYPE,
            input: {
              workflow: row.workflow,
              input,
              id: `${row.name}:${iso}`,
              tenant: row.tenant,
              project: row.project,
            } satisfies ScheduledWorkflowInput,
          }
        : { ...base, type: row.type!, input };
    try {
      const [task] = await this.engine.prepareTasks([req], { reserved: row.workflow !== null });
      return task!;
    } catch (err) {
      this.engine.logger.error(
        { err, schedule: row.name, tick: iso },
        "schedule tick skipped: its task does not validate",
      );
      return null;
    }
  }
}
