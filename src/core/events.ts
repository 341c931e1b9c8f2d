import type { Logger } from "./logger.js";
import type { EventFilter, LoomEvent } from "./types.js";

/** A subscriber. Its return value is ignored, except that a rejected promise is logged. */
export type EventListener = (event: LoomEvent) => unknown;

interface Subscription {
  fn: EventListener;
  filter: EventFilter | undefined;
}

/** Whether `e` passes `filter` (no filter: every event). The SSE route filters by the same rule. */
export function eventMatches(filter: EventFilter | undefined, e: LoomEvent): boolean {
  if (!filter) return true;
  if (filter.types && !filter.types.includes(e.type)) return false;
  if (filter.tenant !== undefined && filter.tenant !== e.tenant) return false;
  if (filter.project !== undefined && filter.project !== e.project) return false;
  if (filter.taskId !== undefined && filter.taskId !== e.taskId) return false;
  if (filter.taskType !== undefined && filter.taskType !== e.taskType) return false;
  if (filter.workflowId !== undefined && filter.workflowId !== e.workflowId) return false;
  return true;
}

/**
 * Delivers lifecycle events to subscribers in registration order. A subscriber that throws (or
 * whose promise rejects) is logged and skipped; it never reaches the engine or other subscribers.
 */
export class EventBus {
  private subs: Subscription[] = [];

  constructor(private readonly logger: Logger) {}

  /** True when anyone listens: the engine skips building events nobody would read. */
  get active(): boolean {
    return this.subs.length > 0;
  }

  subscribe(fn: EventListener, filter?: EventFilter): () => void {
    const sub: Subscription = { fn, filter };
    this.subs = [...this.subs, sub];
    return () => {
      this.subs = this.subs.filter((s) => s !== sub);
    };
  }

  emit(event: LoomEvent): void {
    for (const sub of this.subs) {
      if (!eventMatches(sub.filter, event)) continue;
      try {
        const out = sub.fn(event);
        if (out instanceof Promise) out.then(undefined, (err: unknown) => this.report(err, event));
      } catch (err) {
        this.report(err, event);
      }
    }
  }

  private report(err: unknown, event: LoomEvent): void {
    this.logger.error({ err, event: event.type, taskId: event.taskId }, "event subscriber threw");
  }
}
