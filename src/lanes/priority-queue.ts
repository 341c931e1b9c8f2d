import { Deque } from "./deque.js";

/** What the queue needs from an item. It owns `queued`: true exactly while the item is held. */
export interface Queueable {
  readonly priority: number;
  queued: boolean;
}

interface Band<T> {
  priority: number;
  items: Deque<T>;
  /** Items in `items` that are still queued. */
  live: number;
  /** Removed items still sitting in `items` (skipped by `shift`, compacted when they pile up). */
  dead: number;
}

/**
 * A priority queue made of FIFO bands, one per distinct priority (higher first). Priorities are
 * few in practice (0–3 by convention), so finding a band is a scan of a tiny array and every
 * operation is O(1) in the number of queued items: `push`/`unshift` append to a ring buffer,
 * `shift` pops the head of the highest band, and `remove` only marks the item (tombstone) and
 * compacts a band when its tombstones outnumber its live items.
 */
export class BandedQueue<T extends Queueable> {
  /** Bands with live items, by priority descending. */
  private bands: Band<T>[] = [];
  /** One empty band kept for reuse, so a queue that keeps draining and refilling does not allocate. */
  private spare: Band<T> | null = null;
  /** Live items. */
  size = 0;

  /** Add at the back of the item's priority band. */
  push(item: T): void {
    const band = this.band(item.priority);
    band.items.push(item);
    band.live++;
    this.size++;
    item.queued = true;
  }

  /** Add at the front of the item's priority band (ahead of its equals, behind higher priorities). */
  unshift(item: T): void {
    const band = this.band(item.priority);
    band.items.unshift(item);
    band.live++;
    this.size++;
    item.queued = true;
  }

  /** Take the first item of the highest priority, or undefined when empty. */
  shift(): T | undefined {
    const band = this.bands[0];
    if (band === undefined) return undefined;
    let item = band.items.shift();
    while (item !== undefined && !item.queued) {
      band.dead--;
      item = band.items.shift();
    }
    if (item === undefined) return undefined; // unreachable: a band in `bands` has live items
    item.queued = false;
    this.size--;
    if (--band.live === 0) this.drop(0);
    return item;
  }

  /** Take `item` out of the queue. Returns false when it was not queued here. */
  remove(item: T): boolean {
    if (!item.queued) return false;
    const i = this.indexOf(item.priority);
    const band = this.bands[i];
    if (band === undefined) return false;
    item.queued = false;
    this.size--;
    if (--band.live === 0) {
      this.drop(i);
    } else if (++band.dead > 32 && band.dead > band.live) {
      band.items.retain((x) => x.queued);
      band.dead = 0;
    }
    return true;
  }

  /** Live items that would be taken before a new item of priority `p` pushed now. */
  countAtLeast(p: number): number {
    let n = 0;
    for (const band of this.bands) {
      if (band.priority < p) break;
      n += band.live;
    }
    return n;
  }

  /** Every live item, highest priority first, FIFO within a band. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const band of this.bands.slice()) {
      for (let i = 0; i < band.items.length; i++) {
        const item = band.items.at(i);
        if (item !== undefined && item.queued) yield item;
      }
    }
  }

  /**
   * The live items at the head of each band up to and including the first one not flagged by
   * `isException` (used to find the oldest queued item: bands are in arrival order except for
   * items put back at the front).
   */
  *heads(isException: (item: T) => boolean): IterableIterator<T> {
    for (const band of this.bands) {
      for (let i = 0; i < band.items.length; i++) {
        const item = band.items.at(i);
        if (item === undefined || !item.queued) continue;
        yield item;
        if (!isException(item)) break;
      }
    }
  }

  /** Drop everything (the items' `queued` flags are cleared). */
  clear(): T[] {
    const all = [...this];
    for (const item of all) item.queued = false;
    this.bands = [];
    this.size = 0;
    return all;
  }

  private indexOf(priority: number): number {
    const bands = this.bands;
    for (let i = 0; i < bands.length; i++) if (bands[i]!.priority === priority) return i;
    return -1;
  }

  private band(priority: number): Band<T> {
    const bands = this.bands;
    let i = 0;
    for (; i < bands.length; i++) {
      const b = bands[i]!;
      if (b.priority === priority) return b;
      if (b.priority < priority) break;
    }
    let band = this.spare;
    if (band !== null) {
      this.spare = null;
      band.priority = priority;
    } else {
      band = { priority, items: new Deque<T>(), live: 0, dead: 0 };
    }
    if (i === bands.length) bands.push(band);
    else bands.splice(i, 0, band);
    return band;
  }

  private drop(i: number): void {
    const [band] = this.bands.splice(i, 1);
    if (band === undefined) return;
    if (band.dead > 0 || band.items.length > 0) {
      band.items.retain(() => false);
      band.dead = 0;
    }
    band.live = 0;
    this.spare = band;
  }
}
