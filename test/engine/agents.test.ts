import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  ManualClock,
  StaleAttemptError,
  TaskNotFoundError,
  ValidationError,
  type LoomEvent,
} from "../../src/index.js";
import { engineFactory, tempDir } from "../support/sqlite.js";

const tmp = tempDir("loom-agents-");
const engines = engineFactory(tmp);
afterEach(() => engines.closeAll());
afterAll(() => tmp.cleanup());

describe("external agents", () => {
  it("claim the best ready task; an agent holding max tasks gets null", async () => {
    const engine = engines.make();
    const low = await engine.submit({ type: "review", priority: 0 });
    const high = await engine.submit({ type: "review", priority: 2 });
    const other = await engine.submit({ type: "translate", priority: 3 });

    const first = await engine.claimNext({ agent: "bot-1", types: ["review"] });
    expect(first).toMatchObject({ id: high, status: "claimed", attempt: 1, engineName: "bot-1" });
    expect(first!.attemptId).toBeTruthy();
    expect(await engine.claimNext({ agent: "bot-1", types: ["review"] })).toBeNull();
    const second = await engine.claimNext({ agent: "bot-1", types: ["review"], max: 2 });
    expect(second?.id).toBe(low);
    // Without a type filter the best task of any type wins.
    expect((await engine.claimNext({ agent: "bot-2" }))?.id).toBe(other);
    expect(await engine.claimNext({ agent: "bot-3" })).toBeNull();
  });

  it("respects tenant and project scope", async () => {
    const engine = engines.make();
    await engine.submit({ type: "job", tenant: "acme", project: "a" });
    const mine = await engine.submit({ type: "job", tenant: "acme", project: "b" });
    expect((await engine.claimNext({ agent: "x", tenant: "acme", project: "b" }))?.id).toBe(mine);
    expect(await engine.claimNext({ agent: "y", tenant: "globex" })).toBeNull();
  });

  it("heartbeat moves claimed to running; progress and complete follow the state machine", async () => {
    const engine = engines.make();
    const events: LoomEvent[] = [];
    engine.events.subscribe((e) => void events.push(e));
    const id = await engine.submit({ type: "job" });
    const claimed = (await engine.claimNext({ agent: "bot" }))!;
    await engine.heartbeat(id, claimed.attemptId!);
    expect((await engine.get(id)).status).toBe("running");
    await engine.progress(id, claimed.attemptId!, 60, "most of it");
    expect(await engine.get(id)).toMatchObject({ progress: 60, progressNote: "most of it" });
    await expect(engine.progress(id, claimed.attemptId!, 150)).rejects.toThrow(ValidationError);
    const done = await engine.complete(id, claimed.attemptId!, { answer: 42 });
    expect(done).toMatchObject({ status: "completed", result: { answer: 42 } });
    expect(events.map((e) => e.type)).toEqual([
      "task.created",
      "task.claimed",
      "task.running",
      "task.progress",
      "task.completed",
    ]);
  });

  it("a stale attempt's heartbeat, progress, completion and failure are rejected, never applied", async () => {
    const clock = new ManualClock(Date.now());
    const engine = engines.make({ clock });
    const id = await engine.submit({ type: "job" });
    const first = (await engine.claimNext({ agent: "slowpoke" }))!;
    // The first attempt fails and is retried at once; a second agent takes the new attempt.
    await engine.fail(id, first.attemptId!, new Error("flaked"));
    expect((await engine.get(id)).status).toBe("retrying");
    const stale = first.attemptId!;
    expect(await engine.claimNext({ agent: "fresh" })).toBeNull(); // still backing off
    clock.advance(2_000);
    const second = await engine.claimNext({ agent: "fresh" });
    expect(second).toMatchObject({ id, attempt: 2 });
    expect(second!.attemptId).not.toBe(stale);

    await expect(engine.heartbeat(id, stale)).rejects.toBeInstanceOf(StaleAttemptError);
    await expect(engine.progress(id, stale, 10)).rejects.toBeInstanceOf(StaleAttemptError);
    await expect(engine.complete(id, stale, "from the past")).rejects.toBeInstanceOf(
      StaleAttemptError,
    );
    await expect(engine.fail(id, stale, "nope")).rejects.toBeInstanceOf(StaleAttemptError);
    const now = await engine.get(id);
    expect(now).toMatchObject({
      status: "claimed",
      result: null,
      progress: null,
      attemptId: second!.attemptId,
    });

    await engine.complete(id, second!.attemptId!, "from the present");
    expect((await engine.get(id)).result).toBe("from the present");
    await expect(engine.complete(id, second!.attemptId!, "twice")).rejects.toBeInstanceOf(
      StaleAttemptError,
    );
    await expect(engine.heartbeat("missing", "x")).rejects.toBeInstanceOf(TaskNotFoundError);
  });

  it("an agent's failure without retries left fails the task; retry: false fails at once", async () => {
    const engine = engines.make();
    const a = await engine.submit({ type: "job", maxRetries: 0 });
    const ca = (await engine.claimNext({ agent: "bot" }))!;
    expect(await engine.fail(a, ca.attemptId!, "broken")).toMatchObject({
      status: "failed",
      error: "broken",
    });
    const b = await engine.submit({ type: "job" });
    const cb = (await engine.claimNext({ agent: "bot" }))!;
    expect(await engine.fail(b, cb.attemptId!, "fatal", { retry: false })).toMatchObject({
      status: "failed",
    });
  });

  it("an agent's result goes through the gate", async () => {
    const engine = engines.make();
    const id = await engine.submit({ type: "job" });
    const c = (await engine.claimNext({ agent: "bot" }))!;
    const after = await engine.complete(id, c.attemptId!, "");
    expect(after.status).toBe("retrying");
    expect(after.error).toMatch(/empty_output/);
  });
});
