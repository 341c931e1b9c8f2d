// One live event stream per tab, shared by every view. EventSource cannot send an Authorization
// header, so this reads GET /api/v1/events with fetch and parses the text/event-stream itself;
// it reconnects with Last-Event-ID and tells subscribers to refetch when the server says `reset`.

import { auth, authHeaders } from "./api.js";
import type { LoomEvent } from "./types.js";

type Listener = (e: LoomEvent) => void;
type ResetListener = () => void;
export type StreamState = "connecting" | "live" | "offline";

const listeners = new Set<Listener>();
const resetListeners = new Set<ResetListener>();
const stateListeners = new Set<(s: StreamState) => void>();
/** Recent events seen by this tab, newest last: task detail timelines read from it. */
const recent: LoomEvent[] = [];
const RECENT_MAX = 2000;

let lastEventId: string | null = null;
let controller: AbortController | null = null;
let state: StreamState = "offline";
let retryMs = 2000;
let timer: ReturnType<typeof setTimeout> | undefined;

function setState(s: StreamState): void {
  state = s;
  for (const fn of stateListeners) fn(s);
}

function dispatch(event: string, data: string): void {
  if (event === "reset") {
    for (const fn of resetListeners) fn();
    return;
  }
  let parsed: LoomEvent;
  try {
    parsed = JSON.parse(data) as LoomEvent;
  } catch {
    return;
  }
  recent.push(parsed);
  if (recent.length > RECENT_MAX) recent.splice(0, recent.length - RECENT_MAX);
  for (const fn of listeners) fn(parsed);
}

async function pump(body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let at: number;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = "message";
      let data = "";
      let hasData = false;
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "id") lastEventId = val;
        else if (field === "event") event = val;
        else if (field === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
        else if (field === "data") {
          data += (hasData ? "\n" : "") + val;
          hasData = true;
        }
      }
      if (hasData) dispatch(event, data);
    }
  }
}

async function connect(): Promise<void> {
  controller?.abort();
  const ac = new AbortController();
  controller = ac;
  setState("connecting");
  try {
    const headers: Record<string, string> = { accept: "text/event-stream", ...authHeaders() };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await fetch("./api/v1/events", { headers, signal: ac.signal, cache: "no-store" });
    if (res.status === 401) {
      setState("offline");
      auth.demand(); // reconnects when a token is entered (see below)
      return;
    }
    if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
    setState("live");
    await pump(res.body);
  } catch {
    // network error or abort: fall through to the reconnect below
  }
  if (controller !== ac) return; // replaced or stopped
  setState("offline");
  clearTimeout(timer);
  timer = setTimeout(() => void connect(), retryMs);
}

/** Starts the shared stream (idempotent); it follows token changes. */
export function startEvents(): void {
  if (controller) return;
  void connect();
  auth.subscribe(() => {
    if (!auth.needed && state === "offline") void connect();
  });
}

/** Reconnect now, e.g. after the token changed. */
export function restartEvents(): void {
  clearTimeout(timer);
  void connect();
}

export function onEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function onReset(fn: ResetListener): () => void {
  resetListeners.add(fn);
  return () => resetListeners.delete(fn);
}

export function onStreamState(fn: (s: StreamState) => void): () => void {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

export function recentEvents(pred: (e: LoomEvent) => boolean): LoomEvent[] {
  return recent.filter(pred);
}
