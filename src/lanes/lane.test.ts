import { describe, expect, it } from "vitest";
import {
  CancelledError,
  Lane,
  LaneBusyError,
  LaneClosedError,
  NotQueuedError,
  ValidationError,
  type LaneJob,
  type LaneOptions,
} from "./index.js";

// A job that records when it starts and finishes only when the test says so.
interface Run {
  id: string;
  signal: AbortSignal;
  resolve(value?: unknown): void;
  reject(err: unknown): void;
}

class Harness {
  readonly started: string[] = [];
  readonly runs = new Map<string, Run>();
  time = 1_000_000;
  readonly now = () => this.time;

  lane(opts: Partial<LaneOptions> = {}): Lane {
    return new Lane({ name: "test", concurrency: 1, now: this.now, ...opts });
  }

  job(id: string, extra: Omit<LaneJob, "run"> = {}): LaneJob {
    return {
      id,
      ...extra,
      run: (signal) =>
        new Promise((resolve, reject) => {
          this.started.push(id);
          this.runs.set(id, { id, signal, resolve, reject });
        }),
    };
  }

  /** Finish the current run of `id` with `value` and let the lane react. */
  async finish(id: string, value: unknown = id): Promise<void> {
    const run = this.runs.get(id);
    if (run === undefined) throw new Error(`${id} is not running`);
    this.runs.delete(id);
    run.resolve(value);
    await flush();
  }

  async fail(id: string, err: unknown): Promise<void> {
    const run = this.runs.get(id)!;
    this.runs.delete(id);
    run.reject(err);
    await flush();
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

describe("Lane options", () => {
  it("validates the options", () => {
    for (const concurrency of [0, -1, 1.5, Number.NaN, Infinity, "2"]) {
      const err = thrown(() => new Lane({ name: "x", concurrency: concurrency as number }));
      expect(err).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ field: "concurrency" });
    }
    expect(thrown(() => new Lane({ name: "", concurrency: 1 }))).toMatchObject({ field: "name" });
    expect(
      thrown(() => new Lane({ name: "x", concurrency: 1, fairness: "fifo" as "none" })),
    ).toMatchObject({ field: "fairness" });
    expect(
      thrown(() => new Lane({ name: "x", concurrency: 1, preemption: { minRuntimeMs: -1 } })),
    ).toMatchObject({ field: "preemption.minRuntimeMs" });
    expect(
      thrown(
        () => new Lane({ name: "x", concurrency: 1, preemption: { enabled: "yes" as never } }),
      ),
    ).toMatchObject({ field: "preemption.enabled" });
  });

  it("has defaults: fair share by caller, preemption after 30 s", async () => {
    const h = new Harness();
    const lane = h.lane();
    expect(lane.fairness).toBe("caller");
    expect(lane.concurrency).toBe(1);
    lane.submit(h.job("low", { priority: 0, preemptible: true }));
    h.time += 29_999;
    lane.submit(h.job("urgent", { priority: 3 }));
    expect(h.runs.get("low")!.signal.aborted).toBe(false);
    h.time += 1;
    lane.submit(h.job("urgent2", { priority: 3 }));
    expect(h.runs.get("low")!.signal.aborted).toBe(true);
  });
});

