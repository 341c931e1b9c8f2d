import type { Logger } from "./logger.js";
import { childLogger } from "./logger.js";
import type { ClaimedTask } from "../store/store.js";
import type { RunningTask, TaskContext } from "./types.js";

const EMPTY: Record<string, never> = Object.freeze({});

/** The task as a handler sees it. Labels and metadata are parsed only if the handler reads them. */
export class RunningTaskView implements RunningTask {
  readonly id: string;
  readonly type: string;
  readonly input: unknown;
  readonly attempt: number;
  readonly attemptId: string;
  readonly tenant: string;
  readonly project: string;
  readonly caller: string | null;
  readonly priority: number;
  readonly requestId: string | null;
  readonly workflowId: string | null;
  private readonly rawLabels: string | null;
  private readonly rawMetadata: string | null;

  constructor(c: ClaimedTask) {
    this.id = c.id;
    this.type = c.type;
    this.input = c.input === null ? undefined : JSON.parse(c.input);
    this.attempt = c.attempt;
    this.attemptId = c.attemptId;
    this.tenant = c.tenant;
    this.project = c.project;
    this.caller = c.caller;
    this.priority = c.priority;
    this.requestId = c.requestId;
    this.workflowId = c.workflowId;
    this.rawLabels = c.labels;
    this.rawMetadata = c.metadata;
  }

  get labels(): Record<string, string> {
    return this.rawLabels === null ? EMPTY : (JSON.parse(this.rawLabels) as Record<string, string>);
  }

  get metadata(): Record<string, unknown> {
    return this.rawMetadata === null
      ? EMPTY
      : (JSON.parse(this.rawMetadata) as Record<string, unknown>);
  }
}

export interface AttemptHost {
  readonly logger: Logger;
  reportProgress(attempt: Attempt, pct: number, note?: string): Promise<void>;
  renewLease(attempt: Attempt): Promise<void>;
}

/**
 * One execution of a claimed task in this process. The AbortController is made only when the
 * handler reads `ctx.signal` or something needs to abort it: most no-op tasks never pay for one.
 */
export class Attempt implements TaskContext {
  readonly task: RunningTaskView;
  readonly startedAt: number;
  /** Set once the attempt's outcome is decided (settled, timed out, cancelled, lost). */
  done = false;
  /**
   * Set by a handler that completed its own task in a store write of its own (a workflow
   * wake-up whose last checkpoint also completes it): the dispatcher then writes nothing.
   */
  completedInStore = false;
  timeoutTimer: { cancel(): void } | null = null;
  private controller: AbortController | null = null;
  private abortReason: unknown = undefined;
  private logger: Logger | null = null;

  constructor(
    readonly claimed: ClaimedTask,
    private readonly host: AttemptHost,
    now: number,
  ) {
    this.task = new RunningTaskView(claimed);
    this.startedAt = now;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get attempt(): number {
    return this.claimed.attempt;
  }

  get attemptId(): string {
    return this.claimed.attemptId;
  }

  get requestId(): string | null {
    return this.claimed.requestId;
  }

  get log(): Logger {
    this.logger ??= childLogger(this.host.logger, {
      taskId: this.claimed.id,
      attempt: this.claimed.attempt,
    });
    return this.logger;
  }

  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  progress(pct: number, note?: string): Promise<void> {
    const p = this.host.reportProgress(this, pct, note);
    // A handler that does not await progress must not crash the process with an unhandled rejection.
    p.catch(() => {});
    return p;
  }

  heartbeat(): Promise<void> {
    const p = this.host.renewLease(this);
    p.catch(() => {});
    return p;
  }
}
