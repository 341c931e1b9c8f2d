import { afterEach, describe, expect, it } from "vitest";
import { createServer, issueAccessToken } from "../../src/http/index.js";
import { silentLogger } from "../../src/index.js";
import { engineFactory, tempDir } from "../support/sqlite.js";
import { problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

describe("HTTP auth from tokens stored by `loom token create`", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("is anonymous and single-tenant while the store holds no active token", async () => {
    h = await startServer();
    const res = await h.call("/api/v1/tasks", { body: { type: "job", tenant: "anyone" } });
    expect(res.status).toBe(201);
    expect(((await res.json()) as Json)["tenant"]).toBe("anyone");
  });

  it("requires a stored token once one exists, binds its tenant and project, honours revocation", async () => {
    h = await startServer();
    const { token, record } = await issueAccessToken(h.engine.store, {
      tenant: "acme",
      project: "p1",
      name: "ci",
    });
    expect(token).toMatch(/^loom_[\w-]{43}$/);

    const none = await h.call("/api/v1/tasks");
    expect(none.status).toBe(401);
    expect((await problemOf(none))["code"]).toBe("UNAUTHORIZED");
    expect((await h.call("/api/v1/tasks", { token: "loom_not-a-real-token" })).status).toBe(401);

    const created = await h.call("/api/v1/tasks", {
      token,
      body: { type: "job", tenant: "other", project: "x" },
    });
    expect(created.status).toBe(201);
    const task = (await created.json()) as Json;
    expect([task["tenant"], task["project"]]).toEqual(["acme", "p1"]);

    // Another tenant's token cannot see it (404, not 403).
    const globex = await issueAccessToken(h.engine.store, { tenant: "globex" });
    expect(
      (await h.call(`/api/v1/tasks/${String(task["id"])}`, { token: globex.token })).status,
    ).toBe(404);
    expect((await h.call(`/api/v1/tasks/${String(task["id"])}`, { token })).status).toBe(200);

    await h.engine.store.tokens!.revokeToken(record.id, Date.now());
    expect((await h.call("/api/v1/tasks", { token })).status).toBe(401);
    expect((await h.call("/api/v1/tasks", { token: globex.token })).status).toBe(200);
  });

  it("applies a stored token's scopes", async () => {
    h = await startServer();
    const reader = await issueAccessToken(h.engine.store, { tenant: "acme", scopes: ["read"] });
    expect((await h.call("/api/v1/tasks", { token: reader.token })).status).toBe(200);
    const post = await h.call("/api/v1/tasks", { token: reader.token, body: { type: "job" } });
    expect(post.status).toBe(403);
  });

  it("rejects bad token options with a ValidationError", async () => {
    h = await startServer();
    await expect(issueAccessToken(h.engine.store, { tenant: "" })).rejects.toThrow(/tenant/);
    await expect(
      issueAccessToken(h.engine.store, { tenant: "a", scopes: ["admin"] }),
    ).rejects.toThrow(/unknown scope admin/);
  });

  it("listens beyond loopback only when stored tokens exist, and then never falls back to anonymous", async () => {
    const dir = tempDir("loom-stored-");
    const engines = engineFactory(dir);
    try {
      const engine = engines.make();
      const server = createServer(engine, { logger: silentLogger });
      await expect(server.listen(0, "0.0.0.0")).rejects.toThrow(/refusing to listen on 0\.0\.0\.0/);

      const { record } = await issueAccessToken(engine.store, { tenant: "acme" });
      const running = await server.listen(0, "0.0.0.0");
      try {
        const url = `http://127.0.0.1:${running.port}/api/v1/tasks`;
        expect((await fetch(url)).status).toBe(401);
        await engine.store.tokens!.revokeToken(record.id, Date.now());
        // Every token revoked: a server exposed beyond loopback still refuses anonymous calls.
        expect((await fetch(url)).status).toBe(401);
      } finally {
        await running.close();
      }
    } finally {
      await engines.closeAll();
      dir.cleanup();
    }
  });
});
