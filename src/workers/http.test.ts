import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine, sqlite, type Engine } from "../index.js";
import { http, parseRetryAfter } from "./index.js";

interface Hit {
  method: string;
  path: string;
  at: number;
  body: string;
  authorization: string | undefined;
  closed: boolean;
}

let dir: string;
let engine: Engine;
let server: Server;
let base: string;
let hits: Hit[];

/** Responses by path; a handler that never answers leaves the request hanging. */
const routes: Record<string, (hit: Hit, n: number, res: ServerResponse) => void> = {
  "/json": (hit, _n, res) => {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify({ ok: true, method: hit.method, body: hit.body }));
  },
  "/text": (_hit, _n, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("plain words");
  },
  "/empty": (_hit, _n, res) => {
    res.writeHead(204);
    res.end();
  },
  "/flaky": (_hit, n, res) => {
    if (n === 1) {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("try later");
    } else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ tries: n }));
    }
  },
  "/down": (_hit, _n, res) => {
    res.writeHead(503);
    res.end("still down");
  },
  "/limited": (_hit, n, res) => {
    if (n === 1) {
      res.writeHead(429, { "retry-after": "1" });
      res.end("slow down");
    } else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ tries: n }));
    }
  },
  "/missing": (_hit, _n, res) => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("no such thing; token=abcd1234secret");
  },
  "/hang": () => {},
  "/trickle": (_hit, _n, res) => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.write("the start of a body that never ends");
  },
};

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  let body = "";
  req.on("data", (d: Buffer) => (body += d.toString()));
  req.on("end", () => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const hit: Hit = {
      method: req.method ?? "",
      path,
      at: Date.now(),
      body,
      authorization: req.headers.authorization,
      closed: false,
    };
    hits.push(hit);
    res.on("close", () => (hit.closed = true));
    const route = routes[path];
    if (!route) {
      res.writeHead(500);
      res.end();
      return;
    }
    route(hit, hits.filter((h) => h.path === path).length, res);
  });
}

beforeEach(async () => {
  hits = [];
  dir = mkdtempSync(join(tmpdir(), "loom-http-"));
  engine = createEngine({ name: "t", store: sqlite(join(dir, "x.db")) });
  server = createServer(onRequest);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await engine.close({ timeoutMs: 5_000 });
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function run(type: string, input?: unknown) {
  await engine.start();
  return engine.wait(await engine.submit({ type, input }), { timeoutMs: 10_000 });
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const fast = { baseMs: 10, maxMs: 50 };

describe("http", () => {
  it("returns a JSON response parsed", async () => {
    engine.register("get", http({ url: `${base}/json` }));
    const task = await run("get");
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ ok: true, method: "GET", body: "" });
  });

  it("sends the input as a JSON body and computes the URL and headers from the task", async () => {
    engine.register(
      "post",
      http<{ path: string; n: number }>({
        url: (t) => `${base}${t.input.path}`,
        method: "POST",
        headers: (t) => ({ "x-n": String(t.input.n) }),
      }),
    );
    const task = await run("post", { path: "/json", n: 7 });
    expect(task.result).toEqual({
      ok: true,
      method: "POST",
      body: JSON.stringify({ path: "/json", n: 7 }),
    });
  });

  it("returns text for other content types and nothing for an empty body", async () => {
    engine.register("text", http({ url: `${base}/text` }));
    engine.register("empty", http({ url: `${base}/empty`, method: "DELETE", body: null }));
    expect((await run("text")).result).toBe("plain words");
    const empty = await run("empty");
    expect(empty.status).toBe("completed");
    expect(empty.result).toBeNull();
  });

  it("retries a 503 and succeeds", async () => {
    engine.register("flaky", http({ url: `${base}/flaky`, backoff: fast }));
    const task = await run("flaky");
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ tries: 2 });
    expect(task.attempt).toBe(1);
  });

  it("fails with a retryable HttpError when retries run out", async () => {
    engine.register("down", http({ url: `${base}/down`, retries: 2, backoff: fast }), {
      maxRetries: 0,
    });
    const task = await run("down");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("HttpError");
    expect(task.error).toContain("HTTP 503");
    expect(task.error).toContain("still down");
    expect(hits.filter((h) => h.path === "/down")).toHaveLength(3);
  });

  it("honours Retry-After on a 429", async () => {
    engine.register("limited", http({ url: `${base}/limited`, backoff: fast }));
    const task = await run("limited");
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ tries: 2 });
    const [first, second] = hits.filter((h) => h.path === "/limited");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it("fails a 404 at once, without retries, redacting the body and the URL", async () => {
    const url = new URL(`${base}/missing`);
    url.username = "alice";
    url.password = "s3cret-pw";
    engine.register("missing", http({ url: url.href }), { maxRetries: 0 });
    const task = await run("missing");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("HTTP 404");
    expect(task.error).toContain("no such thing");
    expect(task.error).not.toContain("abcd1234secret");
    expect(task.error).not.toContain("s3cret-pw");
    expect(task.error).not.toContain("alice");
    const missing = hits.filter((h) => h.path === "/missing");
    expect(missing).toHaveLength(1);
    // The credentials went as Basic auth instead.
    expect(missing[0]!.authorization).toBe(
      `Basic ${Buffer.from("alice:s3cret-pw").toString("base64")}`,
    );
  });

  it("fails promptly on an error response whose body never ends", async () => {
    engine.register("trickle", http({ url: `${base}/trickle`, timeoutMs: 300 }), {
      maxRetries: 0,
    });
    const started = Date.now();
    const task = await run("trickle");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("HTTP 404");
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("retries network errors and then fails with HttpNetworkError", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    engine.register(
      "refused",
      http({ url: `http://127.0.0.1:${port}/`, retries: 1, backoff: fast }),
      {
        maxRetries: 0,
      },
    );
    const task = await run("refused");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("HttpNetworkError");
    expect(task.error).toContain("failed after 2 tries");
  });

  it("gives up on a request that outlives its timeoutMs", async () => {
    engine.register("hang", http({ url: `${base}/hang`, timeoutMs: 200, retries: 0 }), {
      maxRetries: 0,
    });
    const task = await run("hang");
    expect(task.status).toBe("failed");
    expect(task.error).toContain("timed out after 1 try");
    await until(() => hits.length === 1 && hits[0]!.closed);
  });

  it("aborts the request in flight when the task is cancelled", async () => {
    engine.register("hang", http({ url: `${base}/hang` }));
    await engine.start();
    const id = await engine.submit({ type: "hang" });
    await until(() => hits.length === 1);
    const cancelledAt = Date.now();
    await engine.cancel(id);
    await until(() => hits[0]!.closed, 2_000);
    expect(Date.now() - cancelledAt).toBeLessThan(1_000);
    expect((await engine.wait(id, { timeoutMs: 5_000 })).status).toBe("cancelled");
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("3", now)).toBe(3_000);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:10 GMT", now)).toBe(10_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
