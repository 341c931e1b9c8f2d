import type pg from "pg";
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

/** Access tokens in `<schema>.access_tokens` (migration 006). `s` is the quoted, validated schema. */
export class PostgresTokenStore implements TokenStore {
  private readonly table: string;

  constructor(
    private readonly pool: pg.Pool,
    s: string,
    private readonly migrate: () => Promise<void>,
  ) {
    this.table = `${s}.access_tokens`;
  }

  private async q(text: string, values: unknown[] = []): Promise<TokenRow[]> {
    await this.migrate();
    try {
      return (await this.pool.query<TokenRow>(text, values)).rows;
    } catch (err) {
      if ((err as { code?: string }).code === "23505") {
        throw new ValidationError("a token with this id or hash already exists", "token");
      }
      throw new StoreError(`PostgreSQL token query failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async createToken(t: NewAccessToken): Promise<AccessToken> {
    const rows = await this.q(
      `INSERT INTO ${this.table} (id, token_hash, name, tenant, project, scopes, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [t.id, t.tokenHash, t.name, t.tenant, t.project, t.scopes.join(","), t.createdAt],
    );
    return tokenFromRow(rows[0]!);
  }

  async listTokens(filter: TokenListFilter = {}): Promise<AccessToken[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.tenant !== undefined) {
      args.push(filter.tenant);
      where.push(`tenant = $${args.length}`);
    }
    if (!filter.includeRevoked) where.push("revoked_at IS NULL");
    const rows = await this.q(
      `SELECT ${COLUMNS} FROM ${this.table} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY created_at, id`,
      args,
    );
    return rows.map(tokenFromRow);
  }

  async findActiveByHash(tokenHash: string): Promise<AccessToken | null> {
    const rows = await this.q(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE token_hash = $1 AND revoked_at IS NULL`,
      [tokenHash],
    );
    return rows[0] ? tokenFromRow(rows[0]) : null;
  }

  async hasActiveTokens(): Promise<boolean> {
    const rows = await this.q(`SELECT 1 AS id FROM ${this.table} WHERE revoked_at IS NULL LIMIT 1`);
    return rows.length > 0;
  }

  async revokeToken(id: string, now: number): Promise<AccessToken | null> {
    const rows = await this.q(
      `UPDATE ${this.table} SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, now],
    );
    return rows[0] ? tokenFromRow(rows[0]) : null;
  }
}
