import { expect } from "vitest";
import type { Task } from "../../core/types.js";
import type {
  ClaimedTask,
  InsertOutcome,
  NewTask,
  SettleOutcome,
  Settlement,
  Store,
} from "../store.js";

/**
 * A fixed instant the suite counts from. Every time the store sees is passed in explicitly, so
 * the suite never waits for the wall clock (except for cross-connection notifications).
 */
export const T0 = 1_700_000_000_000;

/** What a store must provide to be run through the conformance suite. */
export interface StoreHarness {
  /** A fresh, migrated and EMPTY store with its own database (file, schema…). */
  create(): Promise<Store>;
  /**
   * A second, independent connection to the same database as `store` (already migrated), to
   * test behaviour across connections and processes. Peers are closed by the suite.
   */
  peer?(store: Store): Promise<Store>;
  /** Close `store` and remove its database. Defaults to `store.close()`. */
  destroy?(store: Store): Promise<void>;
  /**
   * For stores with `capabilities.transactionalEnqueue`: open a transaction of the caller's own
   * on `store`'s database, run `body` with its handle (the `tx` that `insertTasks` takes), then
   * commit or roll it back. `body` issues its store calls at once (before awaiting anything), so a
   * synchronous driver can run it inside its transaction.
   */
  transaction?(
    store: Store,
    outcome: "commit" | "rollback",
    body: (tx: unknown) => Promise<unknown>,
  ): Promise<void>;
}

/** The store under test in the current `it`, plus peers opened on its database. */
export interface StoreContext {
  /** The store created for the current test. */
  readonly store: Store;
  /** Whether the harness can open peers (tests that need one are skipped otherwise). */
  readonly hasPeer: boolean;
  /** The harness's `transaction`, if it has one. */
  readonly transaction: StoreHarness["transaction"];
  /** A second connection to the current test's database, closed after the test. */
  peer(): Promise<Store>;
}

export interface ManagedContext extends StoreContext {
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

export function createContext(harness: StoreHarness): ManagedContext {
  let current: Store | null = null;
  let peers: Store[] = [];
  return {
    get store(): Store {
      if (!current) throw new Error("no store: the conformance context is used outside a test");
      return current;
    },
    hasPeer: harness.peer !== undefined,
    transaction: harness.transaction?.bind(harness),
    async peer(): Promise<Store> {
      if (!harness.peer) throw new Error("this harness cannot open peers");
      if (!current) throw new Error("no store: the conformance context is used outside a test");
      const p = await harness.peer(current);
      peers.push(p);
      return p;
    },
    async setup(): Promise<void> {
      current = await harness.create();
      peers = [];
    },
    async teardown(): Promise<void> {
      const open = peers;
      const store = current;
      peers = [];
      current = null;
      for (const p of open) await p.close();
      if (store) {
        if (harness.destroy) await harness.destroy(store);
        else await store.close();
      }
    },
  };
}

let seq = 0;

/** Ids that sort in creation order (like the engine's time-ordered ids). */
export function nextId(prefix = "task"): string {
  seq++;
  return `${prefix}-${String(seq).padStart(8, "0")}`;
}

/** A valid `NewTask` with defaults for every field; override what the test cares about. */
export function newTask(fields: Partial<NewTask> = {}): NewTask {
  return {
    id: nextId(),
    type: "t",
    input: null,
    tenant: "default",
    project: "default",
    caller: null,
    priority: 1,
    lane: null,
    labels: null,
    metadata: null,
    maxRetries: 2,
    backoff: null,
    crashPolicy: "fail",
    maxCrashes: 3,
    leaseMs: 30_000,
    timeoutMs: null,
    runAt: T0,
    dependsOn: [],
    idempotencyKey: null,
    requestId: null,
    workflowId: null,
    traceContext: null,
    createdAt: T0,
    ...fields,
  };
}

/** Insert tasks and expect every one of them to be created. */
export async function insert(store: Store, ...tasks: NewTask[]): Promise<InsertOutcome[]> {
  const outcomes = await store.insertTasks(tasks);
  expect(outcomes.map((o) => o.id)).toEqual(tasks.map((t) => t.id));
  expect(outcomes.every((o) => o.created)).toBe(true);
  return outcomes;
}

/** Claim through `exchange` (no settlements). */
export async function claim(
  store: Store,
  now: number,
  opts: { types?: string[]; limit?: number; engineName?: string } = {},
): Promise<ClaimedTask[]> {
  const out = await store.exchange({
    now,
    settle: [],
    claim: {
      engineName: opts.engineName ?? "engine-a",
      types: opts.types ?? ["t"],
      limit: opts.limit ?? 100,
    },
  });
  expect(out.settled).toEqual([]);
  return out.claimed;
}

/** Claim exactly one task through `exchange` and return it. */
export async function claimOne(
  store: Store,
  now: number,
  opts: { types?: string[]; engineName?: string } = {},
): Promise<ClaimedTask> {
  const claimed = await claim(store, now, { ...opts, limit: 1 });
  expect(claimed).toHaveLength(1);
  return claimed[0]!;
}

/** Settle through `exchange` (no claim); outcomes in the order given. */
export async function settle(
  store: Store,
  now: number,
  ...items: Settlement[]
): Promise<SettleOutcome[]> {
  const out = await store.exchange({ now, settle: items, claim: null });
  expect(out.claimed).toEqual([]);
  expect(out.settled).toHaveLength(items.length);
  return out.settled;
}

export function complete(c: { id: string; attemptId: string }, result: unknown = null): Settlement {
  return {
    kind: "complete",
    id: c.id,
    attemptId: c.attemptId,
    result: result === null ? null : JSON.stringify(result),
  };
}

export function fail(
  c: { id: string; attemptId: string },
  error: string,
  retryAt: number | null = null,
): Settlement {
  return { kind: "fail", id: c.id, attemptId: c.attemptId, error, retryAt };
}

export function release(c: { id: string; attemptId: string }): Settlement {
  return { kind: "release", id: c.id, attemptId: c.attemptId };
}

/** The task, which must exist. */
export async function mustGet(store: Store, id: string): Promise<Task> {
  const task = await store.getTask(id);
  expect(task, `task ${id} should exist`).not.toBeNull();
  return task!;
}

export async function statusOf(store: Store, id: string): Promise<string | null> {
  return (await store.getTask(id))?.status ?? null;
}

/** JSON text as a value (or `null`). */
export function parse(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

export const sorted = (ids: readonly string[]): string[] => [...ids].sort();

/** Resolve once `check` is true, polling every few ms; reject after `timeoutMs`. */
export async function eventually(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
