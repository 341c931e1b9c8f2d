import { describe, expect, it } from "vitest";
import type { Store } from "../store.js";
import {
  T0,
  claimOne,
  complete,
  eventually,
  insert,
  mustGet,
  newTask,
  settle,
  sleep,
  type StoreContext,
} from "./fixtures.js";

/** How long a cross-connection notification may take. */
const NOTIFY_WITHIN_MS = 1_000;
/** Time given to a freshly subscribed listener to start listening (e.g. an asynchronous LISTEN). */
const SUBSCRIBE_SETTLE_MS = 100;

export function peerSuite(ctx: StoreContext): void {
  describe("across connections", () => {
    it.runIf(ctx.hasPeer)("a peer reads and settles what another connection wrote", async () => {
      const peer = await ctx.peer();
      const t = newTask({ input: '{"a":1}' });
      await insert(ctx.store, t);
      expect((await mustGet(peer, t.id)).input).toEqual({ a: 1 });
      const c = await claimOne(peer, T0, { engineName: "peer" });
      expect(c.id).toBe(t.id);
      expect((await mustGet(ctx.store, t.id)).status).toBe("running");
      expect((await settle(ctx.store, T0 + 1, complete(c, "r")))[0]!.ok).toBe(true);
      expect(await mustGet(peer, t.id)).toMatchObject({ status: "completed", result: "r" });
    });

    it.runIf(ctx.hasPeer)(
      "migrate() on a second connection to a migrated database is a no-op",
      async () => {
        const t = newTask();
        await insert(ctx.store, t);
        const peer = await ctx.peer();
        await peer.migrate();
        await peer.migrate();
        expect(await peer.countTasks({})).toBe(1);
        expect(await ctx.store.countTasks({})).toBe(1);
      },
    );

    it.runIf(ctx.hasPeer)(
      "onExternalChange: a write through a peer calls the listener soon",
      async () => {
        const peer = await ctx.peer();
        let calls = 0;
        const unsubscribe = ctx.store.onExternalChange(() => calls++);
        try {
          await sleep(SUBSCRIBE_SETTLE_MS);
          const before = calls;
          await insert(peer, newTask());
          await eventually(
            () => calls > before,
            NOTIFY_WITHIN_MS,
            "the listener after a peer's insert",
          );
          // Other kinds of writes wake it too.
          const c = await claimOne(ctx.store, T0);
          await sleep(SUBSCRIBE_SETTLE_MS);
          const beforeSettle = calls;
          await settle(peer, T0 + 1, complete(c));
          await eventually(
            () => calls > beforeSettle,
            NOTIFY_WITHIN_MS,
            "the listener after a peer's settlement",
          );
        } finally {
          unsubscribe();
        }
      },
    );

    it.runIf(ctx.hasPeer)(
      "onExternalChange: unsubscribe is idempotent and stops only that listener",
      async () => {
        const peer = await ctx.peer();
        let a = 0;
        let b = 0;
        const unsubscribeA = ctx.store.onExternalChange(() => a++);
        const unsubscribeB = ctx.store.onExternalChange(() => b++);
        try {
          unsubscribeA();
          unsubscribeA();
          await sleep(SUBSCRIBE_SETTLE_MS);
          const aBefore = a;
          await insert(peer, newTask());
          await eventually(() => b > 0, NOTIFY_WITHIN_MS, "the remaining listener");
          await sleep(SUBSCRIBE_SETTLE_MS);
          expect(a).toBe(aBefore);
        } finally {
          unsubscribeB();
          unsubscribeB();
        }
        // With no listener left, further writes call nobody (and nothing throws).
        const bBefore = b;
        await insert(peer, newTask());
        await sleep(SUBSCRIBE_SETTLE_MS * 2);
        expect(b).toBe(bBefore);
      },
    );

    it.runIf(ctx.hasPeer)(
      "concurrent exchanges on several connections never claim the same task",
      async () => {
        const peers: Store[] = [ctx.store, await ctx.peer(), await ctx.peer()];
        const n = 60;
        const batch = Array.from({ length: n }, () => newTask());
        await insert(ctx.store, ...batch);

        const claimedBy = new Map<string, number>();
        const duplicates: string[] = [];
        let staleSettlements = 0;
        const worker = async (store: Store, w: number): Promise<void> => {
          let held: { id: string; attemptId: string }[] = [];
          for (let round = 0; round < 200; round++) {
            const out = await store.exchange({
              now: T0 + round,
              settle: held.map((h) => complete(h, w)),
              claim: { engineName: `engine-${w}`, types: ["t"], limit: 4 },
            });
            staleSettlements += out.settled.filter((s) => !s.ok).length;
            for (const c of out.claimed) {
              if (claimedBy.has(c.id)) duplicates.push(c.id);
              claimedBy.set(c.id, w);
            }
            held = out.claimed;
            if (held.length === 0) return;
            await Promise.resolve();
          }
        };
        await Promise.all(peers.map((p, w) => worker(p, w)));
        expect(duplicates).toEqual([]);
        expect(staleSettlements).toBe(0);
        expect(claimedBy.size).toBe(n);
        expect(await ctx.store.countTasks({ status: "completed" })).toBe(n);
      },
    );

    it.runIf(ctx.hasPeer)(
      "concurrent agent claims on several connections never claim the same task",
      async () => {
        const peers: Store[] = [ctx.store, await ctx.peer()];
        const n = 20;
        await insert(ctx.store, ...Array.from({ length: n }, () => newTask()));
        const results = await Promise.all(
          Array.from({ length: 2 * n }, (_, i) =>
            peers[i % 2]!.claimForAgent({ agent: `agent-${i}`, max: 1, now: T0 }),
          ),
        );
        const ids = results.filter((t) => t !== null).map((t) => t.id);
        expect(ids).toHaveLength(n);
        expect(new Set(ids).size).toBe(n);
      },
    );

    it.runIf(ctx.hasPeer)(
      "an agent claim on any connection sees task types first submitted elsewhere",
      async () => {
        const peerBefore = await ctx.peer();
        // A batch that rolls back must not leave its types half-known anywhere.
        await expect(
          ctx.store.insertTasks([
            newTask({ type: "fresh" }),
            newTask({ type: "t", dependsOn: ["no-such-task"] }),
          ]),
        ).rejects.toThrow();
        const t = newTask({ type: "fresh" });
        await insert(ctx.store, t);
        const peerAfter = await ctx.peer();
        const got = await peerAfter.claimForAgent({ agent: "a1", max: 1, now: T0 });
        expect(got?.id).toBe(t.id);
        await settle(ctx.store, T0 + 1, { kind: "release", id: t.id, attemptId: got!.attemptId! });
        const again = await peerBefore.claimForAgent({ agent: "a2", max: 1, now: T0 + 2 });
        expect(again?.id).toBe(t.id);
      },
    );

    it.runIf(ctx.hasPeer)("a lease rescued by a peer fences off the original attempt", async () => {
      const peer = await ctx.peer();
      const t = newTask({ crashPolicy: "retry", leaseMs: 1_000 });
      await insert(ctx.store, t);
      const c = await claimOne(ctx.store, T0);
      expect(await peer.rescueExpired(T0 + 5_000, 10)).toMatchObject([
        { id: t.id, status: "retrying" },
      ]);
      expect(
        await ctx.store.heartbeatMany([{ id: t.id, attemptId: c.attemptId }], T0 + 5_001),
      ).toEqual([t.id]);
      const again = await claimOne(peer, T0 + 5_002);
      expect((await settle(ctx.store, T0 + 5_003, complete(c, "old")))[0]!.ok).toBe(false);
      expect((await settle(ctx.store, T0 + 5_003, complete(again, "new")))[0]!.ok).toBe(true);
      expect((await mustGet(peer, t.id)).result).toBe("new");
    });
  });
}
