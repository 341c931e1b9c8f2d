import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../core/engine.js";
import { buildApp, type ServerOptions } from "./app.js";
import type { AuthEnv } from "./auth.js";

export type { ServerOptions, HttpLimits } from "./app.js";
export type { AuthOptions, TokenConfig, Scope, Principal } from "./auth.js";
export { sha256Hex as hashToken } from "./auth.js";
export type { Problem } from "./errors.js";
export { renderDocs } from "./docs.js";
export { issueAccessToken, tokenStoreOf, type IssueTokenOptions } from "./stored-tokens.js";
export type { AccessToken, TokenStore } from "../store/tokens.js";

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface LoomServer {
  /** The Hono app: mount it in another server, or call `app.fetch` yourself. */
  app: OpenAPIHono<AuthEnv>;
  fetch(req: Request): Response | Promise<Response>;
  /** Listen on `host` (default 127.0.0.1) and `port` (default 7070; 0 picks a free one). */
  listen(port?: number, host?: string): Promise<RunningServer>;
  /** Stops buffering events for SSE resume (`listen`'s `close()` does this too). */
  close(): void;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export const DEFAULT_PORT = 7070;
export const DEFAULT_HOST = "127.0.0.1";

/**
 * The HTTP API of an engine: REST under `/api/v1`, live events at `/api/v1/events`, the OpenAPI
 * document at `/openapi.json` and a reference at `/docs`.
 */
export function createServer(engine: Engine, opts: ServerOptions = {}): LoomServer {
  const { app, hub, stored } = buildApp(engine, opts);
  const logger = opts.logger ?? engine.logger;
  const fetch = (req: Request) => app.fetch(req);

  const listen = (port = DEFAULT_PORT, host = DEFAULT_HOST): Promise<RunningServer> => {
    if (opts.auth || !stored) return start(port, host, Boolean(opts.auth));
    // Stored tokens guard the API once one exists; beyond loopback they must, for good.
    return stored.store.hasActiveTokens().then((active) => {
      if (active && !LOOPBACK.has(host)) stored.allowAnonymous = false;
      return start(port, host, active);
    });
  };

  const start = (port: number, host: string, guarded: boolean): Promise<RunningServer> => {
    if (!guarded && !LOOPBACK.has(host)) {
      return Promise.reject(
        new Error(
          `refusing to listen on ${host} without auth: configure tokens (or create one with \`loom token create\`), or use 127.0.0.1`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const server = serve({ fetch, port, hostname: host }, (info: AddressInfo) => {
        server.off("error", reject);
        const shown = info.family === "IPv6" ? `[${info.address}]` : info.address;
        const url = `http://${shown}:${info.port}`;
        if (!guarded) {
          logger.warn(
            { url },
            "loom http: no auth configured; listening on loopback only, unauthenticated",
          );
        }
        logger.info({ url }, "loom http: listening");
        let closing: Promise<void> | null = null;
        resolve({
          url,
          port: info.port,
          close: () =>
            (closing ??= new Promise<void>((done) => {
              hub.close();
              server.close(() => done());
              if ("closeAllConnections" in server) server.closeAllConnections();
            })),
        });
      });
      server.once("error", reject);
    });
  };

  return { app, fetch, listen, close: () => hub.close() };
}
