import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CancelledError, Lane, NotQueuedError, type LaneFairness } from "./index.js";

// Property tests of the scheduler. A simulation drives a lane with jobs that finish only when the
// test says so, keeps its own model of what is queued and running, and checks every start
// against the model (the checks run inside `run`, i.e. at the moment the lane starts a job).

const flush = () => new Promise<void>((r) => setImmediate(r));

type Op =
  | { kind: "submit"; caller: number; priority: number }
  | { kind: "finish"; pick: number; fail: boolean }
  | { kind: "cancel"; pick: number }
  | { kind: "concurrency"; n: number };

interface Queued {
  id: string;
  caller: string;
  priority: number;
  seq: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

class Sim {
  readonly lane: Lane;
  readonly started: string[] = [];
  readonly running = new Map<string, { caller: string; settle(ok: boolean): void }>();
  readonly queued = new Map<string, Queued>();
  readonly cancelled = new Set<string>();
  readonly submitted: string[] = [];
  readonly outcomes = new Map<string, Promise<Outcome>>();
  readonly violations: string[] = [];
  readonly callers = new Set<string>();
  /** Grants to other callers since this caller last was backlogged with nothing running. */
  readonly passedOver = new Map<string, number>();
  private seq = 0;

  constructor(
    readonly fairness: LaneFairness,
    concurrency: number,
  ) {
    this.lane = new Lane({
      name: "sim",
      concurrency,
      fairness,
      preemption: { enabled: false },
    });
  }

  runningOf(caller: string): number {
    let n = 0;
    for (const r of this.running.values()) if (r.caller === caller) n++;
    return n;
  }

  submit(caller: string, priority: number): void {
    const id = `j${this.submitted.length}`;
    this.submitted.push(id);
    this.callers.add(caller);
    const q: Queued = { id, caller, priority, seq: this.seq++ };
    this.queued.set(id, q);
    const p = this.lane.submitAndWait({
      id,
      caller,
      priority,
      run: () => this.onStart(q),
    });
    this.outcomes.set(
      id,
      p.then(
        (value) => ({ ok: true, value }),
        (error: unknown) => ({ ok: false, error }),
      ),
    );
  }

  /** Called by the lane when it starts `q`: check the start against the model. */
  private onStart(q: Queued): Promise<unknown> {
    const { lane } = this;
    if (this.running.size >= lane.concurrency) {
      this.violations.push(`${q.id} started with ${this.running.size} running`);
    }
    if (!this.queued.has(q.id)) this.violations.push(`${q.id} started but was not queued`);
    this.queued.delete(q.id);
    // Priority (then FIFO) among the jobs it competes with: its caller's, or all with "none".
    for (const o of this.queued.values()) {
      if (this.fairness === "caller" && o.caller !== q.caller) continue;
      if (o.priority > q.priority || (o.priority === q.priority && o.seq < q.seq)) {
        this.violations.push(`${q.id} (p${q.priority}) started before ${o.id} (p${o.priority})`);
      }
    }
    // Bounded wait: a caller with queued work and nothing running is passed over at most once
    // by each other caller.
    if (this.fairness === "caller") {
      const backlogged = new Set([...this.queued.values()].map((o) => o.caller));
      for (const c of this.callers) {
        if (c === q.caller || !backlogged.has(c) || this.runningOf(c) > 0) {
          this.passedOver.set(c, 0);
          continue;
        }
        const n = (this.passedOver.get(c) ?? 0) + 1;
        this.passedOver.set(c, n);
        if (n > this.callers.size - 1) this.violations.push(`${c} passed over ${n} times`);
      }
    }
    this.started.push(q.id);
    return new Promise((resolve, reject) => {
      this.running.set(q.id, {
        caller: q.caller,
        settle: (ok) => (ok ? resolve(q.id) : reject(new Error(`failed ${q.id}`))),
      });
    });
  }

  finish(pick: number, ok = true): void {
    const ids = [...this.running.keys()];
    if (ids.length === 0) return;
    const id = ids[pick % ids.length]!;
    const r = this.running.get(id)!;
    this.running.delete(id);
    r.settle(ok);
  }

  cancel(pick: number): void {
    if (this.submitted.length === 0) return;
    const id = this.submitted[pick % this.submitted.length]!;
    const before = this.lane.stats();
    if (this.queued.has(id)) {
      this.lane.cancel(id);
      this.queued.delete(id);
      this.cancelled.add(id);
      const after = this.lane.stats();
      if (after.queued !== before.queued - 1 || after.running !== before.running) {
        this.violations.push(`cancel ${id} changed more than that job`);
      }
    } else {
      expect(() => this.lane.cancel(id)).toThrow(NotQueuedError);
      const after = this.lane.stats();
      expect([after.queued, after.running]).toEqual([before.queued, before.running]);
    }
  }

  checkStats(): void {
    const s = this.lane.stats();
    expect(s.running).toBe(this.running.size);
    expect(s.queued).toBe(this.queued.size);
    const perCaller: Record<string, { running: number; queued: number }> = {};
    for (const c of this.callers) {
      const running = this.runningOf(c);
      const queued = [...this.queued.values()].filter((q) => q.caller === c).length;
      if (running + queued > 0) perCaller[c] = { running, queued };
    }
    expect({ ...s.perCaller }).toEqual(perCaller);
  }