describe("submit", () => {
  it("starts jobs at once while slots are free, then queues them with positions", () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 2 });
    expect(lane.submit(h.job("a"))).toEqual({ id: "a", position: 0, etaMs: 0 });
    expect(lane.submit(h.job("b"))).toEqual({ id: "b", position: 0, etaMs: 0 });
    expect(h.started).toEqual(["a", "b"]); // run is called synchronously
    expect(lane.submit(h.job("c")).position).toBe(1);
    expect(lane.submit(h.job("d")).position).toBe(2);
    expect(lane.submit(h.job("e", { priority: 2 })).position).toBe(1);
    expect(h.started).toEqual(["a", "b"]);
    expect(lane.stats()).toMatchObject({ running: 2, queued: 3 });
  });

  it("generates unique ids and refuses an id already queued or running", async () => {
    const h = new Harness();
    const lane = h.lane();
    const run = () => new Promise<void>(() => {});
    const a = lane.submit({ run }).id;
    const b = lane.submit({ run }).id;
    expect(a).not.toBe(b);
    expect(a.startsWith("test-")).toBe(true);
    expect(thrown(() => lane.submit({ id: a, run }))).toMatchObject({ field: "id" });
    expect(thrown(() => lane.submit({ id: b, run }))).toMatchObject({ field: "id" });
    lane.submit(h.job("x"));
    expect(thrown(() => lane.submit(h.job("x")))).toBeInstanceOf(ValidationError);
    // A chosen id that looks generated does not collide with the generator.
    const next = `test-${Number(b.slice(5)) + 1}`;
    lane.submit({ id: next, run });
    expect(lane.submit({ run }).id).not.toBe(next);
  });

  it("validates jobs", () => {
    const lane = new Lane({ name: "v", concurrency: 1 });
    const run = async () => {};
    expect(thrown(() => lane.submit({ run, priority: 1.5 }))).toMatchObject({ field: "priority" });
    expect(thrown(() => lane.submit({ run, caller: 7 as never }))).toMatchObject({
      field: "caller",
    });
    expect(thrown(() => lane.submit({ run, id: "" }))).toMatchObject({ field: "id" });
    expect(thrown(() => lane.submit({} as LaneJob))).toMatchObject({ field: "run" });
    expect(thrown(() => lane.submit({ run }, { maxWaitMs: -1 }))).toMatchObject({
      field: "maxWaitMs",
    });
    expect(lane.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it("orders one caller's jobs by priority (default 1), then FIFO", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("first"));
    lane.submit(h.job("p0", { priority: 0 }));
    lane.submit(h.job("default"));
    lane.submit(h.job("p2", { priority: 2 }));
    lane.submit(h.job("default2", { priority: 1 }));
    lane.submit(h.job("p-5", { priority: -5 }));
    for (const id of ["first", "p2", "default", "default2", "p0"]) await h.finish(id);
    expect(h.started).toEqual(["first", "p2", "default", "default2", "p0", "p-5"]);
  });

  it("survives runs that throw synchronously or return plain values", async () => {
    const lane = new Lane({ name: "sync", concurrency: 1 });
    lane.submit({
      run: () => {
        throw new Error("boom");
      },
    });
    expect(await lane.submitAndWait({ run: () => 42 })).toBe(42);
    await expect(
      lane.submitAndWait({
        run: () => {
          throw new Error("sync");
        },
      }),
    ).rejects.toThrow("sync");
    expect(lane.stats()).toMatchObject({ running: 0, queued: 0 });
  });
});

