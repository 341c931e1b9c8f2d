import { useState } from "preact/hooks";
import { api, enc, q } from "../api.js";
import { recentEvents } from "../events.js";
import { href, navigate } from "../router.js";
import { TASK_STATUSES, TERMINAL, type LoomEvent, type Page, type Task } from "../types.js";
import { Action, ago, fmtTime, Json, LoadError, Section, Status, useLive, useLoad } from "../ui.js";

const PAGE = 25;

export function Tasks({ id, query }: { id: string | undefined; query: URLSearchParams }) {
  return id ? <TaskDetail id={id} /> : <TaskList query={query} />;
}

function TaskList({ query }: { query: URLSearchParams }) {
  const status = query.get("status") ?? "";
  const type = query.get("type") ?? "";
  const project = query.get("project") ?? "";
  const cursor = query.get("cursor") ?? "";
  const back = (query.get("back") ?? "").split(",").filter(Boolean);
  const page = useLoad(
    () => api<Page<Task>>(`/tasks${q({ status, type, project, cursor, limit: PAGE })}`),
    [],
  );
  // Live: any task event refreshes the visible page (filters apply server-side).
  useLive((e) => e.type.startsWith("task."), page.reload);

  const go = (params: Record<string, string>) => {
    const s = new URLSearchParams({ status, type, project, ...params });
    for (const [k, v] of [...s.entries()]) if (!v) s.delete(k);
    const qs = s.toString();
    navigate(href("tasks") + (qs ? `?${qs}` : ""));
  };
  const [draft, setDraft] = useState({ status, type, project });

  return (
    <div>
      <h1>Tasks</h1>
      <form
        class="filters"
        aria-label="Filter tasks"
        onSubmit={(e) => {
          e.preventDefault();
          go(draft);
        }}
      >
        <label>
          Status{" "}
          <select
            value={draft.status}
            onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}
          >
            <option value="">any</option>
            {TASK_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type{" "}
          <input
            value={draft.type}
            onInput={(e) => setDraft({ ...draft, type: e.currentTarget.value })}
          />
        </label>
        <label>
          Project{" "}
          <input
            value={draft.project}
            onInput={(e) => setDraft({ ...draft, project: e.currentTarget.value })}
          />
        </label>
        <button type="submit">Apply</button>
      </form>
      {page.error ? (
        <LoadError error={page.error} feature="Tasks" />
      ) : !page.data ? (
        <p aria-busy="true">Loading…</p>
      ) : page.data.items.length === 0 ? (
        <p class="empty">No tasks match.</p>
      ) : (
        <table class="list" aria-label="Tasks">
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Project</th>
              <th scope="col">Lane</th>
              <th scope="col">Attempt</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {page.data.items.map((t) => (
              <tr key={t.id} data-task-id={t.id} data-status={t.status}>
                <td>
                  <a href={href("tasks", t.id)}>{t.type}</a>
                  <div class="muted mono">{t.id}</div>
                </td>
                <td>
                  <Status status={t.status} />
                </td>
                <td>{t.project}</td>
                <td>{t.lane ?? "—"}</td>
                <td>{t.attempt}</td>
                <td>
                  {t.progress === null ? (
                    "—"
                  ) : (
                    <progress max={100} value={t.progress} aria-label="progress" />
                  )}
                </td>
                <td title={fmtTime(t.createdAt)}>{ago(t.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={!cursor}
          onClick={() => go({ cursor: back.at(-1) ?? "", back: back.slice(0, -1).join(",") })}
        >
          Previous page
        </button>
        <button
          type="button"
          disabled={!page.data?.nextCursor}
          onClick={() =>
            go({ cursor: page.data?.nextCursor ?? "", back: [...back, cursor].join(",") })
          }
        >
          Next page
        </button>
      </nav>
    </div>
  );
}

/** The task's timeline: its own timestamps plus the live events this tab has seen for it. */
function timeline(t: Task, events: LoomEvent[]): { at: string; what: string; detail?: string }[] {
  const out: { at: string; what: string; detail?: string }[] = [
    { at: t.createdAt, what: "created" },
  ];
  if (t.runAt !== t.createdAt && !events.some((e) => e.type === "task.created")) {
    out.push({ at: t.runAt, what: "due" });
  }
  for (const e of events) {
    if (e.type === "task.created") continue;
    const detail =
      e.type === "task.progress"
        ? `${e.progress ?? ""}%${e.note ? ` ${e.note}` : ""}`
        : (e.error ?? (e.attempt ? `attempt ${e.attempt}` : undefined));
    out.push({ at: e.at, what: e.type.replace(/^task\./, ""), ...(detail ? { detail } : {}) });
  }
  const seen = new Set(out.map((x) => x.what));
  if (t.startedAt && !seen.has("running")) out.push({ at: t.startedAt, what: "started" });
  if (t.completedAt && !seen.has(t.status)) out.push({ at: t.completedAt, what: t.status });
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

/** A copy of the task as a new request: retry is "submit the same thing again". */
function retryRequest(t: Task): Record<string, unknown> {
  const req: Record<string, unknown> = {
    type: t.type,
    input: t.input,
    tenant: t.tenant,
    project: t.project,
    priority: t.priority,
    labels: t.labels,
    metadata: { ...t.metadata, retryOf: t.id },
    maxRetries: t.maxRetries,
  };
  if (t.caller) req["caller"] = t.caller;
  if (t.timeoutMs) req["timeoutMs"] = t.timeoutMs;
  return req;
}

function TaskDetail({ id }: { id: string }) {
  const task = useLoad(() => api<Task>(`/tasks/${enc(id)}`), [id]);
  const [, bump] = useState(0);
  useLive(
    (e) => e.taskId === id,
    () => {
      task.reload();
      bump((n) => n + 1);
    },
    100,
  );
  if (task.error) return <LoadError error={task.error} feature="Tasks" />;
  const t = task.data;
  if (!t) return <p aria-busy="true">Loading…</p>;
  const events = recentEvents((e) => e.taskId === id);
  const done = TERMINAL.includes(t.status);
  return (
    <div class="grid">
      <h1 class="wide">
        <a href={href("tasks")}>Tasks</a> / {t.type} <Status status={t.status} />
      </h1>
      <Section title="Task">
        <dl class="kv">
          <dt>Id</dt>
          <dd class="mono">{t.id}</dd>
          <dt>Project</dt>
          <dd>
            {t.tenant} / {t.project}
          </dd>
          <dt>Caller</dt>
          <dd>{t.caller ?? "—"}</dd>
          <dt>Lane</dt>
          <dd>{t.lane ?? "—"}</dd>
          <dt>Priority</dt>
          <dd>{t.priority}</dd>
          <dt>Attempts</dt>
          <dd data-testid="attempts">
            {t.attempt} of {t.maxRetries + 1}
          </dd>
          <dt>Progress</dt>
          <dd>
            {t.progress === null ? (
              "—"
            ) : (
              <>
                <progress max={100} value={t.progress} aria-label="progress" /> {t.progress}%{" "}
                {t.progressNote}
              </>
            )}
          </dd>
          <dt>Created</dt>
          <dd>{fmtTime(t.createdAt)}</dd>
          <dt>Started</dt>
          <dd>{fmtTime(t.startedAt)}</dd>
          <dt>Finished</dt>
          <dd>{fmtTime(t.completedAt)}</dd>
          {t.workflowId && (
            <>
              <dt>Workflow</dt>
              <dd>
                <a href={href("workflows", t.workflowId)}>{t.workflowId}</a>
              </dd>
            </>
          )}
          {Object.keys(t.labels).length > 0 && (
            <>
              <dt>Labels</dt>
              <dd>
                {Object.entries(t.labels).map(([k, v]) => (
                  <span class="label" key={k}>
                    {k}={v}
                  </span>
                ))}
              </dd>
            </>
          )}
        </dl>
        <div class="actions">
          <Action
            label="Cancel task"
            danger
            disabled={done}
            run={async () => {
              await api(`/tasks/${enc(id)}/cancel`, {
                body: { reason: "cancelled from the dashboard" },
              });
              task.reload();
            }}
          />
          <Action
            label="Retry (submit a copy)"
            disabled={!done}
            run={async () => {
              const copy = await api<Task>("/tasks", { body: retryRequest(t) });
              navigate(href("tasks", copy.id));
            }}
          />
        </div>
      </Section>
      <Section title="Timeline">
        <ol class="timeline" aria-label="Task timeline">
          {timeline(t, events).map((x, i) => (
            <li key={i}>
              <time dateTime={x.at}>{fmtTime(x.at)}</time> <strong>{x.what}</strong>
              {x.detail && <span class="muted"> {x.detail}</span>}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Input">
        <Json value={t.input} label="Task input" />
      </Section>
      <Section title="Result">
        <Json value={t.result} label="Task result" />
      </Section>
      {t.error && (
        <Section title="Error (redacted)">
          <pre class="json error-text" aria-label="Task error">
            {t.error}
          </pre>
        </Section>
      )}
    </div>
  );
}
