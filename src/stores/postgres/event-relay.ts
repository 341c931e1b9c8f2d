import type { Logger } from "../../core/logger.js";
import type { LoomEvent } from "../../core/types.js";
import type { EventRelay } from "../../store/store.js";

const LISTENER_TTL_MS = 15_000;
const REFRESH_MS = 5_000;
const CHECK_MS = 1_000;
/** NOTIFY payloads must stay under 8,000 bytes. */
const MAX_PAYLOAD_BYTES = 7_800;
/** Longest error or note text relayed; longer ones are cut (the task row keeps the whole text). */
const MAX_TEXT = 2_000;

/** What the relay needs from its store: one statement at a time on the pool, and the LISTENer. */
export interface RelayHost {
  readonly channel: string;
  readonly logger: Logger;
  query<R>(sql: string, values: unknown[]): Promise<R[]>;
  subscribe(channel: string, handler: (payload: string) => void): () => void;
}

interface Packet {
  /** Origin of the events. */
  o: string;
  /** Sequence number of this packet from this store (keeps identical packets distinct). */
  s: number;
  e: LoomEvent[];
}

/**
 * Lifecycle events between processes on one PostgreSQL database, carried by NOTIFY on a channel
 * of their own. A listening process keeps a row in `event_listeners` alive; every store reads
 * that small table once a second in the background, and publishes nothing unless a row of
 * another origin exists. Events are delivered in commit order; NOTIFY keeps no history, so events
 * sent while a listener's connection is down are lost (the store logs the drop).
 */
export class PostgresEventRelay implements EventRelay {
  /** Origins listening now (refreshed in the background once a second). */
  private listeners: string[] = [];
  private refresher: NodeJS.Timeout | null = null;
  private refreshing = false;
  private seq = 0;

  constructor(
    private readonly host: RelayHost,
    private readonly table: string,
  ) {}

  /**
   * Keep the set of listening origins fresh, so `wanted()` answers at once from memory: one
   * tiny indexed read per second, whatever the event rate.
   */
  start(): void {
    if (this.refresher) return;
    void this.refresh();
    this.refresher = setInterval(() => void this.refresh(), CHECK_MS);
    this.refresher.unref();
  }

  stop(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = null;
    this.listeners = [];
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const rows = await this.host.query<{ origin: string }>(
        `SELECT origin FROM ${this.table} WHERE expires_at > $1`,
        [Date.now()],
      );
      this.listeners = rows.map((r) => r.origin);
    } catch {
      this.listeners = [];
    } finally {
      this.refreshing = false;
    }
  }

  wanted(origin: string): boolean {
    for (const o of this.listeners) if (o !== origin) return true;
    return false;
  }

  async publish(origin: string, events: LoomEvent[]): Promise<void> {
    if (events.length === 0) return;
    const payloads: string[] = [];
    let batch: LoomEvent[] = [];
    let size = 0;
    const flush = () => {
      if (batch.length) payloads.push(JSON.stringify({ o: origin, s: ++this.seq, e: batch }));
      batch = [];
      size = 0;
    };
    for (const event of events) {
      const e = fit(event);
      const bytes = Buffer.byteLength(JSON.stringify(e)) + 1;
      if (bytes > MAX_PAYLOAD_BYTES - 100) {
        this.host.logger.warn({ type: e.type, taskId: e.taskId }, "event too large to relay");
        continue;
      }
      if (size + bytes > MAX_PAYLOAD_BYTES - 100) flush();
      batch.push(e);
      size += bytes;
    }
    flush();
    if (payloads.length === 0) return;
    // One statement, one transaction: the packets arrive together and in order.
    await this.host.query(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [
      this.host.channel,
      payloads,
    ]);
  }

  listen(origin: string, fn: (events: LoomEvent[]) => void): () => void {
    let stopped = false;
    const register = () => {
      const now = Date.now();
      return this.host.query(
        `WITH gone AS (DELETE FROM ${this.table} WHERE expires_at < $2)
         INSERT INTO ${this.table} (origin, expires_at) VALUES ($1, $3)
         ON CONFLICT (origin) DO UPDATE SET expires_at = excluded.expires_at`,
        [origin, now, now + LISTENER_TTL_MS],
      );
    };
    const keepAlive = () =>
      register().catch((err: unknown) =>
        this.host.logger.warn({ err }, "could not register for events of other processes"),
      );
    void keepAlive();
    const refresh = setInterval(() => void keepAlive(), REFRESH_MS);
    refresh.unref();
    const unsubscribe = this.host.subscribe(this.host.channel, (payload) => {
      if (stopped) return;
      let packet: Packet;
      try {
        packet = JSON.parse(payload) as Packet;
      } catch {
        return;
      }
      if (packet.o === origin || !Array.isArray(packet.e)) return;
      fn(packet.e.map((e) => ({ ...e, at: new Date(e.at as unknown as string) })));
    });
    return () => {
      if (stopped) return;
      stopped = true;
      clearInterval(refresh);
      unsubscribe();
      this.host.query(`DELETE FROM ${this.table} WHERE origin = $1`, [origin]).catch(() => {
        // Closed already: the row expires on its own.
      });
    };
  }
}

/** Cut long free text so one event fits in a notification. */
function fit(e: LoomEvent): LoomEvent {
  if ((e.error?.length ?? 0) <= MAX_TEXT && (e.note?.length ?? 0) <= MAX_TEXT) return e;
  return {
    ...e,
    ...(e.error !== undefined ? { error: cut(e.error) } : {}),
    ...(e.note !== undefined ? { note: cut(e.note) } : {}),
  };
}

const cut = (text: string): string =>
  text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}… (cut)`;
