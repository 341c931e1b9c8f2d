import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Deque } from "./deque.js";
import { FairSharePicker, type FairShareCaller } from "./fair-share.js";
import { BandedQueue } from "./priority-queue.js";
import { RunTimeEstimator, ThroughputWindow } from "./throughput.js";

describe("Deque", () => {
  it("behaves like an array used as a deque", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("push" as const), v: fc.integer() }),
      fc.record({ k: fc.constant("unshift" as const), v: fc.integer() }),
      fc.record({ k: fc.constant("shift" as const) }),
      fc.record({ k: fc.constant("retain" as const), m: fc.integer({ min: 2, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const d = new Deque<number>(2);
        const model: number[] = [];
        for (const o of ops) {
          if (o.k === "push") {
            d.push(o.v);
            model.push(o.v);
          } else if (o.k === "unshift") {
            d.unshift(o.v);
            model.unshift(o.v);
          } else if (o.k === "shift") {
            expect(d.shift()).toBe(model.shift());
          } else {
            d.retain((x) => x % o.m !== 0);
            model.splice(0, model.length, ...model.filter((x) => x % o.m !== 0));
          }
          expect(d.length).toBe(model.length);
        }
        expect(Array.from({ length: d.length }, (_, i) => d.at(i))).toEqual(model);
      }),
    );
  });
});

describe("BandedQueue", () => {
  interface Item {
    priority: number;
    queued: boolean;
    seq: number;
  }

  it("yields by priority, then FIFO (front insertions first), skipping removed items", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("push" as const), p: fc.integer({ min: -2, max: 3 }) }),
      fc.record({ k: fc.constant("unshift" as const), p: fc.integer({ min: -2, max: 3 }) }),
      fc.record({ k: fc.constant("shift" as const) }),
      fc.record({ k: fc.constant("remove" as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const q = new BandedQueue<Item>();
        let model: Item[] = []; // kept sorted in the order items must come out
        let seq = 0;
        const insertAt = (item: Item, front: boolean) => {
          const i = model.findIndex((m) =>
            front ? m.priority <= item.priority : m.priority < item.priority,
          );
          model.splice(i === -1 ? model.length : i, 0, item);
        };
        for (const o of ops) {
          if (o.k === "push" || o.k === "unshift") {
            const item = { priority: o.p, queued: false, seq: seq++ };
            if (o.k === "push") q.push(item);
            else q.unshift(item);
            insertAt(item, o.k === "unshift");
          } else if (o.k === "shift") {
            expect(q.shift()).toBe(model.shift());
          } else if (model.length > 0) {
            const item = model[o.i % model.length]!;
            expect(q.remove(item)).toBe(true);
            expect(q.remove(item)).toBe(false);
            model = model.filter((m) => m !== item);
          }
          expect(q.size).toBe(model.length);
          for (const p of [-2, 0, 1, 3, 4]) {
            expect(q.countAtLeast(p)).toBe(model.filter((m) => m.priority >= p).length);
          }
        }
        expect([...q]).toEqual(model);
        expect(model.every((m) => m.queued)).toBe(true);
        expect(q.clear()).toEqual(model);
        expect(model.some((m) => m.queued)).toBe(false);
      }),
    );
  });
});

describe("FairSharePicker", () => {
  it("always offers the caller with the fewest running jobs, least recently served first", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("add" as const), running: fc.nat(4) }),
      fc.record({ k: fc.constant("serve" as const) }),
      fc.record({ k: fc.constant("finish" as const), i: fc.nat() }),
      fc.record({ k: fc.constant("remove" as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const picker = new FairSharePicker<FairShareCaller>();
        const held: FairShareCaller[] = [];
        let tick = 0;
        for (const o of ops) {
          if (o.k === "add") {
            const c = { running: o.running, lastServed: ++tick, heapIndex: -1 };
            picker.add(c);
            held.push(c);
          } else if (o.k === "serve") {
            const c = picker.peek();
            if (c) {
              c.running++;
              c.lastServed = ++tick;
              picker.update(c);
            }
          } else if (held.length > 0) {
            const c = held[o.i % held.length]!;
            if (o.k === "finish") {
              if (c.running > 0) c.running--;
              picker.update(c);
            } else {
              picker.remove(c);
              held.splice(held.indexOf(c), 1);
              expect(picker.has(c)).toBe(false);
            }
          }
          const best = [...held].sort(
            (a, b) => a.running - b.running || a.lastServed - b.lastServed,
          )[0];
          expect(picker.peek()).toBe(best);
          expect(picker.size).toBe(held.length);
        }
      }),
    );
  });
});

describe("ThroughputWindow and RunTimeEstimator", () => {
  it("count events of the last minute", () => {
    const w = new ThroughputWindow();
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 120; i++) w.record(t0 + i * 1_000);
    expect(w.count(t0 + 119_000)).toBe(60);
    expect(w.count(t0 + 119_999)).toBe(60);
    expect(w.count(t0 + 150_000)).toBe(29);
    expect(w.count(t0 + 500_000)).toBe(0);
  });

  it("average run times with an EWMA seeded by the first observation", () => {
    const e = new RunTimeEstimator(0.5);
    expect(e.estimate(7)).toBe(7);
    e.observe(100);
    expect(e.estimate(7)).toBe(100);
    e.observe(200);
    expect(e.estimate(7)).toBe(150);
  });
});
