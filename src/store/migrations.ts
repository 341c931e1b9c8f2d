import { readdirSync, readFileSync } from "node:fs";
import { ValidationError } from "../core/errors.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Reads `NNN_name.sql` files from a folder, in order. Numbers must run 1, 2, 3… without gaps or
 * repeats, so a migration that was renamed or lost is caught before anything is applied.
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
    const prev = i === 0 ? 0 : migrations[i - 1]!.version;
    if (m.version <= prev) {
      throw new ValidationError(
        `migrations must be numbered in increasing order without duplicates; found ${m.version} after ${prev}`,
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
