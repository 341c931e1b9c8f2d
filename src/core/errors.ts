/**
 * Every error Loom throws on purpose is a `LoomError` with a stable `code` (safe to switch on and
 * to send over HTTP) and the fields that explain it. Messages are for people; codes are for code.
 */
export abstract class LoomError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends LoomError {
  readonly code = "VALIDATION";
  constructor(
    message: string,
    /** Dotted path of the offending field, e.g. `input` or `tasks[2].priority`. */
    readonly field?: string,
    readonly issues: readonly { path: string; message: string }[] = [],
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

export class TaskNotFoundError extends LoomError {
  readonly code = "TASK_NOT_FOUND";
  constructor(readonly taskId: string) {
    super(`task ${taskId} not found`);
  }
}

export class InvalidTransitionError extends LoomError {
  readonly code = "INVALID_TRANSITION";
  constructor(
    readonly id: string,
    readonly from: string,
    readonly to: string,
    detail?: string,
  ) {
    super(`cannot move ${id} from ${from} to ${to}${detail ? `: ${detail}` : ""}`);
  }
}

export class AlreadyClaimedError extends LoomError {
  readonly code = "ALREADY_CLAIMED";
  constructor(
    readonly taskId: string,
    readonly holder?: string,
  ) {
    super(`task ${taskId} is already claimed${holder ? ` by ${holder}` : ""}`);
  }
}

/** A heartbeat, progress report or completion from an attempt that no longer owns the task. */
export class StaleAttemptError extends LoomError {
  readonly code = "STALE_ATTEMPT";
  constructor(
    readonly taskId: string,
    readonly attemptId: string,
    readonly currentStatus?: string,
  ) {
    super(
      `attempt ${attemptId} no longer owns task ${taskId}` +
        (currentStatus ? ` (task is ${currentStatus})` : ""),
    );
  }
}

export class EngineClosedError extends LoomError {
  readonly code = "ENGINE_CLOSED";
  constructor(readonly engineName: string) {
    super(`engine ${engineName} is closed`);
  }
}

export class LaneBusyError extends LoomError {
  readonly code = "LANE_BUSY";
  constructor(
    readonly lane: string,
    readonly etaMs: number,
    readonly maxWaitMs: number,
    /** Set when the lane refused for another reason than the wait (e.g. its `maxQueue`). */
    opts: { reason?: string } = {},
  ) {
    super(
      opts.reason
        ? `lane ${lane} is busy: ${opts.reason}`
        : `lane ${lane} is busy: expected wait ${Math.round(etaMs)} ms exceeds ${maxWaitMs} ms`,
    );
  }
}

export class LaneClosedError extends LoomError {
  readonly code = "LANE_CLOSED";
  constructor(readonly lane: string) {
    super(`lane ${lane} is closed`);
  }
}

export class NotQueuedError extends LoomError {
  readonly code = "NOT_QUEUED";
  constructor(
    readonly id: string,
    readonly status?: string,
  ) {
    super(`${id} is not queued${status ? ` (it is ${status})` : ""}`);
  }
}

export class CancelledError extends LoomError {
  readonly code = "CANCELLED";
  constructor(
    readonly id?: string,
    readonly reason?: string,
  ) {
    super(`${id ? `${id} ` : ""}cancelled${reason ? `: ${reason}` : ""}`);
  }
}

export class WaitTimeoutError extends LoomError {
  readonly code = "WAIT_TIMEOUT";
  constructor(
    readonly id: string,
    readonly timeoutMs: number,
  ) {
    super(`timed out after ${timeoutMs} ms waiting for ${id}`);
  }
}

/** Raised inside a handler's attempt when its `timeoutMs` elapses (the signal's abort reason). */
export class TaskTimeoutError extends LoomError {
  readonly code = "TASK_TIMEOUT";
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`task ${taskId} timed out after ${timeoutMs} ms`);
  }
}

export class WorkflowNotFoundError extends LoomError {
  readonly code = "WORKFLOW_NOT_FOUND";
  constructor(readonly workflowId: string) {
    super(`workflow ${workflowId} not found`);
  }
}

export class WorkflowStillRunningError extends LoomError {
  readonly code = "WORKFLOW_STILL_RUNNING";
  constructor(readonly workflowId: string) {
    super(`workflow ${workflowId} is still running`);
  }
}

export class WorkflowExecutionError extends LoomError {
  readonly code = "WORKFLOW_EXECUTION";
  constructor(
    readonly workflowId: string,
    readonly detail: string,
  ) {
    super(`workflow ${workflowId} failed: ${detail}`);
  }
}

export class ActivityFailedError extends LoomError {
  readonly code = "ACTIVITY_FAILED";
  constructor(
    readonly activityType: string,
    readonly taskId: string,
    readonly detail: string,
  ) {
    super(`activity ${activityType} (${taskId}) failed: ${detail}`);
  }
}

export class NonDeterministicWorkflowError extends LoomError {
  readonly code = "NON_DETERMINISTIC";
  constructor(
    readonly workflowId: string,
    readonly seq: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `workflow ${workflowId} is not deterministic at seq ${seq}: history has ${expected}, code called ${actual}`,
    );
  }
}

/** Thrown by a store when the database itself failed (connection, disk, corruption). */
export class StoreError extends LoomError {
  readonly code = "STORE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isLoomError(err: unknown): err is LoomError {
  return err instanceof LoomError;
}
