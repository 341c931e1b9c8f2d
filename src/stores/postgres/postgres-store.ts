import { createHash, randomBytes } from "node:crypto";
import { PostgresFlows, PostgresSchedules, type PostgresHost } from "./flows.js";
import pg from "pg";
import { LoomError, StoreError, ValidationError } from "../../core/errors.js";
import { silentLogger, type Logger } from "../../core/logger.js";
import type { Page, Task, TaskFilter, TaskStatus } from "../../core/types.js";
import { encodeCursor, filterSql, pageSize, type FilterDialect } from "../../store/filter.js";
import { assertIdentifier, loadMigrations } from "../../store/migrations.js";
import type { TokenStore } from "../../store/tokens.js";
import { PostgresTokenStore } from "./tokens.js";
import type {
  AgentClaimRequest,
  AttemptRef,
  ClaimedTask,
  EventRelay,
  ExchangeRequest,
  ExchangeResult,
  InsertOutcome,
  NewTask,
  PurgeScope,
  QueuePosition,
  SettleOutcome,
  Store,
  TaskChange,
  TouchOutcome,
  TouchRequest,
} from "../../store/store.js";
import type { TaskStatsQuery, TaskStatsResult } from "../../store/stats.js";
import { PostgresEventRelay } from "./event-relay.js";
import { postgresTaskStats } from "./stats.js";
import { PostgresLanes, type Run } from "./lanes.js";
import type { LaneDef, LaneRank, LaneSnapshot } from "../../store/lanes.js";
import { PgWorkflows } from "./workflows.js";
import type { Checkpoint, NewWorkflowRun, WorkflowRunFilter } from "../../store/workflows.js";
import { Notifier, type ListenConnection } from "./notifier.js";
import {
  rowToTask,
  exchangeChange,
  toChange,
  toQueuePosition,
  toRef,
  toClaimed,
  X,
  type ChangeRow,
  type ExchangeRow,
  type TaskRow,
} from "./rows.js";

export interface PostgresStoreOptions {
  /** The schema holding Loom's tables (created if missing). A plain identifier. Default `loom`. */
  schema?: string;
  /** Connections in the pool the store opens for a URL (not used with your own pool). Default 10. */
  poolSize?: number;
  /** Where the store reports connection trouble (LISTEN lost, polling, restored). Default silent. */
  logger?: Logger;
  /** While the LISTEN connection is down, wake listeners this often, in ms. Default 250. */
  fallbackPollMs?: number;
  /** Longest wait between LISTEN reconnection attempts, in ms (backoff doubles from 100). Default 10 000. */
  reconnectMaxMs?: number;
  /** How often the LISTEN connection is checked with a ping, in ms. Default 15 000. */
  listenCheckMs?: number;
  /** Passed to `pg` for connections the store opens itself (e.g. `ssl`, `connectionTimeoutMillis`). */
  connection?: Omit<pg.PoolConfig, "connectionString" | "max">;
}

/** Anything that runs queries on one connection: a `pg.Client` or a `pg.PoolClient`. */
interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

const READY = `status IN ('pending', 'retrying') AND deps_left = 0`;
const ACTIVE = `status IN ('claimed', 'running')`;
const NOT_TERMINAL = `status NOT IN ('completed', 'failed', 'failed_crash', 'cancelled')`;
const CHANGE_COLUMNS = `id, type, tenant, project, request_id, workflow_id, attempt, status, error`;

/** bigint columns hold epoch milliseconds and counts: well inside a double's exact range. */
const INT8_OID = 20;
const parseInt8 = (v: string): number => Number(v);
const defaultParser = pg.types.getTypeParser.bind(pg.types) as (
  oid: number,
  format: "text" | "binary",
) => unknown;
const TYPES = {
  getTypeParser: (oid: number, format: "text" | "binary" = "text") =>
    oid === INT8_OID ? parseInt8 : defaultParser(oid, format),
};

/**
 * Errors worth a retry of the whole transaction: the server reports that nothing of it was
 * committed. A deadlock or serialization failure; or the connection was terminated by an
 * administrator or a shutdown (57P01, 57P02), which also reaches a pooled connection that was
 * killed while idle, at its next statement: the retry runs on a new connection. (A connection
 * that vanishes with no answer is not retried: its commit may have landed.)
 */
const RETRYABLE = new Set(["40P01", "40001", "57P01", "57P02"]);

/** The ready index's order: priority (highest first), then run_at, then id (as `COLLATE "C"` for ASCII ids). */
function byClaimOrder(a: ClaimedTask, b: ClaimedTask): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The status an applied settlement of each kind leaves (exchange(): 'c', 'f', 'r', 'p'). */
const SETTLED_STATUS: Record<string, TaskStatus> = {
  c: "completed",
  f: "failed",
  r: "retrying",
  p: "pending",
};
const UNRESOLVED_INSERT = "LM001";

const dialect: FilterDialect = {
  param(params, value) {
    params.push(value);
    return `$${params.length}`;
  },
  label(params, key, value) {
    params.push(key, value);
    return `(labels::json ->> $${params.length - 1}) = $${params.length}`;
  },
};

/** An attempt-id prefix unique to one claim write; the attempt number makes each token unique. */
function claimNonce(): string {
  return randomBytes(6).toString("base64url");
}

/**
 * Epoch milliseconds as the bigint columns take them. The engine's clock may be any function
 * (a test clock, `performance.timeOrigin + performance.now()`): a fraction of a millisecond is
 * rounded off rather than rejected.
 */
const ms = (v: number): number => Math.round(v);
const msOrNull = (v: number | null): number | null => (v === null ? null : Math.round(v));
/** JSON text of an optional object column. */
const jsonOrNull = (v: unknown): string | null =>
  v === null || v === undefined ? null : JSON.stringify(v);

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isPool(value: unknown): value is pg.Pool {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as pg.Pool).query === "function" &&
    typeof (value as pg.Pool).connect === "function" &&
    typeof (value as { release?: unknown }).release !== "function" &&
    "totalCount" in value
  );
}

/**
 * A NOTIFY channel of the schema. Channel names are identifiers (at most 63 characters): a
 * long schema name is replaced by its hash so two schemas never share a channel.
 */
function channelName(schema: string, suffix: string): string {
  const plain = `loom:${schema}${suffix}`;
  if (plain.length <= 63) return plain;
  return `loom:${createHash("sha1").update(schema).digest("hex").slice(0, 24)}${suffix}`;
}

/** Where a URL points, without credentials, for error messages. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`;
  } catch {
    return "the configured server";
  }
}

interface PlannedRow {
  task: NewTask;
  status: TaskStatus;
  depsLeft: number;
  error: string | null;
  hasDependents: boolean;
  /** Index of an earlier row of the batch with the same tenant and idempotency key. */
  aliasOf: number;
}

/**
 * The PostgreSQL store: every process on the database dispatches, observes and rescues work.
 *
 * Connections: a pool for queries (yours, or one the store opens for a URL with `poolSize`
 * connections) plus, once something subscribes to `onExternalChange`, one dedicated connection
 * that LISTENs. The dispatch loop's write (`exchange`) is a single call of a server-side
 * function: one round trip, one transaction. Claims use `FOR UPDATE SKIP LOCKED`, so engines
 * never wait on each other's claims.
 */
export class PostgresStore implements Store {
  readonly dialect = "postgres";
  readonly capabilities = {
    transactionalEnqueue: true,
    multiProcess: true,
    concurrentExchanges: 2,
  };
  readonly flows: PostgresFlows;
  readonly schedules: PostgresSchedules;
  /** The pool queries run on. */
  readonly pool: pg.Pool;
  readonly schema: string;

