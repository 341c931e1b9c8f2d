import { useMemo } from "preact/hooks";
import { api, enc } from "../api.js";
import { Dag, type GraphNode } from "../graph.js";
import { href } from "../router.js";
import type { Flow, Page } from "../types.js";
import { Action, ago, fmtTime, LoadError, Section, Status, useLive, useLoad } from "../ui.js";

export function Flows({ id }: { id: string | undefined }) {
  return id ? <FlowDetail id={id} /> : <FlowList />;
}

function FlowList() {
  const list = useLoad(() => api<Page<Flow>>("/flows?limit=50"), []);
  useLive((e) => e.type.startsWith("task."), list.reload, 1000);
  return (
    <div>
      <h1>Flows</h1>
      {list.error ? (
        <LoadError error={list.error} feature="Flows" />
      ) : !list.data ? (
        <p aria-busy="true">Loading…</p>
      ) : list.data.items.length === 0 ? (
        <p class="empty">No flows.</p>
      ) : (
        <table class="list" aria-label="Flows">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Tasks</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((f) => (
              <tr key={f.id}>
                <td>
                  <a href={href("flows", f.id)}>{f.name}</a>
                  <div class="muted mono">{f.id}</div>
                </td>
                <td>
                  <Status status={f.status} />
                </td>
                <td>
                  {f.tasks.filter((t) => t.status === "completed").length} / {f.tasks.length} done
                </td>
                <td title={fmtTime(f.createdAt)}>{ago(f.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function FlowDetail({ id }: { id: string }) {
  const flow = useLoad(() => api<Flow>(`/flows/${enc(id)}`), [id]);
  const f = flow.data;
  const taskIds = useMemo(() => new Set(f?.tasks.map((t) => t.taskId)), [f]);
  useLive((e) => e.taskId !== undefined && taskIds.has(e.taskId), flow.reload, 200);
  const graph = useMemo(() => {
    const nodes: GraphNode[] = (f?.tasks ?? []).map((t) => ({
      id: t.key,
      label: t.key,
      sub: t.type,
      status: t.status ?? "unknown",
      href: href("tasks", t.taskId),
    }));
    const edges: [string, string][] = (f?.tasks ?? []).flatMap((t) =>
      t.dependsOn.map((d): [string, string] => [d, t.key]),
    );
    return { nodes, edges };
  }, [f]);
  if (flow.error) return <LoadError error={flow.error} feature="Flows" />;
  if (!f) return <p aria-busy="true">Loading…</p>;
  return (
    <div>
      <h1>
        <a href={href("flows")}>Flows</a> / {f.name} <Status status={f.status} />
      </h1>
      <Section title="Graph">
        <div class="dag-wrap">
          <Dag nodes={graph.nodes} edges={graph.edges} label={`Task graph of flow ${f.name}`} />
        </div>
        <p class="muted">
          {f.tenant} / {f.project}, started {fmtTime(f.createdAt)}
          {f.completedAt ? `, finished ${fmtTime(f.completedAt)}` : ""}. Select a node to open its
          task.
        </p>
        <Action
          label="Cancel flow"
          danger
          disabled={f.status !== "running"}
          run={async () => {
            await api(`/flows/${enc(id)}/cancel`, { method: "POST" });
            flow.reload();
          }}
        />
      </Section>
    </div>
  );
}
