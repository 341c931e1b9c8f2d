import { randomBytes } from "node:crypto";
import { ValidationError } from "../core/errors.js";
import type { Store } from "../store/store.js";
import type { AccessToken, TokenStore } from "../store/tokens.js";
import { SCOPES, sha256Hex } from "./auth.js";

export interface IssueTokenOptions {
  tenant: string;
  project?: string;
  /** Default: all of read, write and agent. */
  scopes?: string[];
  name?: string;
  /** Epoch ms (default now). */
  now?: number;
}

/** The token store of `store`, or a clear error for a store that keeps none. */
export function tokenStoreOf(store: Store): TokenStore {
  if (!store.tokens) {
    throw new ValidationError(`the ${store.dialect} store does not keep access tokens`, "store");
  }
  return store.tokens;
}

/**
 * Create a stored access token. Returns the token in clear ONCE (it is not kept: only its
 * sha256 is stored) with its record. Tokens look like `loom_<43 base64url chars>` (256 bits).
 */
export async function issueAccessToken(
  store: Store,
  opts: IssueTokenOptions,
): Promise<{ token: string; record: AccessToken }> {
  if (typeof opts.tenant !== "string" || opts.tenant.trim() === "") {
    throw new ValidationError("a tenant is required", "tenant");
  }
  if (opts.project !== undefined && opts.project.trim() === "") {
    throw new ValidationError("must not be empty", "project");
  }
  const scopes = [...new Set(opts.scopes ?? [...SCOPES])];
  if (scopes.length === 0) throw new ValidationError("give at least one scope", "scopes");
  for (const s of scopes) {
    if (!(SCOPES as readonly string[]).includes(s)) {
      throw new ValidationError(`unknown scope ${s}; use ${SCOPES.join(", ")}`, "scopes");
    }
  }
  const token = `loom_${randomBytes(32).toString("base64url")}`;
  const record = await tokenStoreOf(store).createToken({
    id: `tok_${randomBytes(6).toString("hex")}`,
    tokenHash: sha256Hex(token),
    name: opts.name ?? null,
    tenant: opts.tenant,
    project: opts.project ?? null,
    scopes,
    createdAt: opts.now ?? Date.now(),
  });
  return { token, record };
}
