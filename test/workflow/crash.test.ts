import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEngine, sqlite, type Engine } from "../../src/index.js";
import { tempDir, until } from "../support/sqlite.js";

// Real processes killed with SIGKILL at each interesting point of a workflow; a new process
// (same engine name, so it recovers the dead one's attempts at boot) resumes the run. The ledger
// counts each step's side effect: a step checkpointed before the crash never runs again, the one
// interrupted before its checkpoint runs at most twice.

const tmp = tempDir("loom-wf-crash-");
const children: ChildProcess[] = [];
const observers: Engine[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  for (const e of observers.splice(0)) await e.close({ timeoutMs: 1000 });
});
afterAll(() => tmp.cleanup());

interface Worker {
  child: ChildProcess;
  exited: Promise<number | null>;
  result: () => string | null;
}

function spawnWorker(db: string, ledger: string, workflow: string, runId: string, crash: string) {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/fixtures/workflow-crash-worker.ts",
      db,
      ledger,
      workflow,
      runId,
      crash,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  let result: string | null = null;
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line.startsWith("result ")) result = line.slice(7);
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, exited, result: () => result } satisfies Worker;
}

const ledgerOf = (path: string): Record<string, number> => {
  const counts: Record<string, number> = {};
  if (!existsSync(path)) return counts;
  for (const line of readFileSync(path, "utf8").split("\n").filter(Boolean)) {
    counts[line] = (counts[line] ?? 0) + 1;
  }
  return counts;
};

function observer(db: string): Engine {
  const e = createEngine({ name: "observer", store: sqlite(db), retention: false });
  observers.push(e);
  return e;
}

async function killHard(w: Worker): Promise<void> {
  w.child.kill("SIGKILL");
  await w.exited;
}

/** Run to completion in a second process after the first died; returns its printed result. */
async function resume(db: string, ledger: string, workflow: string, runId: string) {
  const w = spawnWorker(db, ledger, workflow, runId, "none");
  const code = await w.exited;
  expect(code).toBe(0);
  return JSON.parse(w.result()!) as unknown;
}

describe("workflow crash recovery with SIGKILL", { timeout: 60_000 }, () => {
  it("before a step: earlier steps never run again", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "order", "o1", "before:charge");
    expect(await first.exited).toBeNull(); // killed by its signal
    expect(ledgerOf(ledger)).toEqual({ reserve: 1 });
    expect(await resume(db, ledger, "order", "o1")).toBe(111);
    expect(ledgerOf(ledger)).toEqual({ reserve: 1, charge: 1, ship: 1 });
  });

  it("after a step's side effect, before its checkpoint: that step runs twice, never more", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "order", "o2", "after-effect:charge");
    expect(await first.exited).toBeNull();
    expect(ledgerOf(ledger)).toEqual({ reserve: 1, charge: 1 });
    expect(await resume(db, ledger, "order", "o2")).toBe(111);
    expect(ledgerOf(ledger)).toEqual({ reserve: 1, charge: 2, ship: 1 });
  });

  it("during a sleep", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "sleeper", "s1", "none");
    const obs = observer(db);
    await until(
      async () =>
        (await (await obs.workflows.get("s1").catch(() => null))?.status())?.waitingFor?.kind ===
        "timer",
      20_000,
      20,
    );
    await killHard(first);
    expect(await resume(db, ledger, "sleeper", "s1")).toBe(11);
    expect(ledgerOf(ledger)).toEqual({ "before-sleep": 1, "after-sleep": 1 });
  });

  it("while waiting for a signal", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "signaller", "g1", "none");
    const obs = observer(db);
    await until(
      async () =>
        (await (await obs.workflows.get("g1").catch(() => null))?.status())?.waitingFor?.kind ===
        "signal",
      20_000,
      20,
    );
    await killHard(first);
    await (await obs.workflows.get("g1")).signal("go", 5);
    expect(await resume(db, ledger, "signaller", "g1")).toBe(6);
    expect(ledgerOf(ledger)).toEqual({ "before-signal": 1, "after-signal": 1 });
  });

  it("during a child workflow", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "parent", "p1", "none");
    const obs = observer(db);
    await until(
      async () =>
        (await (await obs.workflows.get("p1:2").catch(() => null))?.status())?.waitingFor?.kind ===
        "timer",
      20_000,
      20,
    );
    await killHard(first);
    expect(await resume(db, ledger, "parent", "p1")).toBe(1 + 22 + 1000);
    expect(ledgerOf(ledger)).toEqual({
      "parent-first": 1,
      "kid-first": 1,
      "kid-second": 1,
      "parent-last": 1,
    });
  });

  it("a step interrupted inside a child (side effect done, no checkpoint) runs at most twice", async () => {
    const db = tmp.file();
    const ledger = `${db}.ledger`;
    const first = spawnWorker(db, ledger, "parent", "p2", "after-effect:kid-first");
    expect(await first.exited).toBeNull();
    expect(await resume(db, ledger, "parent", "p2")).toBe(1 + 22 + 1000);
    expect(ledgerOf(ledger)).toEqual({
      "parent-first": 1,
      "kid-first": 2,
      "kid-second": 1,
      "parent-last": 1,
    });
  });
});
