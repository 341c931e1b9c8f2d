import type Database from "better-sqlite3";
import type { LoomEvent } from "../../core/types.js";
import type { EventRelay } from "../../store/store.js";

const LISTENER_TTL_MS = 15_000;
const REFRESH_MS = 5_000;
const KEEP_EVENTS = 10_000;

/**
 * Events between processes sharing one SQLite file. A listening process keeps a row in
 * `loom_event_listeners` alive and reads `loom_events` when the file changes; a publishing
 * process writes there only while such a row of another origin exists (checked once a second),
 * so the relay costs one tiny read per second when nobody listens. The log keeps the last
 * 10,000 events; a listener that falls further behind skips ahead.
 */
export class SqliteEventRelay implements EventRelay {
  private remoteListeners = false;
  private checkedAt = 0;
  private published = 0;
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    private readonly onChange: (fn: () => void) => () => void,
  ) {
    this.stmts = {
      anyOther: db
        .prepare(`SELECT 1 FROM loom_event_listeners WHERE origin != ? AND expires_at > ? LIMIT 1`)
        .pluck(),
      insert: db.prepare(`INSERT INTO loom_events (origin, body) VALUES (?, ?)`),
      trim: db.prepare(
        `DELETE FROM loom_events WHERE seq <= (SELECT max(seq) FROM loom_events) - ?`,
      ),
      upsertListener:
        db.prepare(`INSERT INTO loom_event_listeners (origin, expires_at) VALUES (?, ?)
        ON CONFLICT (origin) DO UPDATE SET expires_at = excluded.expires_at`),
      dropListener: db.prepare(`DELETE FROM loom_event_listeners WHERE origin = ?`),
      dropExpired: db.prepare(`DELETE FROM loom_event_listeners WHERE expires_at < ?`),
      maxSeq: db.prepare(`SELECT coalesce(max(seq), 0) FROM loom_events`).pluck(),
      since: db
        .prepare(
          `SELECT seq, body FROM loom_events WHERE seq > ? AND origin != ? ORDER BY seq LIMIT 1000`,
        )
        .raw(),
    };
  }

  wanted(origin: string): boolean {
    const now = Date.now();
    if (now - this.checkedAt >= 1_000) {
      this.checkedAt = now;
      try {
        this.remoteListeners = this.stmts.anyOther.get(origin, now) !== undefined;
      } catch {
        this.remoteListeners = false;
      }
    }
    return this.remoteListeners;
  }

  async publish(origin: string, events: LoomEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.db.transaction(() => {
      for (const e of events) this.stmts.insert.run(origin, JSON.stringify(e));
      this.published += events.length;
      if (this.published >= 1_000) {
        this.published = 0;
        this.stmts.trim.run(KEEP_EVENTS);
      }
    })();
  }

  listen(origin: string, fn: (events: LoomEvent[]) => void): () => void {
    let last = this.stmts.maxSeq.get() as number;
    let stopped = false;
    const register = () => {
      const now = Date.now();
      this.stmts.upsertListener.run(origin, now + LISTENER_TTL_MS);
      this.stmts.dropExpired.run(now);
    };
    register();
    const refresh = setInterval(() => {
      try {
        register();
      } catch {
        // The next refresh tries again; the row lives for three refreshes.
      }
    }, REFRESH_MS);
    refresh.unref();
    const read = () => {
      if (stopped) return;
      for (;;) {
        const rows = this.stmts.since.all(last, origin) as [number, string][];
        if (rows.length === 0) return;
        last = rows[rows.length - 1]![0];
        fn(rows.map(([, body]) => revive(body)));
        if (rows.length < 1000) return;
      }
    };
    const unwatch = this.onChange(read);
    return () => {
      if (stopped) return;
      stopped = true;
      clearInterval(refresh);
      unwatch();
      try {
        this.stmts.dropListener.run(origin);
      } catch {
        // Closed already: the row expires on its own.
      }
    };
  }
}

function revive(body: string): LoomEvent {
  const e = JSON.parse(body) as LoomEvent & { at: string };
  return { ...e, at: new Date(e.at) };
}
