import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.js";
import type { NewAccessToken, TokenStore } from "../tokens.js";
import { T0, type StoreContext } from "./fixtures.js";

const hex = (n: number) => randomBytes(n).toString("hex");

/** A token row in a tenant of its own, so tests never see each other's rows. */
function newToken(over: Partial<NewAccessToken> = {}): NewAccessToken {
  return {
    id: `tok_${hex(6)}`,
    tokenHash: hex(32),
    name: null,
    tenant: `t_${hex(4)}`,
    project: null,
    scopes: ["read", "write", "agent"],
    createdAt: T0,
    ...over,
  };
}

export function tokenSuite(ctx: StoreContext): void {
  describe("access tokens", () => {
    const tokens = (): TokenStore => {
      const t = ctx.store.tokens;
      if (!t) throw new Error("this store keeps no access tokens");
      return t;
    };

    it("creates a token and reads it back by hash, never exposing the hash", async () => {
      const t = newToken({ name: "ci", project: "p1", scopes: ["read"] });
      const created = await tokens().createToken(t);
      expect(created).toEqual({
        id: t.id,
        name: "ci",
        tenant: t.tenant,
        project: "p1",
        scopes: ["read"],
        createdAt: new Date(T0),
        revokedAt: null,
      });
      expect(await tokens().findActiveByHash(t.tokenHash)).toEqual(created);
      expect(await tokens().findActiveByHash(hex(32))).toBeNull();
      expect(JSON.stringify(created)).not.toContain(t.tokenHash);
    });

    it("rejects a duplicate hash with a ValidationError", async () => {
      const t = newToken();
      await tokens().createToken(t);
      await expect(tokens().createToken({ ...t, id: `tok_${hex(6)}` })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it("lists a tenant's active tokens oldest first; revoked ones only on request", async () => {
      const tenant = `t_${hex(4)}`;
      const a = newToken({ tenant, createdAt: T0 + 2 });
      const b = newToken({ tenant, createdAt: T0 + 1 });
      const other = newToken();
      for (const t of [a, b, other]) await tokens().createToken(t);
      expect((await tokens().listTokens({ tenant })).map((t) => t.id)).toEqual([b.id, a.id]);
      await tokens().revokeToken(a.id, T0 + 10);
      expect((await tokens().listTokens({ tenant })).map((t) => t.id)).toEqual([b.id]);
      const all = await tokens().listTokens({ tenant, includeRevoked: true });
      expect(all.map((t) => [t.id, t.revokedAt?.getTime() ?? null])).toEqual([
        [b.id, null],
        [a.id, T0 + 10],
      ]);
      expect((await tokens().listTokens()).map((t) => t.id)).toContain(other.id);
    });

    it("revokes once: a revoked token no longer authenticates and keeps its first revokedAt", async () => {
      const t = newToken();
      await tokens().createToken(t);
      expect((await tokens().revokeToken(t.id, T0 + 5))?.revokedAt).toEqual(new Date(T0 + 5));
      expect((await tokens().revokeToken(t.id, T0 + 9))?.revokedAt).toEqual(new Date(T0 + 5));
      expect(await tokens().findActiveByHash(t.tokenHash)).toBeNull();
      expect(await tokens().revokeToken(`tok_${hex(6)}`, T0)).toBeNull();
    });

    it("hasActiveTokens is true while any token is active", async () => {
      // Other tests' rows may share the database: only check the transition we cause.
      const t = newToken();
      await tokens().createToken(t);
      expect(await tokens().hasActiveTokens()).toBe(true);
      const active = await tokens().listTokens();
      for (const a of active) await tokens().revokeToken(a.id, T0 + 1);
      expect(await tokens().hasActiveTokens()).toBe(false);
    });
  });
}
