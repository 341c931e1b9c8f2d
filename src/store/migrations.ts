import { readdirSync, readFileSync } from "node:fs";
import { ValidationError } from "../core/errors.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Reads `NNN_name.sql` files from a folder, in order. Numbers must be unique and increasing;
 * gaps are allowed because features reserve their numbers ahead (003 lanes … 006 access tokens)
 * and may land in any order. Each store records every applied number, so a late lower number is
 * still applied once.
 */
export function loadMigrations(dir: URL): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const migrations = files.map((file) => {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!match) throw new ValidationError(`migration file name must be NNN_name.sql: ${file}`);
    return {
      version: Number(match[1]),
      name: match[2]!,
      sql: readFileSync(new URL(file, dir), "utf8"),
    };
  });
  // Numbers are reserved per feature (003 lanes, 004 workflows, ...), so a branch may have gaps;
  // each applied version is recorded, so order and uniqueness are what matter.
  migrations.forEach((m, i) => {
    const before = migrations[i - 1];
    if (m.version < 1 || (before && m.version <= before.version)) {
      throw new ValidationError(
        `migration numbers must be unique and start at 1; found ${m.version} after ${before?.version ?? "none"}`,
      );
    }
  });
  return migrations;
}

/** Identifiers (schema names, prefixes) are validated once, never bound: keep them plain. */
export function assertIdentifier(value: string, what: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/i.test(value)) {
    throw new ValidationError(
      `must be a plain SQL identifier (letters, digits, _), got ${JSON.stringify(value)}`,
      what,
    );
  }
  return value;
}