describe("submitAndWait", () => {
  it("resolves with the result and rejects with the error of run", async () => {
    const lane = new Lane({ name: "w", concurrency: 2 });
    const value: Promise<{ ok: number }> = lane.submitAndWait({ run: async () => ({ ok: 1 }) });
    expect(await value).toEqual({ ok: 1 });
    const err = new Error("nope");
    expect(
      await rejection(
        lane.submitAndWait({
          run: async () => {
            throw err;
          },
        }),
      ),
    ).toBe(err);
  });

  it("removes a queued job whose signal aborts; it never runs", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a"));
    const ac = new AbortController();
    const waiting = lane.submitAndWait(h.job("b"), { signal: ac.signal });
    lane.submit(h.job("c"));
    expect(lane.stats().queued).toBe(2);
    ac.abort(new Error("user went away"));
    const err = await rejection(waiting);
    expect(err).toBeInstanceOf(CancelledError);
    expect(err).toMatchObject({ id: "b", reason: "user went away" });
    expect(lane.stats().queued).toBe(1);
    await h.finish("a");
    expect(h.started).toEqual(["a", "c"]);
    expect(thrown(() => lane.cancel("b"))).toBeInstanceOf(NotQueuedError);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const h = new Harness();
    const lane = h.lane();
    const err = await rejection(lane.submitAndWait(h.job("a"), { signal: AbortSignal.abort() }));
    expect(err).toBeInstanceOf(CancelledError);
    expect(h.started).toEqual([]);
    expect(lane.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it("aborts the run's signal when the caller's signal aborts while it runs", async () => {
    const h = new Harness();
    const lane = h.lane();
    const ac = new AbortController();
    const waiting = rejection(lane.submitAndWait(h.job("a"), { signal: ac.signal }));
    const run = h.runs.get("a")!;
    ac.abort();
    expect(run.signal.aborted).toBe(true);
    expect(run.signal.reason).toBeInstanceOf(CancelledError);
    await h.fail("a", run.signal.reason);
    expect(await waiting).toBeInstanceOf(CancelledError);
    expect(lane.stats().running).toBe(0);
  });

  it("rejects when the lane is closed or the job invalid", async () => {
    const lane = new Lane({ name: "w", concurrency: 1 });
    expect(await rejection(lane.submitAndWait({ run: 5 } as never))).toBeInstanceOf(
      ValidationError,
    );
    await lane.close();
    expect(await rejection(lane.submitAndWait({ run: () => 1 }))).toBeInstanceOf(LaneClosedError);
  });
});

describe("cancel", () => {
  it("removes exactly that queued job", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a"));
    const b = lane.submitAndWait(h.job("b"));
    lane.submit(h.job("c"));
    lane.submit(h.job("d"));
    lane.cancel("c");
    expect(lane.stats().queued).toBe(2);
    expect(lane.submit(h.job("e")).position).toBe(3);
    await h.finish("a");
    await h.finish("b");
    expect(await b).toBe("b");
    await h.finish("d");
    expect(h.started).toEqual(["a", "b", "d", "e"]);
  });

  it("rejects the job's submitAndWait with CancelledError", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a"));
    const b = lane.submitAndWait(h.job("b"));
    lane.cancel("b");
    const err = await rejection(b);
    expect(err).toBeInstanceOf(CancelledError);
    expect(err).toMatchObject({ code: "CANCELLED", id: "b" });
  });

  it("throws NotQueuedError for running, finished and unknown jobs", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a"));
    expect(thrown(() => lane.cancel("a"))).toMatchObject({ id: "a", status: "running" });
    await h.finish("a");
    const err = thrown(() => lane.cancel("a"));
    expect(err).toBeInstanceOf(NotQueuedError);
    expect(err).toMatchObject({ status: undefined });
    expect(thrown(() => lane.cancel("nope"))).toBeInstanceOf(NotQueuedError);
    expect(thrown(() => lane.cancel("test-1"))).toBeInstanceOf(NotQueuedError);
  });

  it("keeps queues compact when many queued jobs are cancelled", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("head"));
    for (let i = 0; i < 500; i++) lane.submit(h.job(`j${i}`));
    for (let i = 0; i < 500; i++) if (i % 7 !== 3) lane.cancel(`j${i}`);
    const left = Array.from({ length: 500 }, (_, i) => `j${i}`).filter((_, i) => i % 7 === 3);
    expect(lane.stats().queued).toBe(left.length);
    await h.finish("head");
    for (const id of left) await h.finish(id);
    expect(h.started).toEqual(["head", ...left]);
  });
});

describe("maxWaitMs and etaMs", () => {
  it("estimates a job's start from observed run times", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 2 });
    lane.submit(h.job("a"));
    lane.submit(h.job("b"));
    h.time += 100;
    await h.finish("a"); // one observation: 100 ms
    lane.submit(h.job("c"));
    // Slots free at 2 per 100 ms; the first one on average half a run away.
    expect(lane.submit(h.job("d")).etaMs).toBe(25);
    expect(lane.submit(h.job("e")).etaMs).toBe(75);
    expect(lane.submit(h.job("f")).etaMs).toBe(125);
    expect(lane.stats().etaMs).toBe(175);
    h.time += 200;
    await h.finish("b"); // EWMA (alpha 0.2): 100 + 0.2 * (300 - 100) = 140; d starts
    expect(lane.stats().etaMs).toBe(175); // position 3: (3 - 0.5) * 140 / 2
  });

  it("uses the age of the oldest running job before any has finished", () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a"));
    h.time += 40;
    expect(lane.submit(h.job("b")).etaMs).toBe(20);
  });

  it("refuses with LaneBusyError, enqueueing nothing, when the ETA exceeds maxWaitMs", async () => {
    const h = new Harness();
    const lane = h.lane();
    expect(lane.submit(h.job("a"), { maxWaitMs: 0 }).position).toBe(0);
    h.time += 1_000;
    await h.finish("a");
    lane.submit(h.job("b"));
    const err = thrown(() => lane.submit(h.job("c"), { maxWaitMs: 400 }));
    expect(err).toBeInstanceOf(LaneBusyError);
    expect(err).toMatchObject({ code: "LANE_BUSY", lane: "test", etaMs: 500, maxWaitMs: 400 });
    expect(lane.stats().queued).toBe(0);
    // Nothing was kept: the same id can be submitted again.
    expect(lane.submit(h.job("c"), { maxWaitMs: 500 })).toMatchObject({ position: 1, etaMs: 500 });
    expect(await rejection(lane.submitAndWait(h.job("d"), { maxWaitMs: 1 }))).toBeInstanceOf(
      LaneBusyError,
    );
    expect(lane.stats().queued).toBe(1);
  });
});

