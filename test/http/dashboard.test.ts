import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, describe, expect, it } from "vitest";
import type { AuthEnv } from "../../src/http/auth.js";
import { DASHBOARD_CSP, dashboardRoutes } from "../../src/http/dashboard.js";
import { tempDir } from "../support/sqlite.js";

describe("dashboard file serving", () => {
  const dir = tempDir("loom-dash-");
  afterAll(() => dir.cleanup());
  mkdirSync(join(dir.dir, "assets"));
  writeFileSync(join(dir.dir, "index.html"), "<!doctype html><p>shell</p>");
  writeFileSync(join(dir.dir, "assets", "app-abc123.js"), "console.log(1)");
  writeFileSync(join(dir.dir, "secret.txt"), "not an asset");
  const app = new Hono<AuthEnv>();
  dashboardRoutes(app, dir.dir);
  const get = (path: string) => app.request(path);

  it("serves the shell with the CSP and no-cache", async () => {
    const res = await get("/");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("shell");
    expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("serves hashed assets as immutable, and nothing outside the assets folder", async () => {
    const res = await get("/assets/app-abc123.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(res.headers.get("cache-control")).toContain("immutable");
    expect((await get("/assets/..%2fsecret.txt")).status).toBe(404);
    expect((await get("/assets/%2e%2e/secret.txt")).status).toBe(404);
    expect((await get("/assets/missing.js")).status).toBe(404);
  });

  it("says how to build the dashboard when it was never built", async () => {
    const bare = new Hono<AuthEnv>();
    dashboardRoutes(bare, null);
    const res = await bare.request("/");
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("npm run build");
    expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
  });
});
