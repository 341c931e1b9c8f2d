import { api, UnavailableError } from "../api.js";
import { href } from "../router.js";
import { TASK_STATUSES, type Page, type Stats, type Task, type TaskStatus } from "../types.js";
import { ago, LoadError, Section, Status, useLive, useLoad } from "../ui.js";
import { LaneTable } from "./lanes.js";

/** Stats from GET /stats; without that route, counts from /tasks/count and no throughput. */
async function loadStats(): Promise<Stats & { partial: boolean }> {
  try {
    return { ...(await api<Stats>("/stats")), partial: false };
  } catch (e) {
    if (!(e instanceof UnavailableError)) throw e;
    const counts = {} as Record<TaskStatus, number>;
    await Promise.all(
      TASK_STATUSES.map(async (s) => {
        counts[s] = (await api<{ count: number }>(`/tasks/count?status=${s}`)).count;
      }),
    );
    return { counts, throughput: [], lanes: [], partial: true };
  }
}

function Throughput({ points }: { points: Stats["throughput"] }) {
  if (points.length === 0) return <p class="empty">No throughput data.</p>;
  const w = 600;
  const h = 120;
  const max = Math.max(1, ...points.map((p) => p.completed + p.failed));
  const bw = w / points.length;
  const total = points.reduce((a, p) => a + p.completed, 0);
  const failed = points.reduce((a, p) => a + p.failed, 0);
  return (
    <figure>
      <svg
        class="chart"
        viewBox={`0 0 ${w} ${h}`}
        role="img"
        aria-label={`Throughput per minute over the last ${points.length} minutes: ${total} completed, ${failed} failed`}
        preserveAspectRatio="none"
      >
        {points.map((p, i) => {
          const hc = (p.completed / max) * (h - 4);
          const hf = (p.failed / max) * (h - 4);
          return (
            <g key={p.at}>
              <title>{`${new Date(p.at).toLocaleTimeString()}: ${p.completed} completed, ${p.failed} failed`}</title>
              <rect
                class="bar-ok"
                x={i * bw + 1}
                y={h - hc}
                width={Math.max(1, bw - 2)}
                height={hc}
              />
              <rect
                class="bar-fail"
                x={i * bw + 1}
                y={h - hc - hf}
                width={Math.max(1, bw - 2)}
                height={hf}
              />
            </g>
          );
        })}
      </svg>
      <figcaption>
        Per minute, last {points.length} min: {total} completed, {failed} failed.
      </figcaption>
    </figure>
  );
}

export function Overview() {
  const stats = useLoad(loadStats, []);
  const failures = useLoad(() => api<Page<Task>>("/tasks?status=failed,failed_crash&limit=10"), []);
  useLive(
    (e) => e.type.startsWith("task."),
    () => {
      stats.reload();
      failures.reload();
    },
    1000,
  );
  const s = stats.data;
  return (
    <div class="grid">
      <h1 class="wide">Overview</h1>
      <Section title="Tasks by status">
        {stats.error ? (
          <LoadError error={stats.error} feature="Statistics" />
        ) : !s ? (
          <p aria-busy="true">Loading…</p>
        ) : (
          <ul class="counts">
            {TASK_STATUSES.map((st) => (
              <li key={st}>
                <a href={`${href("tasks")}?status=${st}`}>
                  <Status status={st} /> <strong data-count={st}>{s.counts[st] ?? 0}</strong>
                </a>
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Throughput">
        {s?.partial ? (
          <p class="empty">Throughput is not available on this server (no /api/v1/stats).</p>
        ) : s ? (
          <Throughput points={s.throughput} />
        ) : null}
      </Section>
      <Section title="Lanes">
        {s?.partial ? (
          <p class="empty">Lanes are not available on this server.</p>
        ) : s && s.lanes.length === 0 ? (
          <p class="empty">No lanes declared.</p>
        ) : s ? (
          <LaneTable lanes={s.lanes} />
        ) : null}
      </Section>
      <Section title="Recent failures">
        {failures.error ? (
          <LoadError error={failures.error} feature="Tasks" />
        ) : failures.data && failures.data.items.length === 0 ? (
          <p class="empty">No failed tasks.</p>
        ) : (
          <ul class="failures">
            {failures.data?.items.map((t) => (
              <li key={t.id}>
                <a href={href("tasks", t.id)}>{t.type}</a> <Status status={t.status} />{" "}
                <span class="muted">{ago(t.completedAt ?? t.updatedAt)}</span>
                {t.error && <div class="err-line">{t.error}</div>}
              </li>
            ))}
          </ul>
        )}
      </Section>
    </div>
  );
}