  private readonly ownsPool: boolean;
  private readonly url: string | null;
  /** The store's own logger option, else the engine's (`useLogger`), else silent. */
  private logger: Logger;
  private readonly ownLogger: boolean;
  private readonly s: string;
  private readonly channel: string;
  private readonly token = randomBytes(8).toString("base64url");
  private readonly names: string;
  private readonly notifier: Notifier;
  private readonly eventRelay: PostgresEventRelay;
  private readonly knownTypes = new Set<string>();
  private closed: Promise<void> | null = null;
  private migration: Promise<void> | null = null;
  private migrated = false;
  private readonly lanes: PostgresLanes;
  private readonly wf: PgWorkflows;
  private wfPlumbing() {
    return {
      s: this.s,
      tx: <T>(what: string, fn: (c: Queryable) => Promise<T>) => this.tx(what, fn),
      run: <R extends pg.QueryResultRow>(
        c: Queryable,
        text: string,
        values?: unknown[],
        name?: string,
      ) => this.run<R>(c, text, values, name),
      q: <R extends pg.QueryResultRow>(
        what: string,
        text: string,
        values: unknown[],
        name?: string,
      ) => this.q<R>(what, text, values, name),
      insertTasks: (c: Queryable, tasks: NewTask[]) => this.insertInCallerTx(c, tasks),
      notify: (c: Queryable) => this.notify(c),
      channel: this.channel,
      token: this.token,
    };
  }

