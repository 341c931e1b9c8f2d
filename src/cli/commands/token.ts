import type { Command } from "commander";
import { issueAccessToken, tokenStoreOf } from "../../http/stored-tokens.js";
import { openStore, type CliContext } from "../context.js";
import { CliError, EXIT } from "../errors.js";
import { ago, paint, table } from "../output.js";
import { action } from "../run.js";
import { splitList } from "./list.js";
import type { Store } from "../../store/store.js";

async function withStore<T>(ctx: CliContext, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(ctx.config().store);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function tokenCommand(program: Command): void {
  const token = program
    .command("token")
    .description("access tokens for the HTTP API (stored as sha256 hashes)");

  token
    .command("create")
    .description("create a token bound to a tenant (printed once, never stored in clear)")
    .requiredOption("--tenant <tenant>", "the tenant the token acts for")
    .option("--project <project>", "bind the token to one project")
    .option("--scopes <scopes>", "comma-separated: read,write,agent", "read,write,agent")
    .option("--name <name>", "a label to recognise it by")
    .action(
      action(
        async (ctx, f: { tenant: string; project?: string; scopes: string; name?: string }) => {
          await withStore(ctx, async (store) => {
            const { token, record } = await issueAccessToken(store, {
              tenant: f.tenant,
              scopes: splitList([f.scopes]) ?? [],
              ...(f.project !== undefined ? { project: f.project } : {}),
              ...(f.name !== undefined ? { name: f.name } : {}),
            });
            if (ctx.o.json) return ctx.o.data({ token, ...record });
            ctx.o.out(token);
            ctx.o.err(
              paint(
                ctx.o,
                "yellow",
                `token ${record.id} for tenant ${record.tenant}${record.project ? `/${record.project}` : ""} (${record.scopes.join(",")}): shown once, store it now`,
              ),
            );
          });
        },
      ),
    );

  token
    .command("list")
    .description("list tokens (never their secrets)")
    .option("--tenant <tenant>", "only this tenant")
    .option("--all", "include revoked tokens")
    .action(
      action(async (ctx, f: { tenant?: string; all?: boolean }) => {
        await withStore(ctx, async (store) => {
          const items = await tokenStoreOf(store).listTokens({
            ...(f.tenant !== undefined ? { tenant: f.tenant } : {}),
            includeRevoked: Boolean(f.all),
          });
          if (ctx.o.json) return ctx.o.data({ items });
          if (!items.length) return ctx.o.out("no tokens");
          ctx.o.out(
            table(
              ctx.o,
              ["ID", "NAME", "TENANT", "PROJECT", "SCOPES", "CREATED", "REVOKED"],
              items.map((t) => [
                t.id,
                t.name ?? "-",
                t.tenant,
                t.project ?? "-",
                t.scopes.join(","),
                ago(t.createdAt),
                t.revokedAt ? paint(ctx.o, "red", ago(t.revokedAt)) : "-",
              ]),
            ),
          );
        });
      }),
    );

  token
    .command("revoke")
    .description("revoke a token at once")
    .argument("<id>", "token id (tok_…)")
    .action(
      action(async (ctx, id: string) => {
        await withStore(ctx, async (store) => {
          const record = await tokenStoreOf(store).revokeToken(id, Date.now());
          if (!record) throw new CliError(`token ${id} not found`, EXIT.notFound);
          if (ctx.o.json) ctx.o.data(record);
          else ctx.o.out(`revoked ${id}`);
        });
      }),
    );
}
