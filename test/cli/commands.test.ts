import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, PG_URL, pgAvailable, testSchema } from "../support/pg.js";
import { ensureBuilt, loom, loomJson, startLoom } from "./support.js";

type Json = Record<string, unknown>;
type Task = Json & { id: string; status: string; type: string };

const pg = await pgAvailable();
const schema = testSchema("cli_commands");

/** The same scenarios against a temporary SQLite file and a PostgreSQL schema. */
const stores: { name: string; skip: boolean; db: (dir: string) => string[] }[] = [
  { name: "sqlite", skip: false, db: (dir) => ["--db", `sqlite:${join(dir, "loom.db")}`] },
  { name: "postgres", skip: !pg, db: () => ["--db", PG_URL, "--schema", schema] },
];

const WORKER = `export default function (engine) {
  engine.register("cli.echo", (task, ctx) => ctx.progress(50, "half").then(() => ({ echoed: task.input })));
  engine.register("cli.boom", () => { throw new Error("boom on purpose"); }, { maxRetries: 0 });
}
`;

beforeAll(() => ensureBuilt(), 300_000);
afterAll(async () => {
  if (pg) await dropSchema(schema);
});

for (const store of stores) {
  describe.skipIf(store.skip)(`loom commands on ${store.name}`, () => {
    let dir: string;
    let db: string[];
    const run = (args: string[], input?: string) =>
      loom([...db, ...args], { cwd: dir, ...(input !== undefined ? { input } : {}) });
    const json = <T = Json>(args: string[], code = 0) =>
      loomJson<T>([...db, ...args], { cwd: dir }, code);

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), `loom-cli-${store.name}-`));
      db = store.db(dir);
      writeFileSync(join(dir, "worker.mjs"), WORKER);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("migrate", async () => {
      const out = await json(["migrate"]);
      expect(out["migrated"]).toBe(true);
      expect(String(out["store"])).toMatch(store.name === "sqlite" ? /^SQLite / : /^PostgreSQL /);
      expect(String(out["store"])).not.toMatch(/:[^:@/]+@/); // never a password
    });

    it("submit, list, inspect, stats, cancel, purge with --json parsed back", async () => {
      const task = await json<Task>([
        "submit",
        "cli.later",
        '{"n":1}',
        "--priority",
        "2",
        "--project",
        "p1",
        "--label",
        "k=v",
      ]);
      expect(task).toMatchObject({
        type: "cli.later",
        status: "pending",
        input: { n: 1 },
        priority: 2,
        project: "p1",
        labels: { k: "v" },
      });

      const plain = await run(["submit", "cli.later", "--input-file", "-"], '{"n":2}');
      expect(plain.code).toBe(0);
      const secondId = plain.stdout.trim();
      expect(secondId).toMatch(/^\w{10,}$/);

      const page = await json<{ items: Task[]; nextCursor: string | null }>([
        "list",
        "--type",
        "cli.later",
        "--limit",
        "1",
      ]);
      expect(page.items).toHaveLength(1);
      expect(page.nextCursor).not.toBeNull();
      const next = await json<{ items: Task[] }>([
        "list",
        "--type",
        "cli.later",
        "--limit",
        "1",
        "--cursor",
        page.nextCursor!,
      ]);
      expect([page.items[0]!.id, next.items[0]!.id].sort()).toEqual([task.id, secondId].sort());

      const human = await run(["list", "--status", "pending,running"]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^ID\s+TYPE\s+STATUS/);
      expect(human.stdout).toContain(task.id);
      expect(human.stdout).not.toContain("\u001b["); // not a TTY: no colours

      const shown = await json<Task>(["inspect", task.id]);
      expect(shown.id).toBe(task.id);
      const withEvents = await json<{ task: Task; timeline: { what: string }[] }>([
        "inspect",
        task.id,
        "--events",
      ]);
      expect(withEvents.timeline[0]!.what).toBe("created");

      const stats = await json<{ counts: Record<string, number>; lanes: unknown[] }>(["stats"]);
      expect(stats.counts["pending"]).toBeGreaterThanOrEqual(2);
      expect(stats.lanes).toEqual([]);

      const cancelled = await json<{ results: { id: string; status?: string }[] }>([
        "cancel",
        task.id,
      ]);
      expect(cancelled.results).toEqual([{ id: task.id, status: "cancelled" }]);
      const all = await json<{ cancelled: number }>(["cancel", "--all", "--type", "cli.later"]);
      expect(all.cancelled).toBe(1);

      const purged = await json<{ purged: number }>([
        "purge",
        "--older-than",
        "0s",
        "--status",
        "cancelled",
      ]);
      expect(purged.purged).toBe(2);
      const gone = await run(["inspect", task.id]);
      expect(gone.code).toBe(3);
    });

    it("bad flags, bad values and bad ids: one clear line on stderr, non-zero exit", async () => {
      const cases: [string[], number, RegExp][] = [
        [["list", "--bogus"], 2, /unknown option '--bogus'/],
        [["list", "--status", "done"], 2, /--status: unknown status "done"/],
        [["list", "--limit", "0"], 2, /--limit: must be between 1 and 1000/],
        [["list", "--cursor", "!!"], 2, /cursor/],
        [["submit", "cli.x", "{not json"], 2, /input-json is not valid JSON/],
        [["submit", "cli.x", "--priority", "9"], 2, /--priority: must be between 0 and 3/],
        [["submit"], 2, /missing required argument 'type'/],
        [["inspect", "01nosuchtask0000000000000"], 3, /not found/],
        [["cancel", "01nosuchtask0000000000000"], 3, /not found/],
        [["cancel", "--type", "x"], 2, /filter flags need --all/],
        [["purge", "--older-than", "soon"], 2, /expected a duration like 7d/],
        [["purge", "--older-than", "1d", "--status", "pending"], 2, /only terminal statuses/],
        [["recover"], 2, /required option '--engine <name>'/],
        [["token", "revoke", "tok_nope"], 3, /token tok_nope not found/],
        [["token", "create", "--tenant", "a", "--scopes", "admin"], 2, /unknown scope admin/],
        [["nosuchcommand"], 2, /unknown command 'nosuchcommand'/],
      ];
      for (const [args, code, message] of cases) {
        const r = await run(args);
        expect({ args, code: r.code }).toEqual({ args, code });
        expect(r.stderr).toMatch(message);
        const lines = r.stderr.split("\n").filter((l) => l && !l.startsWith("(run with --help"));
        expect({ args, lines: lines.length }).toEqual({ args, lines: 1 });
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack without --verbose
      }
      const verbose = await run(["--verbose", "inspect", "01nosuchtask0000000000000"]);
      expect(verbose.stderr).toMatch(/\n\s+at /);
      const asJson = await json<{ error: Json }>(["inspect", "01nosuchtask0000000000000"], 3);
      expect(asJson.error).toMatchObject({ code: "TASK_NOT_FOUND", exitCode: 3 });
    });

    it("submit --wait: the result with exit 0, a failure with exit 4, a timeout with exit 5", async () => {
      const late = await run(["submit", "cli.nobody", "--wait", "--timeout", "300ms"]);
      expect(late.code).toBe(5);
      expect(late.stderr).toMatch(/wait|timed out/i);

      const worker = startLoom(
        [...db, "worker", "worker.mjs", "--concurrency", "2", "--poll-interval", "50ms"],
        { cwd: dir },
      );
      try {
        await worker.waitFor(/running worker\.mjs/);
        const done = await json<Task>(["submit", "cli.echo", '{"hi":1}', "--wait"]);
        expect(done).toMatchObject({ status: "completed", result: { echoed: { hi: 1 } } });
        const human = await run(["submit", "cli.echo", '"x"', "--wait"]);
        expect(human.code).toBe(0);
        expect(JSON.parse(human.stdout)).toEqual({ echoed: "x" });
        expect(human.stderr).toMatch(/100% completed/);

        const failed = await run(["submit", "cli.boom", "--wait"]);
        expect(failed.code).toBe(4);
        expect(failed.stdout).toMatch(/status\s+failed/);
        expect(failed.stdout).toContain("boom on purpose");
      } finally {
        worker.child.kill("SIGTERM");
        expect(await worker.exited).toBe(0);
      }
    });

    it("recover --engine applies the crash policy to that engine's attempts only", async () => {
      const out = await json<{ engine: string; recovered: number }>([
        "recover",
        "--engine",
        "ghost",
      ]);
      expect(out).toEqual({ engine: "ghost", recovered: 0 });
    });

    it("token create / list / revoke; the secret is printed once and never listed", async () => {
      const created = await json<Json & { token: string; id: string }>([
        "token",
        "create",
        "--tenant",
        "acme",
        "--project",
        "p1",
        "--scopes",
        "read,agent",
        "--name",
        "ci",
      ]);
      expect(created).toMatchObject({
        tenant: "acme",
        project: "p1",
        scopes: ["read", "agent"],
        name: "ci",
        revokedAt: null,
      });
      expect(created.token).toMatch(/^loom_/);
      const human = await run(["token", "create", "--tenant", "acme"]);
      expect(human.stdout.trim()).toMatch(/^loom_[\w-]{43}$/);
      expect(human.stderr).toMatch(/shown once/);

      const listed = await run(["--json", "token", "list", "--tenant", "acme"]);
      expect(listed.stdout).not.toContain(created.token);
      const items = (JSON.parse(listed.stdout) as { items: { id: string }[] }).items;
      expect(items.map((t) => t.id)).toContain(created.id);

      const revoked = await json<Json>(["token", "revoke", created.id]);
      expect(revoked["revokedAt"]).not.toBeNull();
      const after = await json<{ items: { id: string }[] }>(["token", "list", "--tenant", "acme"]);
      expect(after.items.map((t) => t.id)).not.toContain(created.id);
      const withRevoked = await json<{ items: { id: string }[] }>(["token", "list", "--all"]);
      expect(withRevoked.items.map((t) => t.id)).toContain(created.id);
    });
  });
}