describe("stats", () => {
  it("reports running, queued, per caller and the oldest queued job", async () => {
    const h = new Harness();
    const lane = h.lane({ name: "s", concurrency: 2 });
    expect(lane.stats()).toEqual({
      name: "s",
      concurrency: 2,
      running: 0,
      queued: 0,
      oldestQueuedAt: null,
      throughput1m: 0,
      etaMs: 0,
      perCaller: {},
    });
    lane.submit(h.job("a1", { caller: "alice" }));
    lane.submit(h.job("b1", { caller: "bob" }));
    const queuedAt = h.time;
    lane.submit(h.job("a2", { caller: "alice" }));
    h.time += 10;
    lane.submit(h.job("a3", { caller: "alice", priority: 3 }));
    lane.submit(h.job("n1"));
    const s = lane.stats();
    expect(s).toMatchObject({ running: 2, queued: 3 });
    expect(s.oldestQueuedAt).toEqual(new Date(queuedAt));
    expect(s.perCaller).toEqual({
      alice: { running: 1, queued: 2 },
      bob: { running: 1, queued: 0 },
      "": { running: 0, queued: 1 },
    });
    await h.finish("b1");
    await h.finish("a1");
    expect(lane.stats().perCaller).toEqual({
      alice: { running: 1, queued: 1 },
      "": { running: 1, queued: 0 },
    });
  });

  it("reports any caller name, even __proto__", () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("a", { caller: "__proto__" }));
    lane.submit(h.job("b", { caller: "constructor" }));
    const { perCaller } = lane.stats();
    expect(Object.keys(perCaller)).toEqual(["__proto__", "constructor"]);
    expect(perCaller["__proto__"]).toEqual({ running: 1, queued: 0 });
    expect(JSON.stringify(perCaller)).toBe(
      '{"__proto__":{"running":1,"queued":0},"constructor":{"running":0,"queued":1}}',
    );
  });

  it("counts jobs finished in the last minute", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 3 });
    for (const id of ["a", "b", "c"]) lane.submit(h.job(id));
    await h.finish("a");
    await h.fail("b", new Error("x"));
    expect(lane.stats().throughput1m).toBe(2);
    h.time += 30_000;
    await h.finish("c");
    expect(lane.stats().throughput1m).toBe(3);
    h.time += 31_000;
    expect(lane.stats().throughput1m).toBe(1);
    h.time += 30_000;
    expect(lane.stats().throughput1m).toBe(0);
  });
});

describe("setConcurrency", () => {
  it("starts queued jobs at once when raised", () => {
    const h = new Harness();
    const lane = h.lane();
    for (const id of ["a", "b", "c", "d"]) lane.submit(h.job(id));
    lane.setConcurrency(3);
    expect(h.started).toEqual(["a", "b", "c"]);
    expect(lane.stats()).toMatchObject({ concurrency: 3, running: 3, queued: 1 });
  });

  it("lets running jobs finish when lowered", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 3 });
    for (const id of ["a", "b", "c", "d", "e"]) lane.submit(h.job(id));
    lane.setConcurrency(1);
    expect(lane.stats().running).toBe(3);
    expect(h.runs.get("a")!.signal.aborted).toBe(false);
    await h.finish("a");
    await h.finish("b");
    expect(h.started).toEqual(["a", "b", "c"]);
    await h.finish("c");
    expect(h.started).toEqual(["a", "b", "c", "d"]);
  });

  it("rejects n < 1 and non-integers", () => {
    const lane = new Lane({ name: "c", concurrency: 2 });
    for (const n of [0, -3, 2.5, Number.NaN]) {
      expect(thrown(() => lane.setConcurrency(n))).toBeInstanceOf(ValidationError);
    }
    expect(lane.concurrency).toBe(2);
  });
});

describe("close", () => {
  it("aborts running jobs, rejects queued ones and refuses new ones", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 2 });
    const a = rejection(lane.submitAndWait(h.job("a")));
    lane.submit(h.job("b", { preemptible: true }));
    const c = lane.submitAndWait(h.job("c"));
    lane.submit(h.job("d"));
    let closed = false;
    const closing = lane.close().then(() => (closed = true));
    expect(h.runs.get("a")!.signal.reason).toBeInstanceOf(LaneClosedError);
    expect(h.runs.get("b")!.signal.aborted).toBe(true);
    expect(await rejection(c)).toBeInstanceOf(LaneClosedError);
    expect(thrown(() => lane.submit(h.job("e")))).toBeInstanceOf(LaneClosedError);
    expect(lane.stats()).toMatchObject({ running: 2, queued: 0 });
    await h.fail("a", h.runs.get("a")!.signal.reason);
    expect(await a).toBeInstanceOf(LaneClosedError);
    expect(closed).toBe(false);
    await h.finish("b");
    await closing;
    expect(h.started).toEqual(["a", "b"]);
    expect(lane.close()).toBe(lane.close());
  });
});

