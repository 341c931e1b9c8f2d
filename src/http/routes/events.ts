import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { ValidationError } from "../../core/errors.js";
import type { EventFilter, LoomEventType } from "../../core/types.js";
import { canSee, splitMulti } from "../access.js";
import { requireScope, type AuthEnv } from "../auth.js";
import { httpProblem } from "../errors.js";
import { eventMatches } from "../../core/events.js";
import type { BufferedEvent, EventHub } from "../event-hub.js";
import { EVENT_TYPES, EventQuerySchema, eventToJson, problemResponses } from "../schemas.js";

export interface SseOptions {
  /** Open streams per token (or per anonymous caller). */
  maxPerToken: number;
  keepAliveMs: number;
  /** A client this many messages behind is disconnected (it resumes with Last-Event-ID). */
  maxQueued: number;
}

const encoder = new TextEncoder();

function frame(e: BufferedEvent): Uint8Array {
  return encoder.encode(
    `id: ${e.id}\nevent: ${e.event.type}\ndata: ${JSON.stringify(eventToJson(e.event))}\n\n`,
  );
}

/** `GET /api/v1/events`: Server-Sent Events, filtered, with keep-alives and resume. */
export function eventRoutes(app: OpenAPIHono<AuthEnv>, hub: EventHub, opts: SseOptions): void {
  const open = new Map<string, number>();

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/events",
      tags: ["events"],
      summary: "Live lifecycle events (text/event-stream)",
      description:
        "Each message has `id:`, `event: <event type>` and `data: <event JSON>`. Send `Last-Event-ID` " +
        "to resume; a client that fell behind the server's buffer gets a `reset` event and should refetch.",
      middleware: [requireScope("read")] as const,
      request: { query: EventQuerySchema },
      responses: {
        200: {
          description: "an event stream",
          content: { "text/event-stream": { schema: { type: "string" } } },
        },
        ...problemResponses,
        429: { description: "too many open streams for this token" },
      },
    }),
    (c) => {
      const q = c.req.valid("query");
      const p = c.get("principal");
      const types = splitMulti(q.type);
      for (const t of types ?? []) {
        if (!(EVENT_TYPES as readonly string[]).includes(t)) {
          throw new ValidationError(`unknown event type`, "type");
        }
      }
      const filter: EventFilter = {};
      if (types) filter.types = types as LoomEventType[];
      const tenant = p.tenant ?? q.tenant;
      const project = p.project ?? q.project;
      if (tenant !== undefined) filter.tenant = tenant;
      if (project !== undefined) filter.project = project;
      if (q.taskId !== undefined) filter.taskId = q.taskId;
      if (q.taskType !== undefined) filter.taskType = q.taskType;
      if (q.workflowId !== undefined) filter.workflowId = q.workflowId;

      const current = open.get(p.key) ?? 0;
      if (current >= opts.maxPerToken) {
        throw httpProblem(429, `at most ${opts.maxPerToken} event streams per token`, {
          "retry-after": "5",
        });
      }
      open.set(p.key, current + 1);

      const visible = (e: BufferedEvent) =>
        canSee(p, e.event.tenant, e.event.project) && eventMatches(filter, e.event);
      const lastEventId = c.req.header("last-event-id");
      let cleanup = () => {};

      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          let closed = false;
          const send = (chunk: Uint8Array) => {
            if (closed) return;
            if ((controller.desiredSize ?? 0) < -opts.maxQueued) {
              cleanup();
              controller.close();
              return;
            }
            controller.enqueue(chunk);
          };
          controller.enqueue(encoder.encode(`retry: 2000\n: connected\n\n`));
          if (lastEventId) {
            const missed = hub.since(lastEventId);
            if (missed === "reset") {
              send(
                encoder.encode(
                  `event: reset\ndata: {"reason":"events since Last-Event-ID are gone; refetch"}\n\n`,
                ),
              );
            } else {
              for (const e of missed) if (visible(e)) send(frame(e));
            }
          }
          const stop = hub.listen((e) => {
            if (visible(e)) send(frame(e));
          });
          const keepAlive = setInterval(
            () => send(encoder.encode(`: keep-alive\n\n`)),
            opts.keepAliveMs,
          );
          keepAlive.unref?.();
          cleanup = () => {
            if (closed) return;
            closed = true;
            stop();
            clearInterval(keepAlive);
            const n = (open.get(p.key) ?? 1) - 1;
            if (n <= 0) open.delete(p.key);
            else open.set(p.key, n);
          };
          c.req.raw.signal.addEventListener("abort", () => cleanup(), { once: true });
        },
        cancel() {
          cleanup();
        },
      });

      return new Response(stream, {
        status: 200,
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache, no-transform",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        },
      });
    },
  );
}