  async drain(picks: number[] = []): Promise<void> {
    let i = 0;
    while (this.running.size > 0) {
      this.finish(picks[i++ % Math.max(1, picks.length)] ?? 0);
      await flush();
    }
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("submit" as const),
      caller: fc.nat(3),
      priority: fc.nat(2),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("finish" as const),
      pick: fc.nat(),
      fail: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("concurrency" as const),
      n: fc.integer({ min: 1, max: 4 }),
    }),
  },
);

describe("Lane scheduler properties", () => {
  it("never exceeds concurrency, keeps priority order, does not starve, cancels exactly", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<LaneFairness>("caller", "none"),
        fc.integer({ min: 1, max: 4 }),
        fc.array(opArb, { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (fairness, concurrency, ops, drainPicks) => {
          const sim = new Sim(fairness, concurrency);
          for (const op of ops) {
            if (op.kind === "submit") sim.submit(`c${op.caller}`, op.priority);
            else if (op.kind === "finish") sim.finish(op.pick, !op.fail);
            else if (op.kind === "cancel") sim.cancel(op.pick);
            else sim.lane.setConcurrency(op.n);
            await flush();
            sim.checkStats();
            expect(sim.violations).toEqual([]);
          }
          await sim.drain(drainPicks);
          sim.checkStats();
          expect(sim.violations).toEqual([]);
          // Every job not cancelled ran exactly once; cancelled ones never ran.
          const expected = sim.submitted.filter((id) => !sim.cancelled.has(id));
          expect([...sim.started].sort()).toEqual([...expected].sort());
          for (const id of sim.cancelled) {
            const outcome = await sim.outcomes.get(id)!;
            expect(outcome.ok).toBe(false);
            expect(outcome.ok ? null : outcome.error).toBeInstanceOf(CancelledError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("lets no caller with queued work starve (bounded wait in slots)", async () => {
    // Focused on churn: callers come and go, jobs finish in any order.
    const step = fc.oneof(
      fc.record({
        kind: fc.constant("submit" as const),
        caller: fc.nat(3),
        priority: fc.constant(1),
      }),
      fc.record({ kind: fc.constant("finish" as const), pick: fc.nat(), fail: fc.constant(false) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(step, { minLength: 4, maxLength: 50 }),
        async (concurrency, ops) => {
          const sim = new Sim("caller", concurrency);
          for (const op of ops) {
            if (op.kind === "submit") sim.submit(`c${op.caller}`, op.priority);
            else sim.finish(op.pick);
            await flush();
          }
          await sim.drain();
          expect(sim.violations).toEqual([]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("reports positions that match the start order when nothing arrives later", async () => {
    // Exact cases of the position estimate: one slot, one caller, or no fair share.
    const shape = fc.oneof(
      fc.record({
        fairness: fc.constant<LaneFairness>("caller"),
        concurrency: fc.constant(1),
        callers: fc.constant(4),
      }),
      fc.record({
        fairness: fc.constant<LaneFairness>("caller"),
        concurrency: fc.integer({ min: 1, max: 4 }),
        callers: fc.constant(1),
      }),
      fc.record({
        fairness: fc.constant<LaneFairness>("none"),
        concurrency: fc.integer({ min: 1, max: 4 }),
        callers: fc.constant(4),
      }),
    );
    const step = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("submit" as const),
          caller: fc.nat(3),
          priority: fc.nat(2),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant("finish" as const),
          pick: fc.nat(),
          fail: fc.constant(false),
        }),
      },
    );
    await fc.assert(
      fc.asyncProperty(
        shape,
        fc.array(step, { maxLength: 60 }),
        fc.nat(3),
        fc.nat(2),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        async ({ fairness, concurrency, callers }, before, lastCaller, lastPriority, picks) => {
          const sim = new Sim(fairness, concurrency);
          const caller = (n: number) => `c${n % callers}`;
          for (const op of before) {
            if (op.kind === "submit") sim.submit(caller(op.caller), op.priority);
            else sim.finish(op.pick);
            await flush();
          }
          const startsBefore = sim.started.length;
          const id = `j${sim.submitted.length}`;
          // Use submit (not submitAndWait) for the job under test: it reports the position.
          const { position } = sim.lane.submit({
            id,
            caller: caller(lastCaller),
            priority: lastPriority,
            run: () => new Promise(() => {}),
          });
          const startedNow = sim.lane.stats().running > sim.running.size;
          if (startedNow) {
            expect(position).toBe(0);
            return;
          }
          // Drain in an arbitrary completion order; the job under test never finishes, so stop
          // when it starts.
          let rank = 0;
          let i = 0;
          while (sim.lane.stats().queued > 0) {
            const queuedBefore = sim.lane.stats().queued;
            sim.finish(picks[i++ % picks.length]!);
            await flush();
            const startedCount = sim.started.length - startsBefore;
            const oursStarted = sim.lane.stats().running > sim.running.size;
            if (oursStarted) {
              rank = startedCount + 1;
              break;
            }
            expect(sim.lane.stats().queued).toBeLessThan(queuedBefore);
          }
          expect(position).toBe(rank);
        },
      ),
      { numRuns: 400 },
    );
  });
});
