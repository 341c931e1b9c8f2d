/**
 * `loomkit/lanes`: the in-memory lane — a bounded pool with fair share between callers,
 * priorities, queue positions and ETAs, preemption and a maximum wait. See docs/lanes.md.
 */
export { Lane } from "./lane.js";
export type {
  LaneCallerStats,
  LaneFairness,
  LaneJob,
  LaneOptions,
  LanePreemptionOptions,
  LaneStats,
  LaneSubmitAndWaitOptions,
  LaneSubmitOptions,
  LaneSubmitResult,
} from "./lane.js";
export {
  CancelledError,
  LaneBusyError,
  LaneClosedError,
  NotQueuedError,
  ValidationError,
} from "../core/errors.js";
