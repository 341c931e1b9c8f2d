// Loom over HTTP: submits per second with keep-alive, and one event fanned out to 100 SSE
// subscribers (delivery latency).
//
//   npm run build && node bench/http.mjs            # full run (about a minute)
//   node bench/http.mjs --quick                     # smaller counts, for a smoke check
//
// The server (engine on a SQLite file + loomkit/http with a bearer token) runs in a child
// process; the clients run here, with Node's fetch (undici: pooled keep-alive connections).
// Prints a Markdown table; BENCHMARKS.md records the figures with the command and the machine.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const TOKEN = "bench-token-0123456789abcdef";
const args = process.argv.slice(2);

if (args.includes("--server")) {
  const { createEngine, sqlite } = await import("../dist/index.js");
  const { createServer } = await import("../dist/http/index.js");
  const dir = mkdtempSync(join(tmpdir(), "loom-http-bench-"));
  const engine = createEngine({
    name: "http-bench",
    store: sqlite(join(dir, "bench.db")),
    retention: false,
  });
  await engine.count();
  const server = createServer(engine, {
    auth: { tokens: [{ token: TOKEN, tenant: "bench" }] },
    limits: { sseConnectionsPerToken: 1_000 },
  });
  const running = await server.listen(0);
  console.log(JSON.stringify({ url: running.url }));
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await running.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
} else {
  await main();
}

async function main() {
  const quick = args.includes("--quick");
  const SUBMITS = quick ? 3_000 : 10_000;
  const CLIENTS = 16;
  const BATCHES = quick ? 20 : 100;
  const SUBSCRIBERS = 100;
  const EVENTS = quick ? 50 : 300;

  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--server"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const { url } = JSON.parse(
    await new Promise((resolve) => createInterface({ input: child.stdout }).once("line", resolve)),
  );
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const post = async (path, body) => {
    const res = await fetch(url + path, { method: "POST", headers, body: JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${path} → ${res.status} ${await res.text()}`);
    return res.json();
  };
  const rows = [];
  const record = (what, value) => {
    rows.push([what, value]);
    console.error(`  ${what.padEnd(60)} ${value}`);
  };
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  const ms = (n) => `${n.toFixed(2)} ms`;
  const pct = (sorted, p) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

  // Warm up connections, JIT and the SQLite file.
  await Promise.all(Array.from({ length: CLIENTS }, () => post("/api/v1/tasks", { type: "warm" })));

  // 1. Single submits: CLIENTS loops, each awaiting its own POST before sending the next.
  {
    let next = 0;
    const latencies = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < SUBMITS) {
          const i = next++;
          const s = performance.now();
          await post("/api/v1/tasks", { type: "noop", input: { i } });
          latencies.push(performance.now() - s);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    record(`POST /tasks, ${CLIENTS} keep-alive clients (submits/s)`, fmt(SUBMITS / secs));
    record(
      "POST /tasks latency p50 / p99",
      `${ms(pct(latencies, 50))} / ${ms(pct(latencies, 99))}`,
    );
  }

  // 2. Batches of 100 (POST /tasks/batch), 4 clients.
  {
    const batch = Array.from({ length: 100 }, (_, i) => ({ type: "noop", input: { i } }));
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next++ < BATCHES) await post("/api/v1/tasks/batch", { tasks: batch });
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    record("POST /tasks/batch × 100, 4 clients (tasks/s)", fmt((BATCHES * 100) / secs));
  }

  // 3. One event to 100 SSE subscribers: latency from sending the POST that causes it until each
  //    subscriber has parsed it.
  {
    // One event in flight at a time: every `fan` task.created message belongs to `current`.
    let current = null;
    const latencies = [];
    const lastOfEach = [];
    const aborts = [];
    const subscribe = async () => {
      const ctrl = new AbortController();
      aborts.push(ctrl);
      const res = await fetch(`${url}/api/v1/events?type=task.created&taskType=fan`, {
        headers,
        signal: ctrl.signal,
      });
      if (res.status !== 200) throw new Error(`SSE → ${res.status}`);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      let ready;
      const connected = new Promise((r) => (ready = r));
      void (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            buf += decoder.decode(value, { stream: true });
            let at;
            while ((at = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, at);
              buf = buf.slice(at + 2);
              if (block.includes(": connected")) ready();
              const data = block.split("\n").find((l) => l.startsWith("data: "));
              if (!data) continue;
              const now = performance.now();
              const wait = current;
              if (!wait) continue;
              latencies.push(now - wait.t0);
              if (--wait.left === 0) {
                lastOfEach.push(now - wait.t0);
                wait.resolve();
              }
            }
          }
        } catch {
          // aborted at the end
        }
      })();
      await connected;
    };
    await Promise.all(Array.from({ length: SUBSCRIBERS }, subscribe));
    for (let e = 0; e < EVENTS + 10; e++) {
      const t0 = performance.now();
      let resolve;
      const all = new Promise((r) => (resolve = r));
      current = { t0, left: SUBSCRIBERS, resolve };
      await post("/api/v1/tasks", { type: "fan" });
      await Promise.race([all, new Promise((r) => setTimeout(r, 5_000))]);
      current = null;
      if (e < 10) latencies.length = lastOfEach.length = 0; // warm-up rounds
    }
    for (const c of aborts) c.abort();
    latencies.sort((a, b) => a - b);
    lastOfEach.sort((a, b) => a - b);
    record(
      `1 event → ${SUBSCRIBERS} SSE subscribers, per delivery p50 / p99`,
      `${ms(pct(latencies, 50))} / ${ms(pct(latencies, 99))}`,
    );
    record(
      `time until all ${SUBSCRIBERS} have it, p50 / p99`,
      `${ms(pct(lastOfEach, 50))} / ${ms(pct(lastOfEach, 99))}`,
    );
    record("deliveries measured", `${fmt(latencies.length)} (${EVENTS} events)`);
  }

  child.stdin.end();
  await new Promise((r) => child.once("exit", r));

  console.log(
    `\n${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? "cpu"} · ${Math.round(totalmem() / 2 ** 30)} GiB\n`,
  );
  console.log("| measure | value |\n| --- | ---: |");
  for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
}
