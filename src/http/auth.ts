import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { AccessToken, TokenStore } from "../store/tokens.js";
import { httpProblem } from "./errors.js";

export const SCOPES = ["read", "write", "agent"] as const;
export type Scope = (typeof SCOPES)[number];

/** One bearer token, bound to a tenant (and optionally a project). Give `token` or its hash. */
export interface TokenConfig {
  /** The token in clear. Prefer `tokenHash` in configuration files. */
  token?: string;
  /** sha256 of the token, lower-case hex. */
  tokenHash?: string;
  tenant: string;
  project?: string;
  /** Default: all of read, write and agent. */
  scopes?: Scope[];
}

export interface AuthOptions {
  tokens: TokenConfig[];
}

/** Who is calling. Without auth configured, the caller is trusted and unbound. */
export interface Principal {
  /** Set when the request carries a token: overrides every tenant in bodies and queries. */
  tenant: string | undefined;
  project: string | undefined;
  scopes: ReadonlySet<Scope>;
  /** A stable, non-secret key for per-token limits (a hash prefix, or "anonymous"). */
  key: string;
}

export const ANONYMOUS: Principal = {
  tenant: undefined,
  project: undefined,
  scopes: new Set(SCOPES),
  key: "anonymous",
};

export const sha256Hex = (s: string): string => createHash("sha256").update(s).digest("hex");

/** Checks the configuration once and indexes tokens by their hash. */
export function tokenTable(auth: AuthOptions): Map<string, Principal> {
  if (!auth || !Array.isArray(auth.tokens)) throw new TypeError("auth.tokens must be an array");
  const table = new Map<string, Principal>();
  auth.tokens.forEach((t, i) => {
    const at = `auth.tokens[${i}]`;
    if ((t.token === undefined) === (t.tokenHash === undefined)) {
      throw new TypeError(`${at}: give exactly one of token and tokenHash`);
    }
    if (t.token !== undefined && (typeof t.token !== "string" || t.token.length < 8)) {
      throw new TypeError(`${at}.token must be a string of at least 8 characters`);
    }
    if (t.tokenHash !== undefined && !/^[0-9a-f]{64}$/i.test(t.tokenHash)) {
      throw new TypeError(`${at}.tokenHash must be a sha256 hex digest`);
    }
    if (typeof t.tenant !== "string" || t.tenant === "") {
      throw new TypeError(`${at}.tenant is required`);
    }
    const scopes = t.scopes ?? [...SCOPES];
    for (const s of scopes) {
      if (!SCOPES.includes(s)) throw new TypeError(`${at}.scopes: unknown scope ${String(s)}`);
    }
    const hash = (t.tokenHash ?? sha256Hex(t.token!)).toLowerCase();
    table.set(hash, {
      tenant: t.tenant,
      project: t.project,
      scopes: new Set(scopes),
      key: hash.slice(0, 16),
    });
  });
  return table;
}

export type AuthEnv = { Variables: { principal: Principal } };

/** A principal from a token stored by `loom token create`. */
export function storedPrincipal(t: AccessToken, hash: string): Principal {
  return {
    tenant: t.tenant,
    project: t.project ?? undefined,
    scopes: new Set(t.scopes.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s))),
    key: hash.slice(0, 16),
  };
}

/**
 * Tokens stored by `loom token create`, looked up on every request (one indexed read), so a
 * revocation applies at once. While none is active, callers are anonymous, unless the server
 * listens beyond loopback: then `allowAnonymous` is turned off for good.
 */
export class StoredTokens {
  allowAnonymous = true;
  constructor(readonly store: TokenStore) {}
}

/** Where principals come from: a configured table, the store's tokens, or nobody (`null`). */
export type TokenSource = Map<string, Principal> | StoredTokens | null;

/** Resolves the bearer token to a principal; 401 without a known token. */
export function authenticate(source: TokenSource): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    if (!source) {
      c.set("principal", ANONYMOUS);
      return next();
    }
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    let principal: Principal | undefined;
    if (source instanceof Map) {
      principal = match ? source.get(sha256Hex(match[1]!)) : undefined;
    } else if (match) {
      const hash = sha256Hex(match[1]!);
      const row = await source.store.findActiveByHash(hash);
      principal = row ? storedPrincipal(row, hash) : undefined;
    } else if (source.allowAnonymous && !(await source.store.hasActiveTokens())) {
      principal = ANONYMOUS;
    }
    if (!principal) {
      throw httpProblem(
        401,
        match ? "the bearer token is not valid" : "a bearer token is required",
        {
          "www-authenticate": 'Bearer realm="loom"',
        },
      );
    }
    c.set("principal", principal);
    return next();
  };
}

/** 403 unless the caller's token carries `scope`. */
export function requireScope(scope: Scope): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    if (!c.get("principal").scopes.has(scope)) {
      throw httpProblem(403, `this token lacks the ${scope} scope`);
    }
    return next();
  };
}
