import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { engineFactory, tempDir, until } from "../support/sqlite.js";

const tmp = tempDir("loom-crash-");
const engines = engineFactory(tmp);
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  await engines.closeAll();
});
afterAll(() => tmp.cleanup());

/** Start a real worker process on `db`; resolves with the ids it reports as started. */
function spawnWorker(db: string, name: string, crashPolicy: "fail" | "retry", leaseMs: number) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/fixtures/crash-worker.ts", db, name, crashPolicy, String(leaseMs)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  const started: string[] = [];
  let ready = false;
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "ready") ready = true;
    const m = /^started (\S+) /.exec(line);
    if (m) started.push(m[1]!);
  });
  return { child, started, isReady: () => ready };
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("a worker process killed with SIGKILL mid-task", () => {
  it("is recovered by recoverCrashed() when its engine name boots again (crash policy fail)", async () => {
    const db = tmp.file();
    const submitter = engines.make({ path: db, name: "submitter" });
    const id = await submitter.submit({ type: "slow" });
    const worker = spawnWorker(db, "daemon-a", "fail", 60_000);
    await until(() => worker.started.includes(id), 15_000);
    expect(await submitter.get(id)).toMatchObject({
      status: "running",
      engineName: "daemon-a",
      attempt: 1,
    });
    await killHard(worker.child);
    // The lease is a minute long: without recovery the row would stay running.
    expect((await submitter.get(id)).status).toBe("running");

    const reborn = engines.make({ path: db, name: "daemon-a" });
    reborn.register("slow", () => "never", { crashPolicy: "fail" });
    expect(await reborn.recoverCrashed()).toBe(1);
    const task = await submitter.get(id);
    expect(task).toMatchObject({ status: "failed_crash", crashCount: 1 });
    expect(task.error).toMatch(/daemon-a restarted/);
  });

  it("boot recovery touches only its own engine name", async () => {
    const db = tmp.file();
    const submitter = engines.make({ path: db, name: "submitter" });
    const id = await submitter.submit({ type: "slow" });
    const worker = spawnWorker(db, "daemon-b", "fail", 60_000);
    await until(() => worker.started.includes(id), 15_000);
    const other = engines.make({ path: db, name: "someone-else" });
    expect(await other.recoverCrashed()).toBe(0);
    expect((await submitter.get(id)).status).toBe("running");
  });

  it("is rescued by lease expiry in another live engine and run again (crash policy retry)", async () => {
    const db = tmp.file();
    const survivor = engines.make({ path: db, name: "survivor", maintenanceMs: 50 });
    // Per-type options are written on the row at submit: register before submitting.
    const ran: number[] = [];
    survivor.register(
      "slow",
      (task) => {
        ran.push(task.attempt);
        return "rescued";
      },
      { crashPolicy: "retry", leaseMs: 500 },
    );
    const id = await survivor.submit({ type: "slow" });
    const worker = spawnWorker(db, "daemon-c", "retry", 500);
    await until(() => worker.started.includes(id), 15_000);
    await killHard(worker.child);
    await survivor.start();
    const task = await survivor.wait(id, { timeoutMs: 10_000 });
    expect(task).toMatchObject({
      status: "completed",
      result: "rescued",
      crashCount: 1,
      attempt: 2,
    });
    expect(ran).toEqual([2]);
  });

  it("under crash policy fail, lease expiry marks it failed_crash rather than running it again", async () => {
    const db = tmp.file();
    const watcher = engines.make({ path: db, name: "watcher", maintenanceMs: 50 });
    let ran = false;
    watcher.register("slow", () => void (ran = true), { crashPolicy: "fail", leaseMs: 400 });
    const id = await watcher.submit({ type: "slow" });
    const worker = spawnWorker(db, "daemon-d", "fail", 400);
    await until(() => worker.started.includes(id), 15_000);
    await killHard(worker.child);
    await watcher.start();
    const task = await watcher.wait(id, { timeoutMs: 10_000 });
    expect(task.status).toBe("failed_crash");
    expect(task.error).toMatch(/lease expired/);
    expect(ran).toBe(false);
  });

  it("a task that crashes more than maxCrashes times is dead-lettered whatever the policy", async () => {
    const db = tmp.file();
    const watcher = engines.make({ path: db, name: "watcher" });
    watcher.register("slow", () => "unused", { crashPolicy: "retry" });
    const id = await watcher.submit({ type: "slow" });
    for (let crash = 1; crash <= 4; crash++) {
      const worker = spawnWorker(db, `poison-${crash}`, "retry", 60_000);
      await until(() => worker.started.includes(id) || !!worker.started.length, 15_000);
      await killHard(worker.child);
      const reborn = engines.make({ path: db, name: `poison-${crash}` });
      expect(await reborn.recoverCrashed()).toBe(1);
      const task = await watcher.get(id);
      expect(task.crashCount).toBe(crash);
      expect(task.status).toBe(crash <= 3 ? "retrying" : "failed_crash");
      expect(task.maxRetries).toBe(2);
    }
    expect((await watcher.get(id)).error).toMatch(/more than maxCrashes 3/);
  });
});
