/**
 * Stored access tokens (`loom token create`): the HTTP server checks bearer tokens against these
 * rows when it is not given `auth` explicitly. Only the sha256 of a token is stored; the token
 * itself is shown once, at creation, and cannot be read back.
 */
export interface AccessToken {
  id: string;
  name: string | null;
  tenant: string;
  /** Set when the token is bound to one project of its tenant. */
  project: string | null;
  scopes: string[];
  createdAt: Date;
  /** Set once revoked; a revoked token never authenticates again. */
  revokedAt: Date | null;
}

export interface NewAccessToken {
  id: string;
  /** sha256 of the token, lower-case hex. */
  tokenHash: string;
  name: string | null;
  tenant: string;
  project: string | null;
  scopes: string[];
  /** Epoch ms. */
  createdAt: number;
}

export interface TokenListFilter {
  tenant?: string;
  /** Include revoked tokens (default false). */
  includeRevoked?: boolean;
}

/** Each call is one round trip; every method migrates the store first if it has not been. */
export interface TokenStore {
  /** Insert a token; a duplicate id or hash is a `ValidationError`. */
  createToken(token: NewAccessToken): Promise<AccessToken>;
  /** Tokens, oldest first. */
  listTokens(filter?: TokenListFilter): Promise<AccessToken[]>;
  /** The ACTIVE (not revoked) token with this hash, or `null`. */
  findActiveByHash(tokenHash: string): Promise<AccessToken | null>;
  /** True when at least one token is active. */
  hasActiveTokens(): Promise<boolean>;
  /** Revoke by id (idempotent: an already revoked token keeps its first `revokedAt`); `null` for an unknown id. */
  revokeToken(id: string, now: number): Promise<AccessToken | null>;
}

/** The row shape both stores read back (times as epoch ms, scopes as a comma list). */
export interface TokenRow {
  id: string;
  name: string | null;
  tenant: string;
  project: string | null;
  scopes: string;
  created_at: number | string;
  revoked_at: number | string | null;
}

export function tokenFromRow(r: TokenRow): AccessToken {
  return {
    id: r.id,
    name: r.name,
    tenant: r.tenant,
    project: r.project,
    scopes: r.scopes === "" ? [] : r.scopes.split(","),
    createdAt: new Date(Number(r.created_at)),
    revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)),
  };
}
