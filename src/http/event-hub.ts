import { randomBytes } from "node:crypto";
import type { Engine } from "../core/engine.js";
import type { LoomEvent } from "../core/types.js";

export interface BufferedEvent {
  /** `<boot>-<seq>`: the boot part tells a resuming client whether this buffer knows its id. */
  id: string;
  seq: number;
  event: LoomEvent;
}

type Listener = (e: BufferedEvent) => void;

/**
 * One engine subscription shared by every SSE client of a server, with a bounded ring buffer of
 * recent events for `Last-Event-ID` resume. It subscribes on first use and keeps buffering until
 * `close()`, so a client that reconnects finds what it missed in between.
 */
export class EventHub {
  private readonly boot = randomBytes(4).toString("hex");
  private readonly ring: (BufferedEvent | undefined)[];
  private seq = 0;
  private readonly listeners = new Set<Listener>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly capacity: number,
  ) {
    this.ring = new Array<BufferedEvent | undefined>(capacity);
  }

  /** Starts buffering (idempotent). */
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.engine.events.subscribe((event) => this.push(event));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.listeners.clear();
  }

  listen(fn: Listener): () => void {
    this.start();
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Events after `lastEventId`, or `"reset"` when the id is not from this buffer (another server
   * run) or is older than what it still holds.
   */
  since(lastEventId: string): BufferedEvent[] | "reset" {
    const m = /^([0-9a-f]+)-(\d+)$/.exec(lastEventId.trim());
    if (!m || m[1] !== this.boot) return "reset";
    const last = Number(m[2]);
    if (last > this.seq) return "reset";
    const oldest = Math.max(1, this.seq - this.capacity + 1);
    if (last + 1 < oldest) return "reset";
    const out: BufferedEvent[] = [];
    for (let s = last + 1; s <= this.seq; s++) {
      const e = this.ring[s % this.capacity];
      if (e && e.seq === s) out.push(e);
    }
    return out;
  }

  private push(event: LoomEvent): void {
    const seq = ++this.seq;
    const entry: BufferedEvent = { id: `${this.boot}-${seq}`, seq, event };
    this.ring[seq % this.capacity] = entry;
    for (const fn of this.listeners) fn(entry);
  }
}