  constructor(urlOrPool: string | pg.Pool, opts: PostgresStoreOptions = {}) {
    this.schema = assertIdentifier(opts.schema ?? "loom", "schema");
    this.s = `"${this.schema}"`;
    this.lanes = new PostgresLanes(this.s);
    this.logger = opts.logger ?? silentLogger;
    this.ownLogger = opts.logger !== undefined;
    // The notifier and the relay read the logger when they log, so `useLogger` reaches them.
    const currentLogger = (): Logger => this.logger;
    this.channel = channelName(this.schema, "");
    this.wf = new PgWorkflows(this.wfPlumbing());
    const flowHost: PostgresHost = {
      schema: this.schema,
      insertTasks: (tasks, tx) => this.insertTasks(tasks, tx),
      rows: async <R extends pg.QueryResultRow>(what: string, text: string, values?: unknown[]) =>
        (await this.q<R>(what, text, values)).rows,
      tx: (what, fn) => this.tx(what, fn),
    };
    this.flows = new PostgresFlows(flowHost);
    this.schedules = new PostgresSchedules(flowHost);
    this.eventRelay = new PostgresEventRelay(
      {
        channel: channelName(this.schema, ":events"),
        get logger() {
          return currentLogger();
        },
        query: async <R>(text: string, values: unknown[]) =>
          (await this.q<R & pg.QueryResultRow>("event relay", text, values)).rows,
        subscribe: (channel, handler) => this.notifier.subscribe(channel, handler),
      },
      `${this.s}.event_listeners`,
    );
    this.names = `loom_${createHash("sha1").update(this.schema).digest("hex").slice(0, 10)}_`;
    if (typeof urlOrPool === "string") {
      if (!/^postgres(ql)?:\/\//.test(urlOrPool)) {
        throw new ValidationError(
          "must be a postgres:// or postgresql:// URL, or a pg.Pool",
          "url",
        );
      }
      const poolSize = opts.poolSize ?? 10;
      if (!Number.isInteger(poolSize) || poolSize < 1) {
        throw new ValidationError("must be a positive integer", "poolSize");
      }
      this.url = urlOrPool;
      this.pool = new pg.Pool({
        application_name: "loomkit",
        ...opts.connection,
        connectionString: urlOrPool,
        max: poolSize,
      });
      this.ownsPool = true;
      // An idle connection that dies (server restart, terminated backend) must not crash the process.
      this.pool.on("error", (err) =>
        this.logger.warn({ err }, "an idle PostgreSQL connection failed; the pool replaces it"),
      );
    } else if (isPool(urlOrPool)) {
      this.url = null;
      this.pool = urlOrPool;
      this.ownsPool = false;
    } else {
      throw new ValidationError("must be a postgres:// URL or a pg.Pool", "urlOrPool");
    }
    const positive = (v: number | undefined, dflt: number, field: string) => {
      const n = v ?? dflt;
      if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) {
        throw new ValidationError("must be a positive number of ms", field);
      }
      return n;
    };
    this.notifier = new Notifier({
      channel: this.channel,
      token: this.token,
      get logger() {
        return currentLogger();
      },
      connect: () => this.listenConnection(opts.connection),
      pollMs: positive(opts.fallbackPollMs, 250, "fallbackPollMs"),
      reconnectMinMs: 100,
      reconnectMaxMs: positive(opts.reconnectMaxMs, 10_000, "reconnectMaxMs"),
      checkMs: positive(opts.listenCheckMs, 15_000, "listenCheckMs"),
    });
  }

  /**
   * Lifecycle events between processes on this database (NOTIFY on a channel of their own),
   * sent only while another process listens. Events sent while a listener's connection is
   * down are lost.
   */
  get relay(): EventRelay | undefined {
    return this.closed || !this.migrated ? undefined : this.eventRelay;
  }

  private tokenStore: PostgresTokenStore | undefined;

  /** Stored access tokens (migration 006). */
  get tokens(): TokenStore {
    return (this.tokenStore ??= new PostgresTokenStore(this.pool, this.s, () => this.migrate()));
  }

  /** Log through the engine's logger, unless this store was given a `logger` of its own. */
  useLogger(logger: Logger): void {
    if (!this.ownLogger) this.logger = logger;
  }

  /** `listening`, or `polling` while the LISTEN connection is down (for health checks). */
  get listenStatus(): string {
    return this.notifier.status;
  }

  /** The application_name of the LISTEN connection (to find it in `pg_stat_activity`). */
  get listenApplicationName(): string {
    return `loomkit-listen:${this.schema}`.slice(0, 63);
  }

  private async listenConnection(
    extra: PostgresStoreOptions["connection"],
  ): Promise<ListenConnection> {
    const base: pg.ClientConfig | null = this.url
      ? { ...extra, connectionString: this.url }
      : ((this.pool as { options?: pg.ClientConfig }).options ?? null);
    if (!base) {
      // A pool-like object without its options: hold one of its connections.
      const client = await this.pool.connect();
      return { client, release: async (broken) => client.release(broken || undefined) };
    }
    const client = new pg.Client({
      ...base,
      application_name: this.listenApplicationName,
      keepAlive: true,
      query_timeout: 10_000,
    });
    client.on("error", () => {}); // replaced by the notifier's handler once connected
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return { client, release: () => client.end() };
  }

  // ---------------------------------------------------------------- plumbing

  private ensureOpen(): void {
    if (this.closed) throw new StoreError("the PostgreSQL store is closed");
    if (!this.migrated) {
      throw new StoreError("the PostgreSQL store is not migrated: call migrate() first");
    }
  }

  /** Driver errors become a `StoreError` with a clear message; Loom's own errors pass through. */
  private wrap(err: unknown, what: string): Error {
    if (err instanceof LoomError) return err;
    const e = err as Error & { code?: string };
    const where = this.url ? ` at ${describeUrl(this.url)}` : "";
    const text =
      e?.code === "ECONNREFUSED" || e?.code === "ENOTFOUND" || e?.code === "ETIMEDOUT"
        ? `cannot reach PostgreSQL${where} (${e.code})`
        : `PostgreSQL ${what} failed: ${e?.message ?? String(err)}`;
    return new StoreError(text, { cause: err });
  }

  private async q<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[] = [],
    name?: string,
    rowMode?: "array",
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig & { rowMode?: "array" } = { text, values, types: TYPES };
    if (name) config.name = this.names + name;
    if (rowMode) config.rowMode = rowMode;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(config);
      } catch (err) {
        // A single statement that lost a deadlock wrote nothing: run it again.
        if (attempt < 4 && RETRYABLE.has(sqlState(err) ?? "")) {
          await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 10));
          continue;
        }
        throw this.wrap(err, what);
      }
    }
  }

  /** Run `fn` in a transaction on one pooled connection; retried whole on deadlock. */
  private async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw this.wrap(err, what);
      }
      let broken = false;
      try {
        await client.query("BEGIN");
        const out = await fn(client);
        await client.query("COMMIT");
        return out;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
        if (attempt < 4 && RETRYABLE.has(sqlState(err) ?? "")) continue;
        throw this.wrap(err, what);
      } finally {
        client.release(broken || undefined);
      }
    }
  }

  /** One statement inside a transaction the store runs (`tx`): errors are wrapped there. */
  private run<R extends pg.QueryResultRow>(
    c: Queryable,
    text: string,
    values: unknown[] = [],
    name?: string,
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig = { text, values, types: TYPES };
    if (name) config.name = this.names + name;
    return c.query(config) as Promise<pg.QueryResult<R>>;
  }

  // ---------------------------------------------------------------- lifecycle

  migrate(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError("the PostgreSQL store is closed"));
    this.migration ??= this.applyMigrations().catch((err: unknown) => {
      this.migration = null;
      throw err;
    });
    return this.migration;
  }

  private async applyMigrations(): Promise<void> {
    const migrations = loadMigrations(new URL("./migrations/", import.meta.url));
    await this.tx("migration", async (c) => {
      // Many processes may start at once: the first applies, the others wait and find it done.
      await this.run(c, `SELECT pg_advisory_xact_lock(hashtext($1))`, [
        `loomkit:migrate:${this.schema}`,
      ]);
      const exists = await this.run(c, `SELECT 1 FROM pg_namespace WHERE nspname = $1`, [
        this.schema,
      ]);
      if (exists.rowCount === 0) await this.run(c, `CREATE SCHEMA ${this.s}`);
      await this.run(
        c,
        `CREATE TABLE IF NOT EXISTS ${this.s}.migrations (
          version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
      );
      const done = new Set(
        (
          await this.run<{ version: number }>(c, `SELECT version FROM ${this.s}.migrations`)
        ).rows.map((r) => r.version),
      );
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await c.query({ text: m.sql.replaceAll("{{schema}}", this.s) });
        await this.run(
          c,
          `INSERT INTO ${this.s}.migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
          [m.version, m.name, Date.now()],
        );
        this.logger.info({ schema: this.schema, version: m.version, name: m.name }, "migrated");
      }
      const known = new Set(migrations.map((m) => m.version));
      const newer = [...done].filter((v) => !known.has(v));
      if (newer.length) {
        this.logger.warn(
          { schema: this.schema, versions: newer },
          "the database has migrations this version of loomkit does not know; it may be older than another process",
        );
      }
    });
    const types = await this.q<{ type: string }>(
      "migration",
      `SELECT type FROM ${this.s}.task_types`,
    );
    for (const r of types.rows) this.knownTypes.add(r.type);
    this.migrated = true;
    if (!this.closed) this.eventRelay.start();
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.eventRelay.stop();
      await this.notifier.close();
      if (this.ownsPool) await this.pool.end();
    })();
    return this.closed;
  }

  // ---------------------------------------------------------------- insert

  async insertTasks(tasks: NewTask[], tx?: unknown): Promise<InsertOutcome[]> {
    this.ensureOpen();
    let client: Queryable | null = null;
    if (tx !== undefined && tx !== null) {
      if (isPool(tx) || typeof (tx as Queryable).query !== "function") {
        throw new ValidationError(
          "for the PostgreSQL store, tx must be a pg Client or PoolClient inside your own BEGIN",
          "tx",
        );
      }
      client = tx as Queryable;
    }
    if (tasks.length === 0) return [];
    if (client) return this.insertInCallerTx(client, tasks);
    const simple = tasks.every((t) => t.dependsOn.length === 0);
    if (simple && tasks.every((t) => t.idempotencyKey === null)) {
      // The common case: fresh ids, nothing to match or link, so every row is created pending.
      const outcomes = await this.insertPlain(tasks);
      if (outcomes) return outcomes;
    }
    if (simple) {
      const plan = this.plan(tasks, new Map());
      try {
        // One statement, one round trip: rows, new types and the NOTIFY commit together.
        const outcomes = await this.insertStatement(this.pool, plan, true, this.token);
        this.rememberTypes(tasks);
        return this.resolveAliases(plan, outcomes);
      } catch (err) {
        // A row neither created nor matched by its key, or a deadlock: nothing was written;
        // the transactional path below finds out why (or simply succeeds).
        const code = sqlState(err);
        if (
          err instanceof LoomError ||
          (code !== UNRESOLVED_INSERT && !RETRYABLE.has(code ?? ""))
        ) {
          throw this.wrap(err, "insert");
        }
      }
    }
    const out = await this.tx("insert", (c) => this.insertPlanned(c, tasks, this.token));
    this.rememberTypes(tasks);
    return out;
  }

  /**
   * Tasks without dependencies or idempotency keys: a plain INSERT, no conflict handling, no
   * outcome join (the general statement's matching costs a quarter of a batch's time). `null` when
   * an id already exists or the statement lost a deadlock: nothing was written, and the general
   * path finds out which (or simply succeeds).
   */
  private async insertPlain(tasks: NewTask[]): Promise<InsertOutcome[] | null> {
    const newTypes = [...new Set(tasks.map((t) => t.type))].filter((t) => !this.knownTypes.has(t));
    const one = tasks.length === 1;
    const col = one
      ? <T>(f: (t: NewTask) => T) => f(tasks[0]!)
      : <T>(f: (t: NewTask) => T) => tasks.map(f);
    const values = [
      col((t) => t.id),
      col((t) => t.type),
      col((t) => t.input),
      col((t) => t.tenant),
      col((t) => t.project),
      col((t) => t.caller),
      col((t) => t.priority),
      col((t) => t.lane),
      col((t) => jsonOrNull(t.labels)),
      col((t) => jsonOrNull(t.metadata)),
      col((t) => t.maxRetries),
      col((t) => jsonOrNull(t.backoff)),
      col((t) => t.crashPolicy),
      col((t) => t.maxCrashes),
      col((t) => ms(t.leaseMs)),
      col((t) => msOrNull(t.timeoutMs)),
      col((t) => ms(t.runAt)),
      col((t) => t.requestId),
      col((t) => t.workflowId),
      col((t) => jsonOrNull(t.traceContext)),
      col((t) => ms(t.createdAt)),
      newTypes,
      this.channel,
      this.token,
    ];
    try {
      await this.run(
        this.pool,
        this.plainInsertSql(one),
        values,
        one ? "insert_one" : "insert_many",
      );
    } catch (err) {
      const code = sqlState(err);
      if (code === "23505" || RETRYABLE.has(code ?? "")) return null;
      throw this.wrap(err, "insert");
    }
    this.rememberTypes(tasks);
    return tasks.map((t) => ({ id: t.id, created: true, status: "pending", error: null }));
  }

  private plainInsertSqlText: [string, string] | null = null;
  private plainInsertSql(one: boolean): string {
    const columns = `id, type, input, tenant, project, caller, priority, lane, labels, metadata,
      max_retries, backoff, crash_policy, max_crashes, lease_ms, timeout_ms, run_at, request_id,
      workflow_id, trace_context, created_at`;
    // NOTIFY from the statement itself: it is delivered when the row commits, not before.
    const tail = (rows: string) => `
      WITH ins AS (
        INSERT INTO ${this.s}.tasks (${columns}, status, updated_at) ${rows}
      ), types AS (
        INSERT INTO ${this.s}.task_types (type) SELECT unnest($22::text[]) ON CONFLICT DO NOTHING
      )
      SELECT pg_notify($23, $24)`;
    this.plainInsertSqlText ??= [
      tail(`VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
        $18, $19, $20, $21, 'pending', $21)`),
      tail(`SELECT ${columns}, 'pending', created_at
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::integer[], $8::text[], $9::text[], $10::text[], $11::integer[], $12::text[],
            $13::text[], $14::integer[], $15::bigint[], $16::bigint[], $17::bigint[], $18::text[],
            $19::text[], $20::text[], $21::bigint[])
            AS v(${columns})`),
    ];
    return this.plainInsertSqlText[one ? 0 : 1];
  }

  private rememberTypes(tasks: NewTask[]): void {
    for (const t of tasks) this.knownTypes.add(t.type);
  }

  /** Inside the caller's transaction: a savepoint makes the batch all or nothing on its own. */
  private async insertInCallerTx(client: Queryable, tasks: NewTask[]): Promise<InsertOutcome[]> {
    try {
      await client.query({ text: "SAVEPOINT loom_insert" });
    } catch (err) {
      throw this.wrap(err, "insert (is tx inside BEGIN?)");
    }
    try {
      // Payload '' (not this store's token): after the caller commits, this process wakes too.
      const out = await this.insertPlanned(client, tasks, "");
      await client.query({ text: "RELEASE SAVEPOINT loom_insert" });
      return out;
    } catch (err) {
      try {
        await client.query({ text: "ROLLBACK TO SAVEPOINT loom_insert" });
        await client.query({ text: "RELEASE SAVEPOINT loom_insert" });
      } catch {
        // The caller's transaction is unusable; its own error handling will see that.
      }
      throw this.wrap(err, "insert");
    }
  }

  /** Validate dependencies, plan statuses, insert, and resolve idempotency conflicts. */
  private async insertPlanned(c: Queryable, tasks: NewTask[], payload: string) {
    const firstIndex = new Map<string, number>();
    tasks.forEach((t, i) => {
      if (!firstIndex.has(t.id)) firstIndex.set(t.id, i);
    });
    const external = new Set<string>();
    tasks.forEach((t, i) => {
      for (const dep of t.dependsOn) {
        const j = firstIndex.get(dep);
        if (j === undefined || j >= i) external.add(dep);
      }
    });
    const found = new Map<string, { status: TaskStatus; tenant: string }>();
    if (external.size) {
      // Lock the dependencies so none of them ends between this read and our commit (its end
      // would miss the edge we are about to write).
      const rows = await this.run<{ id: string; status: TaskStatus; tenant: string }>(
        c,
        `SELECT id, status, tenant FROM ${this.s}.tasks WHERE id = ANY($1::text[])
          ORDER BY id FOR NO KEY UPDATE`,
        [[...external]],
      );
      for (const r of rows.rows) found.set(r.id, r);
    }
    const plan = this.plan(tasks, found);
    const outcomes = await this.insertStatement(c, plan, false, payload);
    // A dependency inside the batch that was not created (its idempotency key matched an
    // existing task) does not exist under the id the dependent names.
    plan.forEach((p, i) => {
      for (const dep of p.task.dependsOn) {
        const j = firstIndex.get(dep);
        if (j !== undefined && j < i && !outcomes[j]?.created) {
          throw new ValidationError(
            `dependency ${dep} must come before the task that depends on it`,
            "dependsOn",
          );
        }
      }
    });
    const missing = plan
      .map((p, i) => ({ p, i }))
      .filter(({ i }) => outcomes[i] === null)
      .filter(({ p }) => p.aliasOf < 0);
    if (missing.length) {
      const keyed = missing.filter(({ p }) => p.task.idempotencyKey !== null);
      const existing = new Map<string, { id: string; status: TaskStatus; error: string | null }>();
      if (keyed.length) {
        const rows = await this.run<{
          id: string;
          status: TaskStatus;
          error: string | null;
          tenant: string;
          idempotency_key: string;
        }>(
          c,
          `SELECT id, status, error, tenant, idempotency_key FROM ${this.s}.tasks
            WHERE (tenant, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
          [keyed.map(({ p }) => p.task.tenant), keyed.map(({ p }) => p.task.idempotencyKey)],
        );
        for (const r of rows.rows) existing.set(JSON.stringify([r.tenant, r.idempotency_key]), r);
      }
      for (const { p, i } of missing) {
        const e = p.task.idempotencyKey
          ? existing.get(JSON.stringify([p.task.tenant, p.task.idempotencyKey]))
          : undefined;
        if (!e) throw new ValidationError(`a task with id ${p.task.id} already exists`, "id");
        outcomes[i] = { id: e.id, created: false, status: e.status, error: e.error };
      }
    }
    return this.resolveAliases(plan, outcomes);
  }

  /**
   * Statuses and dependency counts, as if the batch were inserted row by row: a task whose
   * dependency already ended unsuccessfully is created cancelled; a later row with the tenant and
   * idempotency key of an earlier one is not inserted and reports that one.
   */
  private plan(tasks: NewTask[], found: Map<string, { status: TaskStatus; tenant: string }>) {
    const planned: PlannedRow[] = [];
    const byId = new Map<string, number>();
    const byKey = new Map<string, number>();
    tasks.forEach((t, i) => {
      let depsLeft = 0;
      let reason: string | null = null;
      for (const dep of new Set(t.dependsOn)) {
        const j = byId.get(dep);
        const inserted = j !== undefined && planned[j]!.aliasOf < 0 ? planned[j]! : undefined;
        const row = inserted
          ? { status: inserted.status, tenant: inserted.task.tenant }
          : j === undefined
            ? found.get(dep)
            : undefined;
        if (!row || row.tenant !== t.tenant) {
          const inBatch = tasks.some((b) => b.id === dep);
          throw new ValidationError(
            inBatch
              ? `dependency ${dep} must come before the task that depends on it`
              : `unknown dependency id ${dep}`,
            "dependsOn",
          );
        }
        if (inserted) inserted.hasDependents = true;
        if (row.status === "completed") continue;
        if (
          row.status === "failed" ||
          row.status === "failed_crash" ||
          row.status === "cancelled"
        ) {
          reason ??= `dependency ${dep} ended ${row.status}`;
        } else depsLeft++;
      }
      const key = t.idempotencyKey === null ? null : JSON.stringify([t.tenant, t.idempotencyKey]);
      const aliasOf = key === null ? -1 : (byKey.get(key) ?? -1);
      if (aliasOf < 0 && byId.has(t.id)) {
        throw new ValidationError(`a task with id ${t.id} already exists`, "id");
      }
      planned.push({
        task: t,
        status: reason === null ? "pending" : "cancelled",
        depsLeft,
        error: reason,
        hasDependents: false,
        aliasOf,
      });
      if (aliasOf < 0) {
        byId.set(t.id, i);
        if (key !== null) byKey.set(key, i);
      }
    });
    return planned;
  }

  private resolveAliases(plan: PlannedRow[], outcomes: (InsertOutcome | null)[]): InsertOutcome[] {
    return plan.map((p, i) => {
      if (p.aliasOf < 0) return outcomes[i]!;
      const first = outcomes[p.aliasOf]!;
      return { id: first.id, created: false, status: first.status, error: first.error };
    });
  }

  /**
   * The insert itself, one statement: rows (conflicts skipped), dependency edges, the
   * has-dependents mark on existing dependencies, new task types, and the NOTIFY. Returns one
   * outcome per row, `null` for rows neither created nor found by key (`strict` raises instead,
   * rolling the statement back).
   */
  private async insertStatement(
    c: Queryable,
    plan: PlannedRow[],
    strict: boolean,
    payload: string,
  ): Promise<(InsertOutcome | null)[]> {
    const rows = plan.filter((p) => p.aliasOf < 0);
    const col = <T>(f: (p: PlannedRow) => T) => rows.map(f);
    const edgesFrom: string[] = [];
    const edgesTo: string[] = [];
    for (const p of rows) {
      for (const dep of new Set(p.task.dependsOn)) {
        edgesFrom.push(dep);
        edgesTo.push(p.task.id);
      }
    }
    const newTypes = [...new Set(rows.map((p) => p.task.type))]
      .filter((t) => !this.knownTypes.has(t))
      .sort();
    const values = [
      col((p) => p.task.id),
      col((p) => p.task.type),
      col((p) => p.status),
      col((p) => p.task.input),
      col((p) => p.task.tenant),
      col((p) => p.task.project),
      col((p) => p.task.caller),
      col((p) => p.task.priority),
      col((p) => p.task.lane),
      col((p) => jsonOrNull(p.task.labels)),
      col((p) => jsonOrNull(p.task.metadata)),
      col((p) => p.task.maxRetries),
      col((p) => jsonOrNull(p.task.backoff)),
      col((p) => p.task.crashPolicy),
      col((p) => p.task.maxCrashes),
      col((p) => ms(p.task.leaseMs)),
      col((p) => msOrNull(p.task.timeoutMs)),
      col((p) => ms(p.task.runAt)),
      col((p) => p.depsLeft),
      col((p) => (p.task.dependsOn.length ? JSON.stringify(p.task.dependsOn) : null)),
      col((p) => p.task.idempotencyKey),
      col((p) => p.task.requestId),
      col((p) => p.task.workflowId),
      col((p) => jsonOrNull(p.task.traceContext)),
      col((p) => p.error),
      col((p) => (p.status === "cancelled" ? ms(p.task.createdAt) : null)),
      col((p) => ms(p.task.createdAt)),
      col((p) => p.hasDependents),
      edgesFrom,
      edgesTo,
      newTypes,
      strict,
      this.channel,
      payload,
    ];
    const res = await this.run<{
      ord: number;
      created: boolean;
      id: string | null;
      status: TaskStatus | null;
      error: string | null;
    }>(c, this.insertSql(), values, "insert");
    const byRow: (InsertOutcome | null)[] = rows.map(() => null);
    for (const r of res.rows) {
      if (r.id !== null) {
        byRow[r.ord - 1] = { id: r.id, created: r.created, status: r.status!, error: r.error };
      }
    }
    let k = 0;
    return plan.map((p) => (p.aliasOf < 0 ? byRow[k++]! : null));
  }

  private insertSqlText: string | null = null;
  private insertSql(): string {
    const s = this.s;
    return (this.insertSqlText ??= `
      WITH v AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
          $6::text[], $7::text[], $8::integer[], $9::text[], $10::text[], $11::text[],
          $12::integer[], $13::text[], $14::text[], $15::integer[], $16::bigint[], $17::bigint[],
          $18::bigint[], $19::integer[], $20::text[], $21::text[], $22::text[], $23::text[],
          $24::text[], $25::text[], $26::bigint[], $27::bigint[], $28::boolean[])
          WITH ORDINALITY AS v(id, type, status, input, tenant, project, caller, priority, lane,
            labels, metadata, max_retries, backoff, crash_policy, max_crashes, lease_ms,
            timeout_ms, run_at, deps_left, depends_on, idempotency_key, request_id, workflow_id,
            trace_context, error, completed_at, created_at, has_dependents, ord)
      ), ins AS (
        INSERT INTO ${s}.tasks (id, type, status, input, tenant, project, caller, priority, lane,
          labels, metadata, max_retries, backoff, crash_policy, max_crashes, lease_ms, timeout_ms,
          run_at, deps_left, depends_on, idempotency_key, request_id, workflow_id, trace_context,
          error, completed_at, created_at, updated_at, has_dependents)
        SELECT id, type, status, input, tenant, project, caller, priority, lane, labels, metadata,
          max_retries, backoff, crash_policy, max_crashes, lease_ms, timeout_ms, run_at, deps_left,
          depends_on, idempotency_key, request_id, workflow_id, trace_context, error,
          completed_at, created_at, created_at, has_dependents
          FROM v ORDER BY ord
        ON CONFLICT DO NOTHING
        RETURNING id
      ), edges AS (
        INSERT INTO ${s}.task_deps (depends_on, task_id)
        SELECT e.d, e.t FROM unnest($29::text[], $30::text[]) AS e(d, t)
         WHERE e.t IN (SELECT id FROM ins)
        ON CONFLICT DO NOTHING
        RETURNING depends_on
      ), marked AS (
        UPDATE ${s}.tasks SET has_dependents = true
         WHERE id IN (SELECT depends_on FROM edges) AND NOT has_dependents
      ), types AS (
        INSERT INTO ${s}.task_types (type) SELECT unnest($31::text[])
        ON CONFLICT DO NOTHING
      ), note AS (
        SELECT pg_notify($33, $34) FROM (SELECT 1 FROM ins LIMIT 1) AS one
      )
      SELECT v.ord::integer AS ord, i.id IS NOT NULL AS created,
             CASE WHEN i.id IS NOT NULL THEN v.id
                  WHEN e.id IS NOT NULL THEN e.id
                  WHEN $32::boolean THEN ${s}.insert_unresolved(v.id) END AS id,
             CASE WHEN i.id IS NOT NULL THEN v.status ELSE e.status END AS status,
             CASE WHEN i.id IS NOT NULL THEN v.error ELSE e.error END AS error,
             -- Output, so the planner cannot drop it: the NOTIFY runs only when referenced.
             (SELECT count(*) FROM note) AS notified
        FROM v
        LEFT JOIN ins i ON i.id = v.id
        LEFT JOIN ${s}.tasks e ON i.id IS NULL AND v.idempotency_key IS NOT NULL
              AND e.idempotency_key IS NOT NULL AND e.tenant = v.tenant
              AND e.idempotency_key = v.idempotency_key
       ORDER BY v.ord`);
  }

  // ---------------------------------------------------------------- reads

  async getTask(id: string): Promise<Task | null> {
    this.ensureOpen();
    const res = await this.q<TaskRow>(
      "read",
      `SELECT * FROM ${this.s}.tasks WHERE id = $1`,
      [id],
      "get",
    );
    const row = res.rows[0];
    return row ? rowToTask(row) : null;
  }

  async listTasks(filter: TaskFilter): Promise<Page<Task>> {
    this.ensureOpen();
    const limit = pageSize(filter);
    const { where, params } = filterSql(filter, dialect, true);
    const sql = `SELECT * FROM ${this.s}.tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY id DESC LIMIT ${limit + 1}`;
    const rows = (await this.q<TaskRow>("list", sql, params)).rows;
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(rowToTask);
    return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null };
  }

  async countTasks(filter: TaskFilter): Promise<number> {
    this.ensureOpen();
    const { where, params } = filterSql({ ...filter, cursor: undefined }, dialect, false);
    const sql = `SELECT count(*) AS n FROM ${this.s}.tasks
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""}`;
    return (await this.q<{ n: number }>("count", sql, params)).rows[0]!.n;
  }

  // ---------------------------------------------------------------- dispatch

  async exchange(req: ExchangeRequest): Promise<ExchangeResult> {
    this.ensureOpen();
    if (req.claim?.lanes?.length && req.claim.limit > 0) return this.exchangeWithLanes(req);
    return this.plainExchange(req);
  }

  /**
   * An engine with laned types: settle first (freeing lane slots), then claim through the lanes
   * in a transaction of their own (each lane row locked in turn), then plain types with what is
   * left. Engines without lanes never come here: their exchange stays one round trip.
   */
  private async exchangeWithLanes(req: ExchangeRequest): Promise<ExchangeResult> {
    const claim = req.claim!;
    const settled = req.settle.length
      ? (await this.plainExchange({ now: req.now, settle: req.settle, claim: null })).settled
      : [];
    const laned = await this.tx("lane claim", (c) =>
      this.lanes.claim<ExchangeRow>(
        this.runner(c),
        claim.lanes!,
        claim.limit,
        req.now,
        claim.engineName,
        claimNonce(),
      ),
    );
    const claimed = laned.map(toClaimed);
    const rest = claim.limit - claimed.length;
    if (claim.types.length === 0 || (rest <= 0 && !claim.prefetch)) return { settled, claimed };
    const plain = await this.plainExchange({
      now: req.now,
      settle: [],
      claim: { ...claim, limit: Math.max(0, rest), lanes: undefined },
    });
    return { settled, claimed: claimed.concat(plain.claimed), prefetched: plain.prefetched };
  }

  /** A `Run` on one connection of a transaction. */
  private runner(c: Queryable): Run {
    return async <R>(text: string, values: unknown[], rowMode?: "array") => {
      const config: pg.QueryConfig & { rowMode?: "array" } = { text, values, types: TYPES };
      if (rowMode) config.rowMode = rowMode;
      return (await c.query(config)).rows as R[];
    };
  }

  async saveLane(def: Omit<LaneDef, "updatedAt">, now: number): Promise<LaneDef> {
    this.ensureOpen();
    return this.tx("save lane", (c) => this.lanes.save(this.runner(c), def, now));
  }

  async setLaneConcurrency(name: string, concurrency: number, now: number): Promise<boolean> {
    this.ensureOpen();
    return this.tx("set lane concurrency", (c) =>
      this.lanes.setConcurrency(this.runner(c), name, concurrency, now),
    );
  }

  async preemptionsOf(engineName: string): Promise<{ id: string; attemptId: string }[]> {
    this.ensureOpen();
    return this.tx("lane preemptions", (c) => this.lanes.preemptions(this.runner(c), engineName));
  }

  async adoptIntoLane(lane: string, types: string[], now: number): Promise<number> {
    this.ensureOpen();
    if (types.length === 0) return 0;
    // deps_left = 0 keeps the statement on the ready index; blocked rows are adopted once ready.
    const res = await this.q(
      "adopt into lane",
      `UPDATE ${this.s}.tasks SET lane = $1, caller = COALESCE(caller, tenant), updated_at = $2
        WHERE type = ANY($3::text[]) AND ${READY} AND lane IS NULL`,
      [lane, ms(now), types],
      "adopt_lane",
    );
    return res.rowCount ?? 0;
  }

  async listLanes(): Promise<LaneDef[]> {
    this.ensureOpen();
    return this.tx("list lanes", (c) => this.lanes.list(this.runner(c)));
  }

  async laneSnapshot(name: string, now: number): Promise<LaneSnapshot | null> {
    this.ensureOpen();
    // REPEATABLE READ: every count comes from one snapshot.
    return this.tx("lane stats", async (c) => {
      await c.query({ text: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY" });
      return this.lanes.snapshot(this.runner(c), name, now);
    });
  }

  async laneRank(
    target: { id: string } | { lane: string; caller: string; priority: number },
    now: number,
  ): Promise<LaneRank | null> {
    this.ensureOpen();
    return this.tx("lane position", (c) => this.lanes.rank(this.runner(c), target, now));
  }

  private async plainExchange(req: ExchangeRequest): Promise<ExchangeResult> {
    const settle = req.settle;
    const limit = Math.max(req.claim?.limit ?? 0, 0);
    const prefetch = Math.max(req.claim?.prefetch ?? 0, 0);
    const claim = req.claim && limit + prefetch > 0 && req.claim.types.length ? req.claim : null;
    if (settle.length === 0 && !claim) return { settled: [], claimed: [], prefetched: [] };
    const n = settle.length;
    const ids = new Array<string>(n);
    const attempts = new Array<string>(n);
    const kinds = new Array<string>(n);
    const results = new Array<string | null>(n);
    const errors = new Array<string | null>(n);
    const retryAt = new Array<number | null>(n);
    for (let i = 0; i < n; i++) {
      const it = settle[i]!;
      ids[i] = it.id;
      attempts[i] = it.attemptId;
      results[i] = null;
      errors[i] = null;
      retryAt[i] = null;
      if (it.kind === "complete") {
        kinds[i] = "c";
        results[i] = it.result;
      } else if (it.kind === "fail") {
        kinds[i] = it.retryAt === null ? "f" : "r";
        errors[i] = it.error;
        retryAt[i] = msOrNull(it.retryAt);
      } else kinds[i] = "p";
    }
    const dedup = new Set(ids).size !== n;
    const res = await this.q<ExchangeRow>(
      "exchange",
      `SELECT * FROM ${this.s}.exchange($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        ms(req.now),
        ids,
        attempts,
        kinds,
        results,
        errors,
        retryAt,
        dedup,
        claim?.engineName ?? null,
        claim?.types ?? null,
        claim ? limit : 0,
        claim ? prefetch : 0,
        claim ? claimNonce() : null,
        this.channel,
        this.token,
      ],
      "exchange",
      "array",
    );
    const settled = new Array<SettleOutcome>(n);
    const claimed: ClaimedTask[] = [];
    const prefetched: ClaimedTask[] = [];
    const cascades: ExchangeRow[] = [];
    for (const r of res.rows) {
      if (r[X.k] === 2) claimed.push(toClaimed(r));
      else if (r[X.k] === 3) prefetched.push(toClaimed(r));
      else if (r[X.k] === 0) {
        settled[r[X.ord]! - 1] = { id: r[X.id], ok: r[X.ok]!, status: r[X.status], cascade: [] };
      } else cascades.push(r);
    }
    // Only stale settlements come back as rows: an applied one has the status its kind sets.
    for (let i = 0; i < n; i++) {
      settled[i] ??= { id: ids[i]!, ok: true, status: SETTLED_STATUS[kinds[i]!]!, cascade: [] };
    }
    for (const r of cascades) settled[r[X.ord]! - 1]!.cascade.push(exchangeChange(r));
    // exchange() returns claims unordered (migration 007): best first is our side's job.
    claimed.sort(byClaimOrder);
    prefetched.sort(byClaimOrder);
    return { settled, claimed, prefetched };
  }

  async claimForAgent(req: AgentClaimRequest): Promise<Task | null> {
    this.ensureOpen();
    const params: unknown[] = [ms(req.now)];
    const p = (v: unknown) => (params.push(v), `$${params.length}`);
    const extra: string[] = [];
    if (req.tenant !== undefined) extra.push(`r.tenant = ${p(req.tenant)}`);
    if (req.project !== undefined) extra.push(`r.project = ${p(req.project)}`);
    if (req.lanes?.length) extra.push(`r.lane = ANY(${p(req.lanes)}::text[])`);
    // A laned task only while its lane has a free slot: the lane rows are locked (in the
    // transaction below) before the free lanes are counted, as a lane claim does.
    extra.push(`(r.lane IS NULL OR r.lane = ANY($${params.length + 1}::text[]))`);
    params.push(null);
    const freeLanesParam = params.length - 1;
    const filters = extra.map((c) => `AND ${c}`).join(" ");
    const types = req.types?.length ? req.types : null;
    const typeSource = types
      ? `unnest(${p(types)}::text[]) AS ty(type)`
      : `${this.s}.task_types AS ty`;
    const agent = p(req.agent);
    const max = p(req.max);
    const nonce = p(claimNonce());
    // The best ready task of each type (locked, skipping others' claims), then the best of those.
    const sql = `
      WITH best AS (
        SELECT b.id FROM ${typeSource}
        CROSS JOIN LATERAL (
          SELECT r.id, r.priority, r.run_at FROM ${this.s}.tasks r
           WHERE r.type = ty.type AND r.status IN ('pending', 'retrying') AND r.deps_left = 0
             AND r.run_at <= $1 ${filters}
           ORDER BY r.priority DESC, r.run_at, r.id
           LIMIT 1
             FOR UPDATE SKIP LOCKED) b
        ORDER BY b.priority DESC, b.run_at, b.id
        LIMIT 1
      )
      UPDATE ${this.s}.tasks t
         SET status = 'claimed', attempt = t.attempt + 1,
             attempt_id = ${nonce} || '.' || (t.attempt + 1), engine_name = ${agent},
             lease_expires_at = $1 + t.lease_ms, started_at = $1, updated_at = $1,
             progress = NULL, progress_note = NULL
       WHERE t.id IN (SELECT id FROM best)
         AND (SELECT count(*) FROM ${this.s}.tasks a
               WHERE a.${ACTIVE} AND a.engine_name = ${agent}) < ${max}
      RETURNING t.*`;
    return this.tx("agent claim", async (c) => {
      // One agent's claims are serialised, so two at once cannot both pass the `max` check.
      await this.run(c, `SELECT pg_advisory_xact_lock(hashtext($1))`, [
        `loomkit:agent:${this.schema}:${req.agent}`,
      ]);
      params[freeLanesParam] = (await this.lanes.lockFree(this.runner(c))) ?? [];
      const res = await this.run<TaskRow>(c, sql, params);
      const row = res.rows[0];
      return row ? rowToTask(row) : null;
    });
  }

  async touch(req: TouchRequest): Promise<TouchOutcome> {
    this.ensureOpen();
    const note = req.note ?? null;
    const res = await this.q<
      Omit<ChangeRow, "status" | "error"> & { found: TaskStatus; before: TaskStatus | null }
    >(
      "touch",
      `WITH old AS (
         SELECT id, status, attempt_id FROM ${this.s}.tasks WHERE id = $1 FOR NO KEY UPDATE
       ), u AS (
         UPDATE ${this.s}.tasks t
            SET status = 'running', lease_expires_at = $3 + t.lease_ms, updated_at = $3,
                progress = coalesce($4, t.progress),
                progress_note = CASE WHEN $5::text IS NULL THEN t.progress_note ELSE $5 END
           FROM old
          WHERE t.id = old.id AND old.attempt_id = $2 AND old.status IN ('claimed', 'running')
         RETURNING t.id, t.type, t.tenant, t.project, t.request_id, t.workflow_id, t.attempt,
                   old.status AS before
       )
       SELECT old.status AS found, u.* FROM old LEFT JOIN u ON true`,
      [req.id, req.attemptId, ms(req.now), req.progress ?? null, note],
      "touch",
    );
    const row = res.rows[0];
    if (!row) return { ok: false, status: null };
    if (row.before === null || row.before === undefined) return { ok: false, status: row.found };
    return {
      ok: true,
      status: "running",
      movedToRunning: row.before === "claimed",
      task: toRef(row),
    };
  }

  async heartbeatMany(items: AttemptRef[], now: number): Promise<string[]> {
    this.ensureOpen();
    if (items.length === 0) return [];
    const res = await this.q<{ id: string }>(
      "heartbeat",
      // Ownership inside a CASE, as in exchange() (007): each row by primary key, never a walk
      // of tasks_active per batch (see docs/architecture.md, "The PostgreSQL store").
      `UPDATE ${this.s}.tasks t SET lease_expires_at = $3 + t.lease_ms, updated_at = $3
         FROM unnest($1::text[], $2::text[]) AS h(id, attempt_id)
        WHERE t.id = h.id AND t.attempt_id = h.attempt_id AND CASE WHEN t.${ACTIVE} THEN true END
       RETURNING t.id`,
      [items.map((i) => i.id), items.map((i) => i.attemptId), ms(now)],
      "heartbeat",
    );
    const alive = new Set(res.rows.map((r) => r.id));
    return items.filter((i) => !alive.has(i.id)).map((i) => i.id);
  }

  // ---------------------------------------------------------------- state changes

  async cancel(
    target: { ids: string[] } | { filter: TaskFilter },
    reason: string,
    now: number,
  ): Promise<TaskChange[]> {
    this.ensureOpen();
    let where: string[];
    let params: unknown[];
    if ("ids" in target) {
      if (target.ids.length === 0) return [];
      where = [`id = ANY($1::text[])`];
      params = [target.ids];
    } else {
      ({ where, params } = filterSql({ ...target.filter, cursor: undefined }, dialect, false));
    }
    const reasonAt = `$${params.length + 1}`;
    const nowAt = `$${params.length + 2}`;
    params.push(reason, ms(now));
    const sql = `UPDATE ${this.s}.tasks SET status = 'cancelled', error = ${reasonAt},
        completed_at = ${nowAt}, updated_at = ${nowAt}, lease_expires_at = NULL
      WHERE ${[...where, NOT_TERMINAL].join(" AND ")}
      RETURNING ${CHANGE_COLUMNS}, has_dependents`;
    return this.tx("cancel", async (c) => {
      const rows = (await this.run<ChangeRow & { has_dependents: boolean }>(c, sql, params)).rows;
      const changes = rows.map(toChange);
      for (const r of rows) {
        if (r.has_dependents) {
          changes.push(
            ...(await this.cancelDependents(c, r.id, `dependency ${r.id} was cancelled`, now)),
          );
        }
      }
      // Waiters and agents elsewhere learn of the end now rather than at their next poll.
      if (changes.length) await this.notify(c);
      return changes;
    });
  }

  private async cancelDependents(c: Queryable, id: string, reason: string, now: number) {
    const res = await this.run<ChangeRow>(
      c,
      `SELECT * FROM ${this.s}.cancel_dependents($1, $2, $3)`,
      [id, reason, ms(now)],
      "cascade",
    );
    return res.rows.map(toChange);
  }

  async rescueExpired(now: number, limit: number): Promise<TaskChange[]> {
    this.ensureOpen();
    return this.crash(
      // Skip rows another transaction holds: an exchange is settling them right now.
      `SELECT id FROM ${this.s}.tasks WHERE ${ACTIVE} AND lease_expires_at < $1
        ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [ms(now), "lease expired: the attempt stopped sending heartbeats", limit],
      now,
      "rescue",
    );
  }

  async recoverEngine(engineName: string, now: number): Promise<TaskChange[]> {
    this.ensureOpen();
    return this.crash(
      `SELECT id FROM ${this.s}.tasks WHERE ${ACTIVE} AND engine_name = $3 FOR UPDATE`,
      [ms(now), `engine ${engineName} restarted while the attempt was in flight`, engineName],
      now,
      "recover",
    );
  }

  /** Apply the crash policy to each in-flight task the selection finds ($1 now, $2 why). */
  private async crash(select: string, params: unknown[], now: number, what: string) {
    const sql = `UPDATE ${this.s}.tasks t SET
        status = CASE WHEN t.crash_count + 1 > t.max_crashes THEN 'failed_crash'
                      WHEN t.crash_policy = 'retry'
                        THEN CASE WHEN t.status = 'claimed' THEN 'pending' ELSE 'retrying' END
                      ELSE 'failed_crash' END,
        crash_count = t.crash_count + 1,
        error = CASE WHEN t.crash_count + 1 > t.max_crashes
                  THEN $2::text || '; crashed ' || (t.crash_count + 1) || ' times, more than maxCrashes '
                       || t.max_crashes
                  ELSE $2::text END,
        run_at = $1::bigint,
        completed_at = CASE WHEN t.crash_count + 1 > t.max_crashes OR t.crash_policy <> 'retry'
                         THEN $1::bigint ELSE NULL END,
        updated_at = $1::bigint, lease_expires_at = NULL
      WHERE t.id IN (${select}) AND t.${ACTIVE}
      RETURNING t.id, t.type, t.tenant, t.project, t.request_id, t.workflow_id, t.attempt,
                t.status, t.error, t.has_dependents`;
    return this.tx(what, async (c) => {
      const rows = (await this.run<ChangeRow & { has_dependents: boolean }>(c, sql, params)).rows;
      const changes = rows.map(toChange);
      for (const r of rows) {
        if (r.status === "failed_crash" && r.has_dependents) {
          changes.push(
            ...(await this.cancelDependents(c, r.id, `dependency ${r.id} ended failed_crash`, now)),
          );
        }
      }
      // Work given back, or tasks ended: other processes (dispatchers, waiters) look now.
      if (changes.length) await this.notify(c);
      return changes;
    });
  }

  // ---------------------------------------------------------------- workflows (see workflows.ts)

  createWorkflowRun(run: NewWorkflowRun) {
    this.ensureOpen();
    return this.wf.createWorkflowRun(run);
  }
  getWorkflowRun(id: string) {
    this.ensureOpen();
    return this.wf.getWorkflowRun(id);
  }
  loadWorkflow(id: string) {
    this.ensureOpen();
    return this.wf.loadWorkflow(id);
  }
  loadWorkflows(ids: string[]) {
    this.ensureOpen();
    return this.wf.loadWorkflows(ids);
  }
  listWorkflowRuns(filter: WorkflowRunFilter) {
    this.ensureOpen();
    return this.wf.listWorkflowRuns(filter);
  }
  appendCheckpoints(checkpoints: Checkpoint[]) {
    this.ensureOpen();
    return this.wf.appendCheckpoints(checkpoints);
  }
  writeWorkflows(starts: NewWorkflowRun[], checkpoints: Checkpoint[]) {
    this.ensureOpen();
    return this.wf.writeWorkflows(starts, checkpoints);
  }
  signalWorkflow(id: string, name: string, data: string | null, now: number) {
    this.ensureOpen();
    return this.wf.signalWorkflow(id, name, data, now);
  }
  cancelWorkflow(id: string, reason: string, now: number) {
    this.ensureOpen();
    return this.wf.cancelWorkflow(id, reason, now);
  }

  private async notify(c: Queryable): Promise<void> {
    await this.run(c, `SELECT pg_notify($1, $2)`, [this.channel, this.token], "notify");
  }

  async promoteDue(now: number): Promise<number> {
    this.ensureOpen();
    const res = await this.q<{ n: number }>(
      "promote",
      `WITH u AS (
         UPDATE ${this.s}.tasks SET status = 'pending', updated_at = $1
          WHERE status = 'retrying' AND run_at <= $1
         RETURNING 1
       ), note AS (SELECT pg_notify($2, $3) FROM (SELECT 1 FROM u LIMIT 1) AS one)
       SELECT (SELECT count(*) FROM u) AS n, (SELECT count(*) FROM note) AS notified`,
      [ms(now), this.channel, this.token],
      "promote",
    );
    return res.rows[0]!.n;
  }

  async nextRunAt(types: string[], now: number): Promise<number | null> {
    this.ensureOpen();
    if (types.length === 0) return null;
    const res = await this.q<{ at: number | null }>(
      "read",
      `SELECT min(run_at) AS at FROM ${this.s}.tasks
        WHERE type = ANY($1::text[]) AND ${READY} AND run_at > $2`,
      [types, ms(now)],
      "nextRunAt",
    );
    return res.rows[0]?.at ?? null;
  }

  async queuePosition(id: string, now: number): Promise<QueuePosition | null> {
    this.ensureOpen();
    const res = await this.q<{
      type: string;
      status: TaskStatus;
      ahead: number;
      deps_left: number;
      run_at: number;
    }>(
      "read",
      `SELECT t.type, t.status, t.deps_left, t.run_at, (SELECT count(*) FROM ${this.s}.tasks o
          WHERE o.type = t.type AND o.status IN ('pending', 'retrying') AND o.deps_left = 0
            AND o.run_at <= $1
            AND (o.priority > t.priority OR (o.priority = t.priority
              AND (o.run_at < t.run_at OR (o.run_at = t.run_at AND o.id < t.id))))) AS ahead
        FROM ${this.s}.tasks t WHERE t.id = $2`,
      [ms(now), id],
      "position",
    );
    const row = res.rows[0];
    return row ? toQueuePosition(row, now) : null;
  }

  async purge(before: number, statuses: TaskStatus[], scope: PurgeScope = {}): Promise<number> {
    this.ensureOpen();
    if (statuses.length === 0) return 0;
    const scopeSql =
      (scope.tenant !== undefined ? " AND t.tenant = $4" : "") +
      (scope.project !== undefined
        ? ` AND t.project = $${scope.tenant !== undefined ? 5 : 4}`
        : "");
    const scoped = [scope.tenant, scope.project].filter((v) => v !== undefined);
    let total = 0;
    let after = "";
    // One walk along the primary key in small batches: each transaction stays short, so
    // dispatch elsewhere is never held up, and no index on completed_at taxes every completion.
    for (;;) {
      const res = await this.q<{ n: number; last: string | null }>(
        "purge",
        `WITH batch AS (
           SELECT id FROM ${this.s}.tasks WHERE id > $3 ORDER BY id LIMIT 2000
         ), doomed AS (
           SELECT t.id FROM ${this.s}.tasks t JOIN batch b ON b.id = t.id
            WHERE t.completed_at < $1 AND t.status = ANY($2::text[])${scopeSql}
              FOR UPDATE OF t SKIP LOCKED
         ), gone AS (
           DELETE FROM ${this.s}.tasks WHERE id IN (SELECT id FROM doomed) RETURNING id
         ), edges AS (
           DELETE FROM ${this.s}.task_deps
            WHERE task_id IN (SELECT id FROM gone) OR depends_on IN (SELECT id FROM gone)
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM gone)::int AS n, (SELECT max(id) FROM batch) AS last,
                (SELECT count(*) FROM edges) AS e`,
        [ms(before), statuses, after, ...scoped],
        scopeSql ? undefined : "purge",
      );
      const row = res.rows[0]!;
      total += row.n;
      if (row.last === null) return total;
      after = row.last;
    }
  }

  async taskStats(query: TaskStatsQuery): Promise<TaskStatsResult> {
    this.ensureOpen();
    return postgresTaskStats(
      <R extends Record<string, unknown>>(what: string, text: string, values: unknown[]) =>
        this.q<R>(what, text, values),
      `${this.s}.tasks`,
      query,
    );
  }

  onExternalChange(listener: () => void): () => void {
    if (this.closed) return () => {};
    return this.notifier.add(listener);
  }
}

/**
 * The PostgreSQL store. Pass a URL (the store opens and closes its own pool of `poolSize`
 * connections) or your own `pg.Pool` (the store never ends it). Tables live in `schema`.
 */
export function postgres(
  urlOrPool: string | pg.Pool,
  opts: PostgresStoreOptions = {},
): PostgresStore {
  return new PostgresStore(urlOrPool, opts);
}
