/**
 * `loomkit/testing`: what you need to test your own task handlers fast. A test engine runs on
 * in-memory SQLite with a manual clock, so delays, retries' backoff, timeouts and lease expiry
 * happen when the test says so, not after real waiting.
 *
 * ```ts
 * const t = createTestEngine();
 * t.register("send", handler);
 * const id = await t.submit({ type: "send", input });
 * await t.drain();                       // runs everything that is ready
 * await t.advance(60_000);               // a minute later: due retries and delays run
 * expect(t.eventTypes(id)).toEqual(["task.created", "task.claimed", ...]);
 * await t.close();
 * ```
 */
import { ManualClock } from "../core/clock.js";
import { Engine, type EngineOptions } from "../core/engine.js";
import type { LoomEvent, LoomEventType, Task } from "../core/types.js";
import { SqliteStore } from "../stores/sqlite/sqlite-store.js";
import type { HistoryEvent, HistoryEventKind } from "../workflow/types.js";

export { ManualClock } from "../core/clock.js";

const pause = (ms: number) => new Promise<"busy">((r) => setTimeout(() => r("busy"), ms));

export interface TestEngineOptions extends Omit<EngineOptions, "clock"> {
  /** Where the manual clock starts. Default 2030-01-01T00:00:00Z. */
  startAt?: Date | number;
}

export class TestEngine extends Engine {
  declare readonly clock: ManualClock;
  /** Every event the engine emitted, oldest first. */
  readonly recorded: LoomEvent[] = [];

  constructor(opts: TestEngineOptions = {}) {
    const { startAt, ...rest } = opts;
    super({
      name: "test-engine",
      store: new SqliteStore(":memory:"),
      retention: false,
      ...rest,
      clock: new ManualClock(startAt),
    });
    this.events.subscribe((e) => void this.recorded.push(e));
  }

  /** This engine, so `const { engine, clock, drain } = createTestEngine()` works too. */
  get engine(): this {
    return this;
  }

  /**
   * Start the engine if needed and run until nothing is ready: every task that can run now has
   * run, and every outcome is written. Tasks waiting for a later time stay pending, and handlers
   * still waiting on something else (the manual clock, their signal) are left running once they
   * have been quiet for `quietMs` of real time.
   */
  drain = async (quietMs = 20): Promise<void> => {
    await this.start();
    let seen = -1;
    let quietSince = Date.now();
    let idle: Promise<"idle"> | null = null;
    for (;;) {
      idle ??= this.settle().then(() => "idle" as const);
      const outcome = await Promise.race([idle, pause(5)]);
      const changed = seen !== this.recorded.length;
      seen = this.recorded.length;
      if (outcome === "idle") {
        idle = null;
        // Completing a task can make others ready: stop after a pass that changed nothing.
        if (!changed) return;
        continue;
      }
      if (changed) quietSince = Date.now();
      else if (Date.now() - quietSince >= quietMs) return;
    }
  };

  /** Move the clock forward, rescue expired leases, then drain. */
  advance = async (ms: number): Promise<void> => {
    this.clock.advance(ms);
    await this.maintain();
    await this.drain();
  };

  /** The events of one task (or workflow), oldest first. */
  eventsOf(id: string): LoomEvent[] {
    return this.recorded.filter((e) => e.taskId === id || e.workflowId === id);
  }

  /** Just the event types of one task, oldest first: handy in `toEqual([...])`. */
  eventTypes(id: string): LoomEventType[] {
    return this.eventsOf(id).map((e) => e.type);
  }

  /** A workflow run's history events, oldest first. */
  historyOf = (id: string): Promise<HistoryEvent[]> => this.workflowsRuntime().history(id);

  /** Just the kinds of a workflow run's history events: handy in `toEqual([...])`. */
  historyKinds = async (id: string): Promise<HistoryEventKind[]> =>
    (await this.historyOf(id)).map((e) => e.kind);

  /** Submit, drain, and return the task as it ended up. */
  async run(req: Parameters<Engine["submit"]>[0]): Promise<Task> {
    const id = await this.submit(req);
    await this.drain();
    return this.get(id);
  }
}

/** A fresh engine on in-memory SQLite with a manual clock. Close it after the test. */
export function createTestEngine(opts: TestEngineOptions = {}): TestEngine {
  return new TestEngine(opts);
}
