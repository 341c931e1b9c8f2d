import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = join(ROOT, "dist/cli/bin.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const stale = () => {
  try {
    return statSync(BIN).mtimeMs < newestMtime(join(ROOT, "src"));
  } catch {
    return true;
  }
};

/**
 * The tests spawn the BUILT binary. Rebuild once if any source is newer than dist (test files
 * run in parallel: a lock folder makes one of them build while the others wait).
 */
export async function ensureBuilt(): Promise<void> {
  if (!stale()) return;
  const lock = join(ROOT, "dist.build-lock");
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a run that died mid-build is stale after 5 minutes.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 300_000) rmdirSync(lock);
      } catch {
        // gone meanwhile
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (stale()) execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "ignore" });
  } finally {
    rmdirSync(lock);
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A clean environment: no store from the caller's shell, no colours. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.LOOM_DATABASE_URL;
  delete env.LOOM_SCHEMA;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Run `loom <args>` to the end. */
export function loom(
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined>; input?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      BIN,
      args,
      { cwd: opts.cwd, env: cliEnv(opts.env), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        if (err && code === null) return reject(new Error(err.message, { cause: err }));
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** `loom --json <args>`, expecting `code`; returns stdout parsed. */
export async function loomJson<T = Record<string, unknown>>(
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined> },
  code = 0,
): Promise<T> {
  const r = await loom(["--json", ...args], opts);
  if (r.code !== code) {
    throw new Error(`loom ${args.join(" ")} exited ${r.code} (wanted ${code}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as T;
}

/** A long-running `loom` (worker, dev, serve): its output is collected as it comes. */
export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when `pattern` appears on stdout or stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

export function startLoom(
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined> },
): Running {
  const child = spawn(BIN, args, { cwd: opts.cwd, env: cliEnv(opts.env), stdio: "pipe" });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: async (pattern, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(out) ?? pattern.exec(err);
        if (m) return m;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(
            `no ${String(pattern)} from loom ${args.join(" ")} (exit ${child.exitCode}); stdout: ${out}; stderr: ${err}`,
          );
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}
