import { LoomError } from "../core/errors.js";

export class FlowNotFoundError extends LoomError {
  readonly code = "FLOW_NOT_FOUND";
  constructor(readonly flowId: string) {
    super(`flow ${flowId} not found`);
  }
}

export class ScheduleNotFoundError extends LoomError {
  readonly code = "SCHEDULE_NOT_FOUND";
  constructor(readonly scheduleName: string) {
    super(`schedule ${scheduleName} not found`);
  }
}