describe("fair share", () => {
  it("gives the next slot to the caller with the fewest running jobs", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 3 });
    for (let i = 1; i <= 6; i++) lane.submit(h.job(`heavy${i}`, { caller: "heavy" }));
    expect(lane.submit(h.job("light1", { caller: "light" })).position).toBe(1);
    lane.submit(h.job("light2", { caller: "light" }));
    await h.finish("heavy1"); // heavy 2 running, light 0
    expect(h.started.slice(3)).toEqual(["light1"]);
    await h.finish("heavy2"); // 1 each: heavy was served before light arrived
    expect(h.started.slice(3)).toEqual(["light1", "heavy4"]);
    await h.finish("heavy3"); // 1 each: light was served less recently
    expect(h.started.slice(3)).toEqual(["light1", "heavy4", "light2"]);
  });

  it("breaks ties by serving the least recently served caller", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("z0", { caller: "z" }));
    for (const c of ["a", "b", "c"]) {
      lane.submit(h.job(`${c}1`, { caller: c }));
      lane.submit(h.job(`${c}2`, { caller: c }));
    }
    for (let i = 0; i < 6; i++) await h.finish(h.started.at(-1)!);
    expect(h.started).toEqual(["z0", "a1", "b1", "c1", "a2", "b2", "c2"]);
  });

  it("counts a caller never served as served when it arrived (no starvation by new callers)", async () => {
    const h = new Harness();
    const lane = h.lane();
    lane.submit(h.job("w0", { caller: "waiter" }));
    lane.submit(h.job("w1", { caller: "waiter" }));
    let n = 0;
    // A stream of one-job callers, each arriving while the lane is busy.
    lane.submit(h.job(`o${n}`, { caller: `one-off-${n}` }));
    await h.finish("w0");
    expect(h.started.at(-1)).toBe("w1");
    n++;
    lane.submit(h.job(`o${n}`, { caller: `one-off-${n}` }));
    await h.finish("w1");
    expect(h.started).toEqual(["w0", "w1", "o0"]);
  });

  it('with fairness "none" serves by priority, then FIFO, across callers', async () => {
    const h = new Harness();
    const lane = h.lane({ fairness: "none" });
    lane.submit(h.job("a0", { caller: "a" }));
    lane.submit(h.job("a1", { caller: "a" }));
    lane.submit(h.job("a2", { caller: "a" }));
    expect(lane.submit(h.job("b1", { caller: "b" })).position).toBe(3);
    expect(lane.submit(h.job("b2", { caller: "b", priority: 2 })).position).toBe(1);
    for (const id of ["a0", "b2", "a1", "a2"]) await h.finish(id);
    expect(h.started).toEqual(["a0", "b2", "a1", "a2", "b1"]);
  });
});

