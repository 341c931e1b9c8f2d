import { useMemo, useState } from "preact/hooks";
import { api, enc } from "../api.js";
import { Dag, type GraphNode } from "../graph.js";
import { href } from "../router.js";
import type { HistoryEvent, Page, WorkflowRun } from "../types.js";
import { Action, ago, fmtTime, Json, LoadError, Section, Status, useLive, useLoad } from "../ui.js";

export function Workflows({ id }: { id: string | undefined }) {
  return id ? <WorkflowDetail id={id} /> : <WorkflowList />;
}

function WorkflowList() {
  const list = useLoad(() => api<Page<WorkflowRun>>("/workflows?limit=50"), []);
  useLive((e) => e.type.startsWith("workflow."), list.reload, 500);
  return (
    <div>
      <h1>Workflows</h1>
      {list.error ? (
        <LoadError error={list.error} feature="Workflows" />
      ) : !list.data ? (
        <p aria-busy="true">Loading…</p>
      ) : list.data.items.length === 0 ? (
        <p class="empty">No workflow runs.</p>
      ) : (
        <table class="list" aria-label="Workflow runs">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Waiting for</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((w) => (
              <tr key={w.id}>
                <td>
                  <a href={href("workflows", w.id)}>{w.name}</a>
                  <div class="muted mono">{w.id}</div>
                </td>
                <td>
                  <Status status={w.status} />
                </td>
                <td>{w.waitingFor ? `${w.waitingFor.kind} ${w.waitingFor.name}` : "—"}</td>
                <td title={fmtTime(w.createdAt)}>{ago(w.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

const CALL_FAMILY: Record<string, string> = {
  STEP: "step",
  ACTIVITY: "activity",
  TIMER: "sleep",
  SIGNAL: "signal",
  CHILD: "child",
};
const DONE_KINDS = new Set([
  "STEP_COMPLETED",
  "ACTIVITY_COMPLETED",
  "TIMER_FIRED",
  "SIGNAL_RECEIVED",
  "CHILD_COMPLETED",
]);

/** The run's calls in sequence order (one node per sequence number), from start to its end. */
export function workflowGraph(
  run: WorkflowRun,
  history: HistoryEvent[],
): { nodes: GraphNode[]; edges: [string, string][] } {
  const calls = new Map<number, HistoryEvent[]>();
  for (const h of history) {
    const family = CALL_FAMILY[h.kind.split("_")[0] ?? ""];
    if (!family || h.seq < 1) continue;
    calls.set(h.seq, [...(calls.get(h.seq) ?? []), h]);
  }
  const nodes: GraphNode[] = [
    { id: "start", label: "start", sub: "workflow", status: "completed" },
  ];
  for (const [seq, events] of [...calls.entries()].sort((a, b) => a[0] - b[0])) {
    const first = events[0]!;
    const isSignalWait = events.some(
      (e) =>
        e.kind === "SIGNAL_RECEIVED" || (e.data as { signal?: boolean } | null)?.signal === true,
    );
    const family = isSignalWait ? "signal" : CALL_FAMILY[first.kind.split("_")[0]!]!;
    const status = events.some((e) => e.kind.endsWith("_FAILED"))
      ? "failed"
      : events.some((e) => DONE_KINDS.has(e.kind))
        ? "completed"
        : "running";
    nodes.push({
      id: `#${seq}`,
      label: `${seq}. ${first.name ?? family}`,
      sub: family,
      status,
      ...(family === "child" ? { href: href("workflows", `${run.id}:${seq}`) } : {}),
    });
  }
  const last = nodes.at(-1)!;
  const waiting = run.waitingFor;
  if (waiting && !(last.status === "running" && last.label.endsWith(` ${waiting.name}`))) {
    nodes.push({ id: "waiting", label: waiting.name, sub: waiting.kind, status: "waiting" });
  }
  if (["completed", "failed", "cancelled"].includes(run.status)) {
    nodes.push({ id: "end", label: "end", sub: "workflow", status: run.status });
  }
  const edges = nodes.slice(1).map((n, i): [string, string] => [nodes[i]!.id, n.id]);
  return { nodes, edges };
}

function SignalForm({ id, onSent }: { id: string; onSent: () => void }) {
  const [name, setName] = useState("");
  const [data, setData] = useState("");
  return (
    <form class="stack" aria-label="Send a signal" onSubmit={(e) => e.preventDefault()}>
      <label>
        Signal name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Data (JSON, optional){" "}
        <textarea rows={3} value={data} onInput={(e) => setData(e.currentTarget.value)} />
      </label>
      <Action
        label="Send signal"
        disabled={!name}
        run={async () => {
          const body = data.trim() ? { data: JSON.parse(data) as unknown } : {};
          await api(`/workflows/${enc(id)}/signals/${enc(name)}`, { body });
          onSent();
        }}
      />
    </form>
  );
}

function WorkflowGraph({ run, history }: { run: WorkflowRun; history: HistoryEvent[] }) {
  const graph = useMemo(() => workflowGraph(run, history), [run, history]);
  return <Dag nodes={graph.nodes} edges={graph.edges} label={`Calls of workflow ${run.name}`} />;
}

function WorkflowDetail({ id }: { id: string }) {
  const run = useLoad(() => api<WorkflowRun>(`/workflows/${enc(id)}`), [id]);
  const history = useLoad(
    () => api<{ items: HistoryEvent[] }>(`/workflows/${enc(id)}/history`),
    [id],
  );
  const reload = () => {
    run.reload();
    history.reload();
  };
  useLive((e) => e.workflowId === id, reload, 200);
  if (run.error) return <LoadError error={run.error} feature="Workflows" />;
  const w = run.data;
  if (!w) return <p aria-busy="true">Loading…</p>;
  const open = !["completed", "failed", "cancelled"].includes(w.status);
  return (
    <div class="grid">
      <h1 class="wide">
        <a href={href("workflows")}>Workflows</a> / {w.name} <Status status={w.status} />
      </h1>
      <Section title="Run">
        <dl class="kv">
          <dt>Id</dt>
          <dd class="mono">{w.id}</dd>
          <dt>Version</dt>
          <dd>{String(w.version)}</dd>
          <dt>Project</dt>
          <dd>
            {w.tenant} / {w.project}
          </dd>
          {w.parentId && (
            <>
              <dt>Parent</dt>
              <dd>
                <a href={href("workflows", w.parentId)}>{w.parentId}</a>
              </dd>
            </>
          )}
          <dt>Waiting for</dt>
          <dd>
            {w.waitingFor
              ? `${w.waitingFor.kind} “${w.waitingFor.name}”${w.waitingFor.until ? ` until ${fmtTime(w.waitingFor.until)}` : ""}`
              : "—"}
          </dd>
          <dt>Started</dt>
          <dd>{fmtTime(w.createdAt)}</dd>
          <dt>Finished</dt>
          <dd>{fmtTime(w.completedAt)}</dd>
        </dl>
        {w.error && (
          <pre class="json error-text" aria-label="Workflow error">
            {w.error}
          </pre>
        )}
        <div class="actions">
          <Action
            label="Cancel workflow"
            danger
            disabled={!open}
            run={async () => {
              await api(`/workflows/${enc(id)}/cancel`, {
                body: { reason: "cancelled from the dashboard" },
              });
              reload();
            }}
          />
        </div>
      </Section>
      {open && (
        <Section title="Signal">
          <SignalForm id={id} onSent={reload} />
        </Section>
      )}
      {history.data && (
        <section class="card wide" aria-label="Progress">
          <h2>Progress</h2>
          <div class="dag-wrap">
            <WorkflowGraph run={w} history={history.data.items} />
          </div>
        </section>
      )}
      <Section title="History">
        {history.error ? (
          <LoadError error={history.error} feature="Workflow histories" />
        ) : (
          <ol class="timeline" aria-label="Workflow history">
            {history.data?.items.map((h) => (
              <li key={h.seq}>
                <time dateTime={h.at}>{fmtTime(h.at)}</time> <strong>{h.kind}</strong>{" "}
                {h.name && <span class="mono">{h.name}</span>}
                {h.data !== null && h.data !== undefined && (
                  <details>
                    <summary>data</summary>
                    <Json value={h.data} label={`data of event ${h.seq}`} />
                  </details>
                )}
              </li>
            ))}
          </ol>
        )}
      </Section>
      <Section title="State">
        <Json value={w.state} label="Workflow state" />
      </Section>
      <Section title="Input">
        <Json value={w.input} label="Workflow input" />
      </Section>
      <Section title="Result">
        <Json value={w.result} label="Workflow result" />
      </Section>
    </div>
  );
}
