// One worker process of the multi-process PostgreSQL benchmark (bench/postgres-tasks.mjs):
// an engine on the given schema running no-op `noop` tasks. Prints `ready` once dispatching;
// SIGTERM closes it. argv: <url> <schema> <name> <concurrency> <prefetch>
import { createEngine, postgres } from "../src/index.ts";

const [url, schema, name, concurrency, prefetch] = process.argv.slice(2);
const engine = createEngine({
  name,
  store: postgres(url, { schema }),
  concurrency: Number(concurrency),
  prefetch: Number(prefetch),
  retention: false,
});
engine.register("noop", () => {}, { crashPolicy: "retry" });
process.on("SIGTERM", () => void engine.close().then(() => process.exit(0)));
await engine.start();
process.stdout.write("ready\n");
