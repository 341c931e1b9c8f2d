import type { Command } from "commander";
import { describeStore } from "../config.js";
import { openStore } from "../context.js";
import { action } from "../run.js";

export function migrateCommand(program: Command): void {
  program
    .command("migrate")
    .description("apply pending database migrations (every command also does this on start)")
    .action(
      action(async (ctx) => {
        const where = ctx.config().store;
        const store = openStore(where);
        try {
          await store.migrate();
        } finally {
          await store.close();
        }
        if (ctx.o.json) ctx.o.data({ migrated: true, store: describeStore(where) });
        else ctx.o.out(`migrated ${describeStore(where)}`);
      }),
    );
}
