import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { usageError } from "./errors.js";

export const CONFIG_FILE = "loom.config.json";
export const DEFAULT_DB = ".loom/loom.db";

/** What `loom.config.json` may hold (every field optional). */
export interface ConfigFile {
  /** A PostgreSQL URL or a SQLite path (`sqlite:PATH` or a plain path), relative to the file. */
  db?: string;
  /** PostgreSQL schema (default `loom`). */
  schema?: string;
  /** The worker module `loom worker` loads when none is given. */
  worker?: string;
  /** Engine name of `loom worker` (default `<hostname>:<pid>`). */
  name?: string;
  concurrency?: number;
  host?: string;
  port?: number;
}

/** The options every command accepts (commander's global options). */
export interface GlobalFlags {
  db?: string;
  schema?: string;
  config?: string;
  json?: boolean;
  verbose?: boolean;
  color?: boolean;
}

export type StoreConfig =
  | { kind: "sqlite"; path: string; source: string }
  | { kind: "postgres"; url: string; schema: string | undefined; source: string };

export interface ResolvedConfig {
  store: StoreConfig;
  file: ConfigFile;
  /** Folder the config file is in (relative paths in it resolve from there), or the cwd. */
  baseDir: string;
  filePath: string | null;
}

/** Reads `--config`, or `loom.config.json` in the cwd if it exists. */
export function readConfigFile(
  flags: GlobalFlags,
  cwd = process.cwd(),
): {
  file: ConfigFile;
  path: string | null;
} {
  const path = flags.config
    ? resolve(cwd, flags.config)
    : existsSync(resolve(cwd, CONFIG_FILE))
      ? resolve(cwd, CONFIG_FILE)
      : null;
  if (!path) return { file: {}, path: null };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw usageError(`config file ${path} must hold a JSON object`);
  }
  const file = parsed as Record<string, unknown>;
  for (const key of ["db", "schema", "worker", "name", "host"] as const) {
    if (file[key] !== undefined && typeof file[key] !== "string") {
      throw usageError(`config file ${path}: "${key}" must be a string`);
    }
  }
  for (const key of ["concurrency", "port"] as const) {
    if (file[key] !== undefined && !Number.isInteger(file[key])) {
      throw usageError(`config file ${path}: "${key}" must be an integer`);
    }
  }
  return { file: file, path };
}

/**
 * Where the store is: `--db`, else `LOOM_DATABASE_URL`, else the config file's `db`, else
 * `.loom/loom.db` in the cwd. `postgres://` / `postgresql://` select PostgreSQL; `sqlite:PATH`
 * or a plain path select SQLite. The schema: `--schema`, `LOOM_SCHEMA`, the file's `schema`.
 */
export function resolveConfig(
  flags: GlobalFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): ResolvedConfig {
  const { file, path } = readConfigFile(flags, cwd);
  const baseDir = path ? resolve(path, "..") : cwd;
  let db: string;
  let source: string;
  let dbBase = cwd;
  if (flags.db !== undefined) {
    [db, source] = [flags.db, "--db"];
  } else if (env.LOOM_DATABASE_URL) {
    [db, source] = [env.LOOM_DATABASE_URL, "LOOM_DATABASE_URL"];
  } else if (file.db !== undefined) {
    [db, source, dbBase] = [file.db, path!, baseDir];
  } else {
    [db, source] = [DEFAULT_DB, "default"];
  }
  const schema = flags.schema ?? (env.LOOM_SCHEMA || undefined) ?? file.schema;
  return { store: parseDb(db, schema, source, dbBase), file, baseDir, filePath: path };
}

export function parseDb(
  db: string,
  schema: string | undefined,
  source: string,
  base: string,
): StoreConfig {
  if (db.trim() === "") throw usageError(`the database (${source}) is empty`);
  if (/^postgres(ql)?:\/\//i.test(db)) return { kind: "postgres", url: db, schema, source };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db)) {
    throw usageError(
      `unsupported database URL scheme in ${source}: use postgres://, postgresql://, sqlite:PATH or a file path`,
    );
  }
  const path = db.startsWith("sqlite:") ? db.slice("sqlite:".length) : db;
  if (path === "") throw usageError(`sqlite: needs a path (${source})`);
  return { kind: "sqlite", path: path === ":memory:" ? path : resolve(base, path), source };
}

/** Where the store is, for people: never the password of a URL. */
export function describeStore(store: StoreConfig): string {
  if (store.kind === "sqlite") return `SQLite ${store.path}`;
  const url = store.url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
  return `PostgreSQL ${url}${store.schema ? ` (schema ${store.schema})` : ""}`;
}

export const defaultEngineName = () => `${hostname()}:${process.pid}`;
