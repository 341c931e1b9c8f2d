import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The ambient request id. `withRequestId(id, fn)` makes every task submitted inside `fn` (and
 * inside handlers of those tasks) carry `id`, so a trace can be followed across tasks.
 *
 * AsyncLocalStorage on Node 20 slows every promise once it is in use, so it is entered only for
 * tasks that carry a request id.
 */
const storage = new AsyncLocalStorage<string>();
let used = false;

export function withRequestId<T>(requestId: string, fn: () => T): T {
  used = true;
  return storage.run(requestId, fn);
}

export function currentRequestId(): string | undefined {
  return used ? storage.getStore() : undefined;
}

/**
 * Runs `fn` with the task's request id as ambient. Tasks without one (the default when nothing
 * set one) run outside AsyncLocalStorage, so they pay nothing for it.
 */
export function runWithRequestId<T>(requestId: string | null, fn: () => T): T {
  if (!requestId) return fn();
  used = true;
  return storage.run(requestId, fn);
}
