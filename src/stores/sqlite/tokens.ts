import type Database from "better-sqlite3";
import { StoreError, ValidationError } from "../../core/errors.js";
import {
  tokenFromRow,
  type AccessToken,
  type NewAccessToken,
  type TokenListFilter,
  type TokenRow,
  type TokenStore,
} from "../../store/tokens.js";

const COLUMNS = "id, name, tenant, project, scopes, created_at, revoked_at";

/** Access tokens in the `loom_access_tokens` table (migration 006). */
export class SqliteTokenStore implements TokenStore {
  constructor(
    private readonly db: Database.Database,
    private readonly migrate: () => Promise<void>,
  ) {}

  async createToken(t: NewAccessToken): Promise<AccessToken> {
    await this.migrate();
    try {
      this.db
        .prepare(
          `INSERT INTO loom_access_tokens (id, token_hash, name, tenant, project, scopes, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(t.id, t.tokenHash, t.name, t.tenant, t.project, t.scopes.join(","), t.createdAt);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith("SQLITE_CONSTRAINT")) {
        throw new ValidationError("a token with this id or hash already exists", "token");
      }
      throw new StoreError(`cannot store the token: ${(err as Error).message}`, { cause: err });
    }
    return tokenFromRow({
      ...t,
      scopes: t.scopes.join(","),
      created_at: t.createdAt,
      revoked_at: null,
    });
  }

  async listTokens(filter: TokenListFilter = {}): Promise<AccessToken[]> {
    await this.migrate();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.tenant !== undefined) {
      where.push("tenant = ?");
      args.push(filter.tenant);
    }
    if (!filter.includeRevoked) where.push("revoked_at IS NULL");
    const rows = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM loom_access_tokens ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY created_at, id`,
      )
      .all(...args) as TokenRow[];
    return rows.map(tokenFromRow);
  }

  async findActiveByHash(tokenHash: string): Promise<AccessToken | null> {
    await this.migrate();
    const row = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM loom_access_tokens WHERE token_hash = ? AND revoked_at IS NULL`,
      )
      .get(tokenHash) as TokenRow | undefined;
    return row ? tokenFromRow(row) : null;
  }

  async hasActiveTokens(): Promise<boolean> {
    await this.migrate();
    return (
      this.db.prepare("SELECT 1 FROM loom_access_tokens WHERE revoked_at IS NULL LIMIT 1").get() !==
      undefined
    );
  }

  async revokeToken(id: string, now: number): Promise<AccessToken | null> {
    await this.migrate();
    this.db
      .prepare("UPDATE loom_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
      .run(now, id);
    const row = this.db
      .prepare(`SELECT ${COLUMNS} FROM loom_access_tokens WHERE id = ?`)
      .get(id) as TokenRow | undefined;
    return row ? tokenFromRow(row) : null;
  }
}
