#!/usr/bin/env node
import { describeError } from "./errors.js";
import { main } from "./program.js";

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${describeError(err)}\n`);
    if (process.argv.includes("--verbose") && err instanceof Error) {
      process.stderr.write(`${err.stack ?? ""}\n`);
    }
    process.exit(1);
  },
);
