import type { Notification } from "pg";
import type { Logger } from "../../core/logger.js";

/** The part of a `pg.Client` the notifier uses. */
export interface ListenClient {
  query(text: string): Promise<unknown>;
  on(event: "notification", fn: (msg: Notification) => void): unknown;
  on(event: "error", fn: (err: Error) => void): unknown;
  on(event: "end", fn: () => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/** A dedicated connection and how to give it back (ending it, or returning it to a pool). */
export interface ListenConnection {
  client: ListenClient;
  /** Close the connection; `broken` when it failed (a pool must not reuse it). */
  release(broken: boolean): Promise<void>;
}

export interface NotifierOptions {
  channel: string;
  /** Notifications carrying this payload were sent by this store itself and are ignored. */
  token: string;
  logger: Logger;
  /** Open a dedicated connection (not shared with queries: LISTEN keeps it busy for good). */
  connect(): Promise<ListenConnection>;
  /** While not listening, call the listeners this often so work is still found. */
  pollMs: number;
  /** Reconnect backoff: first delay, doubling up to `reconnectMaxMs`. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How often to check that the listening connection is alive (a silent drop sends nothing). */
  checkMs: number;
}

type State = "idle" | "connecting" | "listening" | "polling" | "closed";

/**
 * Wakes listeners when another connection sends a NOTIFY on the store's channel. LISTEN runs on
 * one dedicated connection, opened when the first listener arrives. When that connection fails
 * (or cannot be opened), the notifier logs it, calls the listeners on a timer instead, and keeps
 * reconnecting with backoff; once LISTEN works again it stops polling and calls the listeners
 * once, since notifications sent during the gap were lost.
 */
export class Notifier {
  private readonly listeners = new Set<() => void>();
  /** Other channels (the event relay): raw payloads, no polling fallback. */
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  private state: State = "idle";
  private conn: ListenConnection | null = null;
  private failures = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private firePending = false;

  constructor(private readonly opts: NotifierOptions) {}

  /** `listening`, `polling` (fallback), `connecting`, `idle` (no listener yet) or `closed`. */
  get status(): State {
    return this.state;
  }

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.state === "idle") void this.connect();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.listeners.delete(listener);
    };
  }

  /**
   * Receive every payload sent on another channel, over the same connection. Nothing is
   * replayed: payloads sent while the connection is down are lost (the drop is logged).
   */
  subscribe(channel: string, handler: (payload: string) => void): () => void {
    let set = this.channels.get(channel);
    if (!set) {
      this.channels.set(channel, (set = new Set()));
      const conn = this.conn;
      if (conn && this.state === "listening") {
        conn.client
          .query(`LISTEN "${channel}"`)
          .catch((err: unknown) => this.dropped(conn, err as Error));
      }
    }
    set.add(handler);
    if (this.state === "idle") void this.connect();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      set.delete(handler);
    };
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    this.listeners.clear();
    this.channels.clear();
    this.stopPolling();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.reconnectTimer = this.checkTimer = null;
    const conn = this.conn;
    this.conn = null;
    if (conn) await this.dispose(conn, false);
  }

  /** Read through a method: `close()` may run during any await. */
  private isClosed(): boolean {
    return this.state === "closed";
  }

  private async connect(): Promise<void> {
    if (this.isClosed()) return;
    const wasPolling = this.state === "polling";
    if (!wasPolling) this.state = "connecting";
    let conn: ListenConnection | null = null;
    try {
      conn = await this.opts.connect();
      const c = conn;
      c.client.on("error", (err) => this.dropped(c, err));
      c.client.on("end", () => this.dropped(c, new Error("connection ended")));
      c.client.on("notification", (msg) => this.received(msg.channel, msg.payload ?? ""));
      if (this.isClosed()) return void (await this.dispose(c, false));
      // Channels are derived from a validated schema name: plain identifiers, quoted.
      for (const channel of [this.opts.channel, ...this.channels.keys()]) {
        await c.client.query(`LISTEN "${channel}"`);
      }
    } catch (err) {
      if (conn) await this.dispose(conn, true);
      if (this.isClosed()) return;
      this.failures++;
      if (this.failures === 1 || this.failures % 10 === 0) {
        this.opts.logger.warn(
          { err, channel: this.opts.channel, pollMs: this.opts.pollMs },
          "PostgreSQL LISTEN connection failed; polling for changes until it reconnects",
        );
      } else {
        this.opts.logger.debug({ err, attempt: this.failures }, "LISTEN reconnect failed");
      }
      this.startPolling();
      this.scheduleReconnect();
      return;
    }
    if (this.isClosed()) return void (await this.dispose(conn, false));
    this.conn = conn;
    this.state = "listening";
    this.stopPolling();
    this.startCheck();
    if (wasPolling || this.failures > 0) {
      this.opts.logger.info(
        { channel: this.opts.channel, after: this.failures },
        "PostgreSQL LISTEN connection restored; polling stopped",
      );
      // Notifications sent while nobody listened are lost: look once now.
      this.schedule();
    }
    this.failures = 0;
  }

  private received(channel: string, payload: string): void {
    if (channel === this.opts.channel) {
      if (payload !== this.opts.token) this.schedule();
      return;
    }
    for (const handler of [...(this.channels.get(channel) ?? [])]) {
      try {
        handler(payload);
      } catch (err) {
        this.opts.logger.error({ err, channel }, "notification handler threw");
      }
    }
  }

  private dropped(conn: ListenConnection, err: Error): void {
    if (conn !== this.conn || this.state === "closed") return;
    this.conn = null;
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = null;
    const relaying = [...this.channels.values()].some((set) => set.size > 0);
    this.opts.logger.warn(
      { err, channel: this.opts.channel, pollMs: this.opts.pollMs },
      relaying
        ? "PostgreSQL LISTEN connection lost; polling for changes until it reconnects (events from other processes sent meanwhile are lost)"
        : "PostgreSQL LISTEN connection lost; polling for changes until it reconnects",
    );
    this.state = "polling";
    this.failures = 1;
    void this.dispose(conn, true);
    this.startPolling();
    this.scheduleReconnect();
    // A change may have happened just before the drop.
    this.schedule();
  }

  private async dispose(conn: ListenConnection, broken: boolean): Promise<void> {
    try {
      await conn.release(broken);
    } catch {
      // The connection is gone either way.
    }
    conn.client.removeAllListeners("notification");
    // Keep an error handler: a late socket error must not become an uncaught exception.
    conn.client.removeAllListeners("error");
    conn.client.on("error", () => {});
  }

  private startPolling(): void {
    if (this.state !== "closed") this.state = "polling";
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.fire(), this.opts.pollMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.state === "closed") return;
    const base = Math.min(
      this.opts.reconnectMaxMs,
      this.opts.reconnectMinMs * 2 ** Math.min(this.failures - 1, 20),
    );
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private startCheck(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = setInterval(() => {
      const conn = this.conn;
      if (!conn) return;
      conn.client.query("SELECT 1").catch((err: unknown) => this.dropped(conn, err as Error));
    }, this.opts.checkMs);
    this.checkTimer.unref();
  }

  /** Coalesce a burst of notifications into one call of each listener. */
  private schedule(): void {
    if (this.firePending) return;
    this.firePending = true;
    setImmediate(() => {
      this.firePending = false;
      this.fire();
    });
  }

  private fire(): void {
    if (this.state === "closed") return;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.opts.logger.error({ err }, "store change listener threw");
      }
    }
  }
}
