import { useState } from "preact/hooks";
import { api, enc } from "../api.js";
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
