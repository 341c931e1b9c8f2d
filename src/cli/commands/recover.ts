import type { Command } from "commander";
import { withEngine } from "../context.js";
import { usageError } from "../errors.js";
import { action } from "../run.js";

export function recoverCommand(program: Command): void {
  program
    .command("recover")
    .description(
      "apply the crash policy to the claimed/running attempts of an engine that died (by name)",
    )
    .requiredOption("--engine <name>", "the dead engine's name (see `loom inspect` → engine)")
    .action(
      action(async (ctx, f: { engine: string }) => {
        if (f.engine.trim() === "") throw usageError("--engine must not be empty");
        await withEngine(
          ctx,
          async (engine) => {
            const recovered = await engine.recoverCrashed();
            if (ctx.o.json) ctx.o.data({ engine: f.engine, recovered });
            else
              ctx.o.out(
                `recovered ${recovered} attempt${recovered === 1 ? "" : "s"} of ${f.engine}`,
              );
          },
          { name: f.engine },
        );
      }),
    );
}
