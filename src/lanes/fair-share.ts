/** What the picker needs to know about a caller. It owns `heapIndex` (-1 when not held). */
export interface FairShareCaller {
  /** Jobs of this caller running now. */
  running: number;
  /** Monotonic stamp of the last time this caller was served (or first seen); lower = longer ago. */
  lastServed: number;
  heapIndex: number;
}

/**
 * Chooses which caller gets the next free slot: the one with the fewest running jobs, ties going
 * to the one served least recently. It holds only callers with queued work, in a binary min-heap
 * keyed by `(running, lastServed)`, so picking is O(1) and each change of a caller's running
 * count or service stamp is O(log callers) — never a scan of the queue.
 *
 * The owner must call `update(c)` after changing `c.running` or `c.lastServed` while `c` is held.
 */
export class FairSharePicker<C extends FairShareCaller> {
  /** Held callers in heap order; exposed read-only for the position estimator. */
  readonly items: C[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The caller that gets the next slot, or undefined when nobody is waiting. */
  peek(): C | undefined {
    return this.items[0];
  }

  has(c: C): boolean {
    return c.heapIndex >= 0;
  }

  add(c: C): void {
    c.heapIndex = this.items.length;
    this.items.push(c);
    this.up(c.heapIndex);
  }

  remove(c: C): void {
    const i = c.heapIndex;
    if (i < 0) return;
    const last = this.items.pop()!;
    c.heapIndex = -1;
    if (last === c) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  /** Restore heap order after `c`'s key changed in either direction. */
  update(c: C): void {
    const i = c.heapIndex;
    if (i < 0) return;
    this.down(i);
    this.up(c.heapIndex);
  }

  clear(): C[] {
    const all = this.items.splice(0);
    for (const c of all) c.heapIndex = -1;
    return all;
  }

  private static before(a: FairShareCaller, b: FairShareCaller): boolean {
    return a.running < b.running || (a.running === b.running && a.lastServed < b.lastServed);
  }

  private up(i: number): void {
    const items = this.items;
    const c = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (!FairSharePicker.before(c, parent)) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = c;
    c.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const c = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      if (r < n && FairSharePicker.before(items[r]!, items[l]!)) m = r;
      const child = items[m]!;
      if (!FairSharePicker.before(child, c)) break;
      items[i] = child;
      child.heapIndex = i;
      i = m;
    }
    items[i] = c;
    c.heapIndex = i;
  }
}