describe("preemption", () => {
  const MIN = 1_000;

  it("aborts the oldest eligible job for a higher-priority arrival and re-runs it later", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 2, preemption: { minRuntimeMs: MIN } });
    let runs = 0;
    const low: LaneJob<string> = {
      id: "low",
      priority: 0,
      preemptible: true,
      caller: "batch",
      run: (signal) => {
        runs++;
        h.started.push("low");
        return new Promise<string>((resolve, reject) => {
          h.runs.set("low", { id: "low", signal, resolve: () => resolve(`low#${runs}`), reject });
          signal.addEventListener("abort", () => reject(signal.reason as Error));
        });
      },
    };
    const lowDone = lane.submitAndWait(low);
    h.time += 10;
    lane.submit(h.job("younger", { priority: 0, preemptible: true }));
    h.time += MIN;
    const lowSignal = h.runs.get("low")!.signal;
    expect(lane.submit(h.job("urgent", { priority: 3 }))).toEqual({
      id: "urgent",
      position: 1,
      etaMs: 0,
    });
    expect(lowSignal.aborted).toBe(true);
    expect(lowSignal.reason).toBeInstanceOf(CancelledError);
    expect((lowSignal.reason as Error).message).toMatch(/preempted/);
    expect(h.runs.get("younger")!.signal.aborted).toBe(false);
    await flush(); // low's run rejects; the slot goes to the arrival
    expect(h.started).toEqual(["low", "younger", "urgent"]);
    expect(lane.stats()).toMatchObject({ running: 2, queued: 1, throughput1m: 0 });
    expect(lane.stats().perCaller.batch).toEqual({ running: 0, queued: 1 });
    await h.finish("urgent");
    expect(h.started).toEqual(["low", "younger", "urgent", "low"]);
    await h.finish("low");
    expect(await lowDone).toBe("low#2");
    expect(runs).toBe(2);
  });

  it("only preempts jobs that opted in, ran long enough and have a lower priority", () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 3, preemption: { minRuntimeMs: MIN } });
    lane.submit(h.job("fixed", { priority: 0 }));
    lane.submit(h.job("same", { priority: 2, preemptible: true }));
    h.time += MIN;
    lane.submit(h.job("fresh", { priority: 0, preemptible: true }));
    lane.submit(h.job("arrival", { priority: 2 }));
    for (const id of ["fixed", "same", "fresh"]) expect(h.runs.get(id)!.signal.aborted).toBe(false);
    h.time += MIN - 1;
    lane.submit(h.job("arrival2", { priority: 1 }));
    expect(h.runs.get("fresh")!.signal.aborted).toBe(false);
    h.time += 1;
    lane.submit(h.job("arrival3", { priority: 1 }));
    expect(h.runs.get("fresh")!.signal.aborted).toBe(true);
    // One arrival, one victim: nothing else is left to preempt.
    lane.submit(h.job("arrival4", { priority: 3 }));
    expect(h.runs.get("same")!.signal.aborted).toBe(true);
    lane.submit(h.job("arrival5", { priority: 3 }));
    expect(h.runs.get("fixed")!.signal.aborted).toBe(false);
  });

  it("can be disabled", () => {
    const h = new Harness();
    const lane = h.lane({ preemption: { enabled: false, minRuntimeMs: 0 } });
    lane.submit(h.job("low", { priority: 0, preemptible: true }));
    expect(lane.submit(h.job("high", { priority: 3 })).position).toBe(1);
    expect(h.runs.get("low")!.signal.aborted).toBe(false);
  });

  it("re-queues the preempted job at the front of its caller's queue", async () => {
    const h = new Harness();
    const lane = h.lane({ preemption: { minRuntimeMs: 0 } });
    lane.submit(h.job("v", { priority: 0, preemptible: true }));
    lane.submit(h.job("later", { priority: 0 }));
    lane.submit(h.job("high", { priority: 1 }));
    await h.fail("v", new Error("aborted"));
    expect(h.started).toEqual(["v", "high"]);
    await h.finish("high");
    expect(h.started).toEqual(["v", "high", "v"]);
    await h.finish("v");
    expect(h.started).toEqual(["v", "high", "v", "later"]);
  });

  it("discards the outcome of a preempted run even if it ignores the signal", async () => {
    const h = new Harness();
    const lane = h.lane({ preemption: { minRuntimeMs: 0 } });
    const v = lane.submitAndWait(h.job("v", { priority: 0, preemptible: true }));
    lane.submit(h.job("high", { priority: 2 }));
    await h.finish("v", "stale");
    await h.finish("high");
    await h.finish("v", "fresh");
    expect(await v).toBe("fresh");
  });

  it("a hand-off can be cancelled; closing fails a preempted job instead of re-queueing it", async () => {
    const h = new Harness();
    const lane = h.lane({ concurrency: 2, preemption: { minRuntimeMs: 0 } });
    const v1 = lane.submitAndWait(h.job("v1", { priority: 0, preemptible: true }));
    lane.submit(h.job("v2", { priority: 0, preemptible: true }));
    const high = lane.submitAndWait(h.job("high", { priority: 2 }));
    lane.cancel("high");
    expect(await rejection(high)).toBeInstanceOf(CancelledError);
    await h.fail("v1", new Error("aborted"));
    expect(h.started).toEqual(["v1", "v2", "v1"]);
    lane.submit(h.job("high2", { priority: 2 }));
    expect(h.runs.get("v2")!.signal.aborted).toBe(true);
    const closing = lane.close();
    await h.finish("v2");
    await h.finish("v1");
    await closing;
    expect(await v1).toBe("v1");
    expect(h.started).toEqual(["v1", "v2", "v1"]);
  });
});
