import { api } from "../api.js";
import { href } from "../router.js";
import type { Schedule } from "../types.js";
import { ago, fmtTime, LoadError, useLoad } from "../ui.js";

export function Schedules() {
  const list = useLoad(() => api<{ items: Schedule[] }>("/schedules"), []);
  return (
    <div>
      <h1>Schedules</h1>
      {list.error ? (
        <LoadError error={list.error} feature="Schedules" />
      ) : !list.data ? (
        <p aria-busy="true">Loading…</p>
      ) : list.data.items.length === 0 ? (
        <p class="empty">No schedules.</p>
      ) : (
        <table class="list" aria-label="Schedules">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Cron</th>
              <th scope="col">Runs</th>
              <th scope="col">Next firing</th>
              <th scope="col">Last firing</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((s) => (
              <tr key={s.name}>
                <td>{s.name}</td>
                <td class="mono">
                  {s.cron} <span class="muted">{s.timezone}</span>
                </td>
                <td>{s.type ? `task ${s.type}` : s.workflow ? `workflow ${s.workflow}` : "—"}</td>
                <td title={fmtTime(s.nextRunAt)}>{ago(s.nextRunAt)}</td>
                <td title={fmtTime(s.lastRunAt)}>
                  {s.lastTaskId ? (
                    <a href={href("tasks", s.lastTaskId)}>{ago(s.lastRunAt)}</a>
                  ) : (
                    ago(s.lastRunAt)
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
