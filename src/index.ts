export { Engine } from "./core/engine.js";
export { createEngine } from "./create-engine.js";
export type {
  EngineOptions,
  CloseOptions,
  AgentClaimOptions,
  PurgeOptions,
  RetentionOptions,
} from "./core/engine.js";
export type { EngineStats, StatsOptions } from "./core/stats.js";
export type { EngineLane, EngineLaneOptions, EngineLaneStats } from "./core/engine-lanes.js";
export { sqlite, SqliteStore } from "./stores/sqlite/sqlite-store.js";
export type { SqliteStoreOptions } from "./stores/sqlite/sqlite-store.js";
export { postgres, PostgresStore } from "./stores/postgres/postgres-store.js";
export type { PostgresStoreOptions } from "./stores/postgres/postgres-store.js";
export * from "./core/errors.js";
export * from "./core/types.js";
export { withRequestId, currentRequestId } from "./core/request-context.js";
export { systemClock, ManualClock } from "./core/clock.js";
export type { Clock, TimerHandle } from "./core/clock.js";
export { silentLogger } from "./core/logger.js";
export type { Logger, LogFn } from "./core/logger.js";
export { timeOrderedIds } from "./core/ids.js";
export type { IdGenerator } from "./core/ids.js";
export { redact } from "./core/redact.js";
export { backoffDelay, DEFAULT_BACKOFF } from "./core/backoff.js";
export {
  checks,
  composeGate,
  defaultChecks,
  emptyResult,
  rateLimited,
  thrashing,
  isEmptyResult,
  jaccard,
} from "./core/gate.js";
export type { Store, StoreCapabilities } from "./store/store.js";
export { pipeline, fanOut, Flows } from "./workflow/flows.js";
export type {
  Flow,
  FlowDefinition,
  FlowListFilter,
  FlowScope,
  FlowStatus,
  FlowStep,
  FlowTask,
  FlowTaskDefinition,
} from "./workflow/flows.js";
export { Schedules, SCHEDULED_WORKFLOW_TYPE, MAX_CATCH_UP } from "./workflow/schedules.js";
export type { CatchUp, Schedule, ScheduleOptions } from "./workflow/schedules.js";
export { FlowNotFoundError, ScheduleNotFoundError } from "./workflow/errors.js";
export type {
  ActivityOptions,
  HistoryEvent,
  HistoryEventKind,
  StartOptions,
  StepOptions,
  WaitingFor,
  WorkflowContext,
  WorkflowDefinition,
  WorkflowHandle,
  WorkflowListFilter,
  WorkflowOptions,
  WorkflowRun,
  WorkflowsApi,
  WorkflowState,
  WorkflowStatus,
  WorkflowVersion,
} from "./workflow/types.js";
export type { WorkflowEngineOptions } from "./workflow/runtime.js";
