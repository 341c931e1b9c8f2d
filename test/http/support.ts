import { silentLogger, type Engine, type EngineOptions } from "../../src/index.js";
import { createServer, type ServerOptions } from "../../src/http/index.js";
import { engineFactory, tempDir } from "../support/sqlite.js";

export interface Harness {
  engine: Engine;
  url: string;
  /** `fetch` against the server, JSON body in, with an optional bearer token. */
  call(
    path: string,
    init?: { method?: string; body?: unknown; token?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  close(): Promise<void>;
}

export type Call = Harness["call"];

/** `fetch` against a server at `url`: JSON bodies, an optional bearer token. */
export function caller(url: string): Call {
  return (path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token) headers["authorization"] = `Bearer ${init.token}`;
    let body: string | undefined;
    if (init.body !== undefined) {
      headers["content-type"] ??= "application/json";
      body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    }
    return fetch(url + path, {
      method: init.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
    });
  };
}

/** A real engine on a temp SQLite file behind a real server on an ephemeral port. */
export async function startServer(
  opts: ServerOptions = {},
  engineOpts: EngineOptions = {},
): Promise<Harness> {
  const dir = tempDir("loom-http-");
  const engines = engineFactory(dir);
  const engine = engines.make({ pollMs: 10, ...engineOpts });
  const server = createServer(engine, { logger: silentLogger, ...opts });
  const running = await server.listen(0);
  return {
    engine,
    url: running.url,
    call: caller(running.url),
    close: async () => {
      await running.close();
      await engines.closeAll();
      dir.cleanup();
    },
  };
}

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** A real SSE client: reads the body stream and parses `id:` / `event:` / `data:` lines. */
export class SseReader {
  readonly messages: SseMessage[] = [];
  comments = 0;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];
  response!: Response;

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const r = new SseReader();
    r.response = await fetch(url, { headers, signal: r.abort.signal });
    if (r.response.ok && r.response.body) void r.pump(r.response.body);
    return r;
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of body) {
        buf += decoder.decode(chunk, { stream: true });
        let at: number;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          this.parse(block);
        }
      }
    } catch {
      // aborted
    }
  }

  private parse(block: string): void {
    const msg: SseMessage = { event: "message", data: "" };
    let hasData = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        this.comments++;
        continue;
      }
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "id") msg.id = value;
      else if (field === "event") msg.event = value;
      else if (field === "data") {
        msg.data += (hasData ? "\n" : "") + value;
        hasData = true;
      }
    }
    if (hasData) this.messages.push(msg);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits for a message matching `pred` (already received or future). */
  async next(pred: (m: SseMessage) => boolean, timeoutMs = 3_000): Promise<SseMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching SSE message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}

export async function problemOf(res: Response): Promise<Record<string, unknown>> {
  if (!res.headers.get("content-type")?.startsWith("application/problem+json")) {
    throw new Error(`expected problem+json, got ${res.status} ${res.headers.get("content-type")}`);
  }
  return (await res.json()) as Record<string, unknown>;
}
