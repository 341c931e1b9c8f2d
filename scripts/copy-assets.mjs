// Copies the non-TypeScript files the package needs at run time (SQL migrations) next to the
// compiled modules, so `new URL("./migrations/", import.meta.url)` resolves the same in src/ and dist/.
import { chmodSync, cpSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const stores = "src/stores";
for (const dialect of readdirSync(stores)) {
  const from = join(stores, dialect, "migrations");
  if (existsSync(from))
    cpSync(from, join("dist/stores", dialect, "migrations"), { recursive: true });
}

// The `loom` bin must be executable when run straight from dist (npm links it on install too).
if (existsSync("dist/cli/bin.js")) chmodSync("dist/cli/bin.js", 0o755);
