/**
 * A growable ring buffer: O(1) `push`, `shift` and `unshift`, no per-item allocation. The lane keeps
 * one per priority band, so a long queue never pays for `Array.prototype.shift` or for splicing.
 */
export class Deque<T> {
  private buf: (T | undefined)[];
  private head = 0;
  private mask: number;
  /** Items held (including any tombstones the owner has not yet skipped). */
  length = 0;

  constructor(capacity = 8) {
    let cap = 8;
    while (cap < capacity) cap *= 2;
    this.buf = new Array<T | undefined>(cap);
    this.mask = cap - 1;
  }

  push(item: T): void {
    if (this.length > this.mask) this.grow();
    this.buf[(this.head + this.length) & this.mask] = item;
    this.length++;
  }

  unshift(item: T): void {
    if (this.length > this.mask) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.buf[this.head] = item;
    this.length++;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.length--;
    return item;
  }

  /** The i-th item from the front (0 = the next `shift`), or undefined past the end. */
  at(i: number): T | undefined {
    return i < this.length ? this.buf[(this.head + i) & this.mask] : undefined;
  }

  /** Keep only the items `keep` accepts, in order. O(length). */
  retain(keep: (item: T) => boolean): void {
    let w = 0;
    for (let r = 0; r < this.length; r++) {
      const item = this.buf[(this.head + r) & this.mask] as T;
      if (keep(item)) this.buf[(this.head + w++) & this.mask] = item;
    }
    for (let i = w; i < this.length; i++) this.buf[(this.head + i) & this.mask] = undefined;
    this.length = w;
  }

  private grow(): void {
    const old = this.buf;
    const cap = old.length * 2;
    const next = new Array<T | undefined>(cap);
    for (let i = 0; i < this.length; i++) next[i] = old[(this.head + i) & this.mask];
    this.buf = next;
    this.head = 0;
    this.mask = cap - 1;
  }
}
