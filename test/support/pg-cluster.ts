import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A throw-away PostgreSQL server of its own (initdb in a temporary folder, its own port), for
 * tests that must stop or crash the server: the shared one at LOOM_PG_URL serves every other
 * suite running in parallel and must never be restarted.
 */
export interface PgCluster {
  url: string;
  /** `pg_ctl restart`: "fast" disconnects everyone cleanly; "immediate" is a crash (WAL recovery). */
  restart(mode: "fast" | "immediate"): void;
  stop(): void;
}

/** The folder holding initdb and pg_ctl, or null. */
function binDir(): string | null {
  const fromConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const candidates = [fromConfig.status === 0 ? fromConfig.stdout.trim() : ""];
  if (existsSync("/usr/lib/postgresql")) {
    for (const v of readdirSync("/usr/lib/postgresql").sort().reverse()) {
      candidates.push(join("/usr/lib/postgresql", v, "bin"));
    }
  }
  return candidates.find((d) => d && existsSync(join(d, "initdb"))) ?? null;
}

/** Why a private cluster cannot be made here, or null when it can. */
export function pgClusterUnavailable(): string | null {
  if (!binDir()) return "no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin)";
  // initdb refuses to run as root; as root we run it as the `postgres` user.
  if (process.getuid?.() === 0 && spawnSync("id", ["-u", "postgres"]).status !== 0) {
    return "running as root and there is no postgres user to run initdb as";
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = binDir();
  if (!bin) throw new Error("no PostgreSQL binaries");
  const dir = mkdtempSync(join(tmpdir(), "loom-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const ids = (flag: string) =>
      Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, ids("-u"), ids("-g"));
  }
  chmodSync(dir, 0o700);
  const run = (tool: string, args: string[]) => {
    const cmd = asRoot ? "runuser" : join(bin, tool);
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, tool), ...args] : args;
    execFileSync(cmd, argv, { stdio: "pipe", cwd: dir });
  };
  const port = await freePort();
  run("initdb", ["-D", data, "-A", "trust", "-U", "root", "--no-sync", "-E", "UTF8"]);
  // Durability off: this server only exists for one test, and the test is about connections.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const ctl = (...args: string[]) =>
    run("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", ...args]);
  ctl("-o", options, "start");
  return {
    url: `postgres://root@127.0.0.1:${port}/postgres`,
    restart: (mode) => ctl("-m", mode, "-o", options, "restart"),
    stop: () => {
      try {
        ctl("-m", "immediate", "stop");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
