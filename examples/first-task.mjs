// A first Loom program: durable tasks on the embedded SQLite store.
//
//   npm run example          builds the package, then runs this file
//   Ctrl-C, then run again   the second run finishes what the first one left
//   rm -rf .loom/example.db*  start over from nothing
//
// What it shows: registering a task type, submitting tasks idempotently, lifecycle events,
// progress, waiting for results, a clean shutdown, and crash recovery on the next start.
import { setTimeout as sleep } from "node:timers/promises";
import { createEngine, sqlite } from "loomkit";

const DB = ".loom/example.db";
const started = Date.now();
const elapsed = () => `+${((Date.now() - started) / 1000).toFixed(2)}s`.padStart(8);
const short = (id) => id.slice(-6);

const engine = createEngine({
  // A stable name, the same on every run. When this engine starts, it looks for attempts that
  // were still claimed or running under its own name — work a previous run of this program did
  // not finish because it was stopped or killed — and applies their crash policy at once. With
  // the default name (host:pid) every run would be a stranger to the last one, and its leftovers
  // would only be rescued when their lease expires (30 s by default). Two processes must never
  // share one name: each would treat the other's work as its own crashed work.
  name: "first-task-example",
  store: sqlite(DB),
  concurrency: 2,
});

// The handler: "renders" a document page by page, reporting progress (0–100) as it goes.
// It passes ctx.signal to its waits, so it stops promptly when the engine aborts the attempt
// (cancel, timeout, or shutdown past its deadline).
const render = engine.register(
  "example.render",
  async (task, ctx) => {
    const { name, pages } = task.input;
    for (let page = 1; page <= pages; page++) {
      await sleep(400, undefined, { signal: ctx.signal });
      await ctx.progress(Math.round((page / pages) * 100), `page ${page}/${pages}`);
    }
    return { name, pages, attempt: ctx.attempt };
  },
  {
    // What happens to an attempt that was in flight when its process died. The default, "fail",
    // marks the task failed_crash on the next start: Loom does not silently re-run work that may
    // have had side effects (charged a card, sent an email). Rendering is safe to repeat, so
    // "retry" sends such a task back to the queue and it runs again from the start (progress
    // restarts at 0). The policy is stored on each task when it is submitted. A task that
    // crashes more than maxCrashes times (default 3) is failed_crash anyway: a poison pill
    // cannot crash-loop the program.
    crashPolicy: "retry",
  },
);

// Print every lifecycle event on one line.
const unsubscribe = engine.events.subscribe((e) => {
  let detail = e.status;
  if (e.type === "task.progress") detail = `${e.progress}%  ${e.note ?? ""}`;
  else if (e.error) detail += `  (${e.error})`;
  console.log(
    `${elapsed()}  ${short(e.taskId)}  ${e.type.padEnd(17)} attempt ${e.attempt}  ${detail}`,
  );
});

// Stop on Ctrl-C or SIGTERM: stop claiming, give running attempts a moment to finish, then
// release the store. Attempts still running at the deadline are aborted and left in the
// database as they are; the next start of this engine recovers them (see crashPolicy above).
// A second Ctrl-C exits at once — that is a crash, and it is recovered the same way.
let stopping = null;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    console.log(`\n${elapsed()}  ${signal}: closing; unfinished tasks continue on the next run`);
    process.exitCode = signal === "SIGINT" ? 130 : 143;
    stopping = engine.close({ timeoutMs: 1_000 });
  });
}

console.log(`engine "${engine.name}", store ${DB}`);

// A started engine (and a pending wait) keeps Node running until close().
try {
  await main();
} catch (err) {
  // After a signal, close() rejects the pending waits (EngineClosedError) and refuses new
  // submits. Any other error is real.
  if (!stopping) throw err;
  await stopping;
}

async function main() {
  // Submit the tasks. Each has an idempotency key, so on a second run these submits create
  // nothing: they return the ids of the tasks the first run created (and no task.created event
  // fires). submitMany writes all of them in one transaction.
  const docs = [
    { name: "intro", pages: 3 },
    { name: "guide", pages: 6 },
    { name: "api", pages: 8 },
    { name: "faq", pages: 2 },
    { name: "changelog", pages: 4 },
  ];
  const before = await engine.count({ type: render.type });
  const ids = await engine.submitMany(
    docs.map((doc) => ({
      type: render.type,
      input: doc,
      idempotencyKey: `first-task-example:${doc.name}`,
    })),
  );
  const after = await engine.count({ type: render.type });
  const legend = ids.map((id, i) => `${short(id)} ${docs[i].name}`).join(", ");
  console.log(
    after > before
      ? `${elapsed()}  submitted ${after - before} tasks: ${legend}`
      : `${elapsed()}  found the tasks an earlier run submitted: ${legend}`,
  );

  // Tasks may be submitted before the engine starts: they wait in the store. start() first
  // recovers this engine's unfinished attempts from an earlier run, then begins dispatching.
  await engine.start();

  const tasks = await Promise.all(ids.map((id) => engine.wait(id)));
  unsubscribe();
  console.log("\nresults:");
  for (const t of tasks) {
    const outcome = t.status === "completed" ? JSON.stringify(t.result) : t.error;
    console.log(
      `  ${short(t.id)} ${t.input.name.padEnd(10)} ${t.status.padEnd(12)} attempts ${t.attempt}  ${outcome}`,
    );
  }
  const allDone = tasks.every((t) => t.status === "completed");
  console.log(
    allDone
      ? "\nall tasks completed. Run again: nothing is redone (idempotency keys)."
      : "\nsome tasks did not complete.",
  );
  await engine.close();
  process.exitCode = allDone ? 0 : 1;
}
