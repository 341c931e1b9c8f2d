import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { cancelCommand } from "./commands/cancel.js";
import { devCommand } from "./commands/dev.js";
import { initCommand } from "./commands/init.js";
import { inspectCommand } from "./commands/inspect.js";
import { listCommand } from "./commands/list.js";
import { migrateCommand } from "./commands/migrate.js";
import { purgeCommand } from "./commands/purge.js";
import { recoverCommand } from "./commands/recover.js";
import { serveCommand } from "./commands/serve.js";
import { statsCommand } from "./commands/stats.js";
import { submitCommand } from "./commands/submit.js";
import { tokenCommand } from "./commands/token.js";
import { workerCommand } from "./commands/worker.js";
import { EXIT } from "./errors.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** The `loom` program: global options, every command, one-line usage errors (exit 2). */
export function buildProgram(): Command {
  const program = new Command("loom")
    .description("Loom: durable tasks, lanes and workflows on SQLite or PostgreSQL")
    .version(version(), "-V, --version")
    .addOption(
      new Option(
        "--db <url-or-path>",
        "store: postgres://… or postgresql://… (PostgreSQL), sqlite:PATH or a path (SQLite)",
      ),
    )
    .option("--schema <name>", "PostgreSQL schema (default loom; env LOOM_SCHEMA)")
    .option("--config <path>", "config file (default ./loom.config.json if present)")
    .option("--json", "machine-readable JSON on stdout")
    .option("--verbose", "debug logs and error stacks on stderr")
    .option("--no-color", "no colours (also off when stdout is not a terminal or NO_COLOR is set)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      // commander's own errors ("unknown option '--x'") stay one line on stderr.
      outputError: (str, write) => write(str.trimEnd() + "\n"),
    })
    .addHelpText(
      "after",
      `
Store: --db, else LOOM_DATABASE_URL, else "db" in loom.config.json, else .loom/loom.db.
Exit codes: 0 ok, 1 error, 2 bad usage, 3 not found, 4 task ended unsuccessfully, 5 wait timed out.
Docs: docs/cli.md`,
    );

  for (const add of [
    initCommand,
    devCommand,
    workerCommand,
    serveCommand,
    submitCommand,
    listCommand,
    inspectCommand,
    statsCommand,
    cancelCommand,
    recoverCommand,
    purgeCommand,
    migrateCommand,
    tokenCommand,
  ]) {
    add(program);
  }
  // Subcommands inherit the error behaviour (exitOverride and one-line output).
  for (const cmd of allCommands(program)) {
    cmd.exitOverride();
    cmd.showHelpAfterError("(run with --help for usage)");
  }
  return program;
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors with 2.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
}
