import { randomBytes } from "node:crypto";
import pg from "pg";

/** The database the PostgreSQL suites use. */
export const PG_URL = process.env.LOOM_PG_URL ?? "postgres://root@127.0.0.1:5432/test";

let probe: Promise<string | null> | null = null;

/** `null` when PostgreSQL answers at `PG_URL`, else why not. Probed once per test file. */
function unreachable(): Promise<string | null> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return null;
    } catch (err) {
      return (err as Error).message || String(err);
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probe;
}

/**
 * Whether the PostgreSQL suites can run. When PostgreSQL is unreachable they are skipped with a
 * message, except under `CI=true`, where that is a failure: CI must never pass by skipping.
 */
export async function pgAvailable(): Promise<boolean> {
  const why = await unreachable();
  if (why === null) return true;
  const where = PG_URL.replace(/\/\/[^@/]*@/, "//");
  if (process.env.CI === "true") {
    throw new Error(
      `PostgreSQL is unreachable at ${where} (${why}) and CI=true: the PostgreSQL suites must run in CI. Set LOOM_PG_URL or start PostgreSQL.`,
    );
  }
  console.warn(
    `[loom tests] PostgreSQL is unreachable at ${where} (${why}); skipping the PostgreSQL suites. Set LOOM_PG_URL to run them.`,
  );
  return false;
}

/** A schema name unique to one test file (and run): `loom_test_<file>_<random>`. */
export function testSchema(file: string): string {
  const slug = file
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .slice(0, 30);
  return `loom_test_${slug}_${randomBytes(4).toString("hex")}`;
}

/** Run one statement on a short-lived connection (setup, inspection, cleanup). */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client(PG_URL);
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Drop a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^loom_test_\w+$/.test(schema)) throw new Error(`refusing to drop ${schema}`);
  await pgQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Poll `check` every `everyMs` until it holds; fail naming `what` after `timeoutMs`. */
export async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  what: string,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
