import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, loom, loomJson, startLoom } from "./support.js";

let dir: string;
beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "loom-cli-dev-"));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, unknown>;

describe("loom dev", () => {
  it("starts with zero set-up; its URL answers /api/v1/tasks with the example tasks; Ctrl-C exits 0", async () => {
    const cwd = mkdtempSync(join(dir, "dev-"));
    const dev = startLoom(["--json", "dev", "--port", "0"], { cwd });
    try {
      const m = await dev.waitFor(/"url": "(http:\/\/127\.0\.0\.1:\d+)"/);
      const url = m[1]!;
      const res = await fetch(`${url}/api/v1/tasks`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: { type: string }[] };
      const types = new Set(body.items.map((t) => t.type));
      for (const t of ["demo.echo", "demo.sleep", "demo.flaky", "demo.chat"]) {
        expect(types).toContain(t);
      }
      // The example lane, workflow and flow are there too, and the dashboard is served.
      const get = async (path: string) => (await fetch(`${url}${path}`)).json() as Promise<Json>;
      expect(await get("/api/v1/lanes/demo.llm")).toMatchObject({
        name: "demo.llm",
        concurrency: 2,
      });
      expect(await get("/api/v1/workflows")).toMatchObject({
        items: [expect.objectContaining({ name: "demo.onboarding" })],
      });
      expect(await get("/api/v1/flows")).toMatchObject({
        items: [expect.objectContaining({ name: "demo.fan-out" })],
      });
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<html");
      expect(existsSync(join(cwd, ".loom/loom.db"))).toBe(true);
      const docs = await fetch(`${url}/openapi.json`);
      expect(docs.status).toBe(200);
    } finally {
      dev.child.kill("SIGINT");
    }
    expect(await dev.exited).toBe(0);
  });

  it("prints the URL for people", async () => {
    const cwd = mkdtempSync(join(dir, "dev-"));
    const dev = startLoom(["dev", "--port", "0", "--no-examples"], { cwd });
    try {
      const m = await dev.waitFor(/dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//);
      expect((await fetch(`${m[1]}/api/v1/tasks`)).status).toBe(200);
    } finally {
      dev.child.kill("SIGTERM");
    }
    expect(await dev.exited).toBe(0);
  });

  it("a bad port is a usage error", async () => {
    const r = await loom(["dev", "--port", "http"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port: expected an integer/);
  });
});

describe("loom serve", () => {
  it("serves the API; once `loom token create` stored a token, requests need it", async () => {
    const cwd = mkdtempSync(join(dir, "serve-"));
    const refused = await loom(["serve", "--host", "0.0.0.0", "--port", "0"], { cwd });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without auth/);

    const serve = startLoom(["--json", "serve", "--port", "0"], { cwd });
    try {
      const url = (await serve.waitFor(/"url": "(http:\/\/127\.0\.0\.1:\d+)"/))[1]!;
      expect((await fetch(`${url}/api/v1/tasks`)).status).toBe(200);
      const { token } = await loomJson<{ token: string }>(
        ["token", "create", "--tenant", "acme", "--scopes", "read"],
        { cwd },
      );
      expect((await fetch(`${url}/api/v1/tasks`)).status).toBe(401);
      const ok = await fetch(`${url}/api/v1/tasks`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ok.status).toBe(200);
    } finally {
      serve.child.kill("SIGTERM");
    }
    expect(await serve.exited).toBe(0);
  });
});

describe("loom inspect --follow", () => {
  it("prints the task's live events until it ends", async () => {
    const cwd = mkdtempSync(join(dir, "follow-"));
    writeFileSync(
      join(cwd, "w.mjs"),
      `export default (e) => e.register("slow", async (t, ctx) => {
        await new Promise((r) => setTimeout(r, 300));
        await ctx.progress(50, "halfway");
        await new Promise((r) => setTimeout(r, 300));
        return { ok: 1 };
      });\n`,
    );
    const id = (await loom(["submit", "slow"], { cwd })).stdout.trim();
    const follow = startLoom(["inspect", id, "--follow"], { cwd });
    await follow.waitFor(/following live events/);
    const worker = startLoom(["worker", "w.mjs", "--poll-interval", "50ms"], { cwd });
    try {
      expect(await follow.exited).toBe(0);
      expect(follow.stdout()).toMatch(/task\.progress\s+running 50% halfway/);
      expect(follow.stdout()).toMatch(/task\.completed\s+completed/);
    } finally {
      worker.child.kill("SIGTERM");
    }
    expect(await worker.exited).toBe(0);
  });
});

describe("loom init and configuration precedence", () => {
  it("writes loom.config.json and a starter worker, refuses to overwrite without --force", async () => {
    const cwd = mkdtempSync(join(dir, "init-"));
    const out = await loomJson<{ config: string; worker: string }>(["init"], { cwd });
    expect(JSON.parse(readFileSync(out.config, "utf8"))).toEqual({
      db: ".loom/loom.db",
      worker: "./loom.worker.mjs",
    });
    expect(readFileSync(out.worker, "utf8")).toContain("export default function setup(engine)");
    const again = await loom(["init"], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exist; use --force/);
    expect((await loom(["init", "--force"], { cwd })).code).toBe(0);

    // The starter module works: a worker runs it and submit --wait gets the greeting.
    const worker = startLoom(["worker", "--poll-interval", "50ms"], { cwd });
    try {
      await worker.waitFor(/running/);
      const done = await loomJson<{ result: unknown }>(
        ["submit", "hello", '{"name":"Ada"}', "--wait"],
        { cwd },
      );
      expect(done.result).toEqual({ greeting: "Hello, Ada!" });
    } finally {
      worker.child.kill("SIGTERM");
    }
    expect(await worker.exited).toBe(0);
  });

  it("flags beat the environment, which beats the config file, which beats the default", async () => {
    const cwd = mkdtempSync(join(dir, "cfg-"));
    const where = async (args: string[], env: Record<string, string> = {}) =>
      String((await loomJson(["migrate", ...args], { cwd, env }))["store"]);
    expect(await where([])).toBe(`SQLite ${join(cwd, ".loom/loom.db")}`);
    writeFileSync(join(cwd, "loom.config.json"), JSON.stringify({ db: "file.db" }));
    expect(await where([])).toBe(`SQLite ${join(cwd, "file.db")}`);
    expect(await where([], { LOOM_DATABASE_URL: "sqlite:env.db" })).toBe(
      `SQLite ${join(cwd, "env.db")}`,
    );
    expect(await where(["--db", "flag.db"], { LOOM_DATABASE_URL: "sqlite:env.db" })).toBe(
      `SQLite ${join(cwd, "flag.db")}`,
    );
    writeFileSync(join(cwd, "other.json"), JSON.stringify({ db: "sqlite:other.db" }));
    expect(await where(["--config", "other.json"])).toBe(`SQLite ${join(cwd, "other.db")}`);

    writeFileSync(join(cwd, "broken.json"), "{");
    const broken = await loom(["--config", "broken.json", "list"], { cwd });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/broken\.json is not valid JSON/);
    const scheme = await loom(["--db", "mysql://x/y", "list"], { cwd });
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/unsupported database URL scheme/);
  });
});
