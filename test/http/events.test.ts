import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SseReader, problemOf, startServer, type Harness } from "./support.js";

type Json = Record<string, unknown>;

describe("HTTP events (SSE)", () => {
  let h: Harness;
  const readers: SseReader[] = [];
  const open = async (path: string, headers: Record<string, string> = {}) => {
    const r = await SseReader.open(h.url + path, headers);
    readers.push(r);
    return r;
  };

  beforeAll(async () => {
    h = await startServer({
      limits: { sseConnectionsPerToken: 3, sseBufferSize: 5, sseKeepAliveMs: 50 },
    });
    h.engine.register("echo", async (task) => ({ echoed: task.input }));
    await h.engine.start();
  });
  afterEach(() => {
    for (const r of readers.splice(0)) r.close();
  });
  afterAll(async () => h.close());

  it("delivers events live, with id, event type and JSON data, filtered by project", async () => {
    const sse = await open("/api/v1/events?project=live");
    expect(sse.response.status).toBe(200);
    expect(sse.response.headers.get("content-type")).toMatch(/text\/event-stream/);
    await h.call("/api/v1/tasks", { body: { type: "echo", project: "other" } });
    const res = await h.call("/api/v1/tasks", {
      body: { type: "echo", project: "live", input: 7 },
    });
    const id = ((await res.json()) as Json)["id"] as string;

    const completed = await sse.next((m) => m.event === "task.completed");
    expect(completed.id).toMatch(/^[0-9a-f]+-\d+$/);
    const data = JSON.parse(completed.data) as Json;
    expect(data).toMatchObject({ type: "task.completed", taskId: id, project: "live" });
    expect(typeof data["at"]).toBe("string");
    const types = sse.messages.map((m) => m.event);
    expect(types[0]).toBe("task.created");
    expect(sse.messages.every((m) => (JSON.parse(m.data) as Json)["project"] === "live")).toBe(
      true,
    );
    await sse.next(() => sse.comments >= 2); // keep-alive comments arrive
  });

  it("resumes from Last-Event-ID, and sends reset to a client that fell behind", async () => {
    const first = await open("/api/v1/events?project=resume&type=task.created");
    await h.call("/api/v1/tasks", {
      body: { type: "later", project: "resume", runAt: Date.now() + 60_000 },
    });
    const seen = await first.next((m) => m.event === "task.created");
    first.close();

    await h.call("/api/v1/tasks", {
      body: { type: "later", project: "resume", input: "missed", runAt: Date.now() + 60_000 },
    });
    const resumed = await open("/api/v1/events?project=resume&type=task.created", {
      "last-event-id": seen.id!,
    });
    const missed = await resumed.next((m) => m.event === "task.created");
    expect(missed.id).not.toBe(seen.id);

    // Push more than the buffer holds (5 events) past `seen`.
    for (let i = 0; i < 6; i++) {
      await h.call("/api/v1/tasks", {
        body: { type: "later", project: "flood", runAt: Date.now() + 60_000 },
      });
    }
    const behind = await open("/api/v1/events", { "last-event-id": seen.id! });
    await behind.next((m) => m.event === "reset");
    const foreign = await open("/api/v1/events", { "last-event-id": "abc-1" });
    await foreign.next((m) => m.event === "reset");
  });

  it("caps open streams per token with 429 and frees slots on disconnect", async () => {
    const streams = await Promise.all([1, 2, 3].map(() => open("/api/v1/events")));
    expect(streams.every((s) => s.response.status === 200)).toBe(true);
    const extra = await fetch(`${h.url}/api/v1/events`);
    expect(extra.status).toBe(429);
    expect((await problemOf(extra))["code"]).toBe("TOO_MANY_REQUESTS");
    streams[0]!.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await open("/api/v1/events");
    expect(again.response.status).toBe(200);
  });

  it("rejects unknown event types with 400", async () => {
    const res = await fetch(`${h.url}/api/v1/events?type=task.exploded`);
    expect(res.status).toBe(400);
    expect((await problemOf(res))["code"]).toBe("VALIDATION");
  });
});
