// The other process of the cross-process pickup benchmark: an idle engine on the same SQLite
// file that prints `<taskId> <epoch ms with µs>` the moment a task starts.
import { performance } from "node:perf_hooks";
import { createEngine, sqlite } from "../dist/index.js";

const engine = createEngine({
  name: "pickup-worker",
  store: sqlite(process.argv[2]),
  retention: false,
});
engine.register("ping", (task) => {
  process.stdout.write(`${task.id} ${performance.timeOrigin + performance.now()}\n`);
});
await engine.start();
process.stdout.write("ready\n");
process.on("SIGTERM", () => void engine.close().then(() => process.exit(0)));
