import type { TaskStatus } from "../../core/types.js";
export {
  rowToTask,
  toChange,
  toQueuePosition,
  toRef,
  type ChangeRow,
  type TaskRow,
} from "../../store/rows.js";
import type { ClaimedTask, TaskChange } from "../../store/store.js";

/**
 * A row of the `exchange` function, read as an array (no object per row): a settlement outcome
 * (k 0), a dependent cancelled because settlement `ord` failed (k 1), a task claimed into
 * `running` (k 2) or one prefetched into `claimed` (k 3).
 * Positions are the function's output columns; see `X`.
 */
export type ExchangeRow = [
  k: number,
  ord: number | null,
  id: string,
  ok: boolean | null,
  status: TaskStatus,
  type: string,
  tenant: string,
  project: string,
  requestId: string | null,
  workflowId: string | null,
  attempt: number,
  attemptId: string | null,
  input: string | null,
  caller: string | null,
  priority: number,
  labels: string | null,
  metadata: string | null,
  timeoutMs: number | null,
  maxRetries: number,
  crashCount: number,
  backoff: string | null,
  leaseMs: number,
  runAt: number,
  traceContext: string | null,
  error: string | null,
];

/** Column positions in an `ExchangeRow`. */
export const X = {
  k: 0,
  ord: 1,
  id: 2,
  ok: 3,
  status: 4,
} as const;

export const exchangeChange = (r: ExchangeRow): TaskChange => ({
  id: r[2],
  type: r[5],
  tenant: r[6],
  project: r[7],
  requestId: r[8],
  workflowId: r[9],
  attempt: r[10],
  status: r[4],
  error: r[24],
});

export const toClaimed = (r: ExchangeRow): ClaimedTask => ({
  id: r[2],
  type: r[5],
  tenant: r[6],
  project: r[7],
  requestId: r[8],
  workflowId: r[9],
  attempt: r[10],
  attemptId: r[11]!,
  input: r[12],
  caller: r[13],
  priority: r[14],
  labels: r[15],
  metadata: r[16],
  timeoutMs: r[17],
  maxRetries: r[18],
  crashCount: r[19],
  backoff: r[20],
  leaseMs: r[21],
  runAt: r[22],
  traceContext: r[23],
});
